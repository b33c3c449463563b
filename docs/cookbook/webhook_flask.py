"""A webhook receiver in Flask that only takes deliveries in, and a worker that plans and
delivers what they changed.

    export SHOPIFY_APP_SECRET=... WOO_WEBHOOK_SECRET=... SHOPSYNC_STORE=sqlite:///shop.db
    flask --app webhook_flask run --port 8000   # intake: verify, store, note the customers
    python webhook_flask.py                      # worker: plan and deliver, every 30 seconds
    python webhook_flask.py --once               # or one pass, e.g. from cron every minute

Point the shop's webhooks at https://<your host>/webhooks/shopify (or /woocommerce). A
delivery with a missing or wrong signature is answered 401 and nothing is stored. The
worker plans with the same policy file and delivers to the same sinks as the nightly job
(nightly.py): both read SHOPSYNC_POLICY, by default retention.toml beside the scripts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

import shopsync
from shopsync.errors import SignatureError, WebhookError
from shopsync.sinks import JsonLines
from shopsync.store.changes import changed, clear_changes

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("SHOPSYNC_STORE", "sqlite:///shop.db")
POLICY_FILE = Path(os.environ.get("SHOPSYNC_POLICY", HERE / "retention.toml"))  # as nightly.py
OUT_DIR = Path(os.environ.get("SHOPSYNC_OUT", HERE / "out"))  # as nightly.py

log = logging.getLogger("webhook_worker")


def load_policy(path: Path = POLICY_FILE) -> shopsync.Policy:
    """The nightly job's policy. A missing file stops the worker instead of planning with
    the defaults: another holdout group would receive the marketing the nightly withholds."""
    if not path.is_file():
        raise SystemExit(
            f"no policy file at {path}: write it (an empty file means the documented "
            "defaults) or point SHOPSYNC_POLICY at the nightly job's file"
        )
    return shopsync.Policy.from_toml(path)


def create_app(
    store: shopsync.Store | None = None, secrets: Mapping[str, str] | None = None
) -> Flask:
    """The intake: verify and store each delivery; the changed customers are noted in the
    same transaction for :func:`work`. Nothing is planned or sent inside the request."""
    store = store or shopsync.Store(STORE_URL)
    if secrets is None:
        secrets = {
            "shopify": os.environ["SHOPIFY_APP_SECRET"],  # the app's client secret
            "woocommerce": os.environ["WOO_WEBHOOK_SECRET"],  # the webhook's own secret
        }
    app = Flask(__name__)

    @app.post("/webhooks/<platform>")
    def receive(platform: str) -> Any:
        if platform not in secrets:
            return jsonify(error="unknown platform"), 404
        try:
            result = shopsync.webhooks.handle(
                platform, request.headers, request.get_data(), store, secrets[platform]
            )
        except SignatureError:
            return jsonify(error="invalid signature"), 401
        except WebhookError as exc:
            return jsonify(error=str(exc)), 400
        # result.export holds the answer to a customers/data_request: send it to the merchant.
        return jsonify(status=result.status, customers=list(result.customer_ids))

    return app


def work(
    store: shopsync.Store,
    policy: shopsync.Policy,
    sinks: Sequence[Any],
    now: dt.datetime | None = None,
    *,
    batch: int = 500,
) -> int:
    """One pass: plan each noted customer, deliver, then clear their notes; returns how many
    notes were handled. Killed halfway, the next pass plans them again and the outbox sends
    nothing twice. A customer whose planning fails in a way that may pass keeps the note."""
    now = now or dt.datetime.now(dt.timezone.utc)
    actions: list[Any] = []
    handled = []
    for note in changed(store, limit=batch):
        try:
            plan = shopsync.plan_customer(
                store, policy, now, note.platform, note.shop, note.customer_id
            )
        except Exception as exc:  # one customer must not stop the others
            again = not isinstance(exc, shopsync.ShopSyncError) or exc.retryable
            log.warning(
                "%s %s: not planned (%s): %s",
                note.shop,
                note.customer_id,
                "kept for the next pass" if again else "dropped",  # e.g. a shop removed since
                exc,
            )
            if again:
                continue
        else:
            actions.extend(plan.actions)
        handled.append(note)
    report = shopsync.apply(actions, store, sinks, now=now, policy=policy)
    clear_changes(store, handled)
    if handled:
        log.info("planned %d changed customers: %s", len(handled), report)
    return len(handled)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    policy = load_policy()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sinks = [JsonLines("actions.jsonl", root=OUT_DIR)]  # named as the nightly job's
    with shopsync.Store(STORE_URL) as store:
        while True:
            try:
                count = work(store, policy, sinks)
            except shopsync.ShopSyncError as exc:
                if not exc.retryable or "--once" in argv:
                    raise
                # e.g. the nightly job is applying: the notes stay for the next pass
                log.warning("pass not done, trying again in 30 s: %s", exc)
                count = 0
            if "--once" in argv:
                print(f"planned {count} changed customers")
                return 0
            if count == 0:
                time.sleep(30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
