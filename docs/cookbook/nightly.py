"""Nightly job: sync every shop, bring loyalty up to date, plan, and deliver.

Run it from cron once a night, with the credentials in the environment:

    30 2 * * *  cd /srv/shopsync && SHOPIFY_TOKEN=... python nightly.py >> nightly.log 2>&1

It exits with status 1 when a shop could not be synced or a delivery was parked, so cron's
mail (or your monitoring) hears about it; the next run continues from the checkpoints.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Any

import shopsync
from shopsync.sinks import JsonLines

SHOPS: dict[str, dict[str, Any]] = {
    # Adapter settings; a value written "env:NAME" is read from the environment.
    "shopify": {"shop": "acme.myshopify.com", "access_token": "env:SHOPIFY_TOKEN"},
}
HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("SHOPSYNC_STORE", "sqlite:///shop.db")
POLICY_FILE = Path(os.environ.get("SHOPSYNC_POLICY", HERE / "retention.toml"))
OUT_DIR = Path(os.environ.get("SHOPSYNC_OUT", HERE / "out"))

log = logging.getLogger("nightly")


def resolve(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with every "env:NAME" value read from the environment."""
    return {
        key: os.environ[value[4:]] if isinstance(value, str) and value.startswith("env:") else value
        for key, value in settings.items()
    }


def load_policy(path: Path = POLICY_FILE) -> shopsync.Policy:
    """The retention policy. A missing file stops the job instead of planning with the
    defaults: the webhook worker (webhook_flask.py) reads the same file, and two jobs with
    different policies would disagree on who is in the holdout group."""
    if not path.is_file():
        raise SystemExit(
            f"no policy file at {path}: write it (an empty file means the documented "
            "defaults) or set SHOPSYNC_POLICY"
        )
    return shopsync.Policy.from_toml(path)


def nightly(
    shops: dict[str, dict[str, Any]],
    store_url: str,
    out_dir: Path,
    policy: shopsync.Policy,
    as_of: dt.datetime | None = None,
) -> int:
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    store = shopsync.Store(store_url)
    adapters, failed = [], 0
    try:
        for platform, settings in shops.items():
            adapter = shopsync.connect(platform, **resolve(settings))
            try:
                report = shopsync.sync(adapter, store)
            except shopsync.ShopSyncError as exc:  # one shop failing must not stop the others
                log.error("%s %s: sync failed: %s", platform, adapter.shop, exc)
                adapter.close()
                failed += 1
                continue
            log.info(
                "%s %s: %d records, %d quarantined",
                platform,
                adapter.shop,
                report.records,
                report.total("quarantined"),
            )
            shopsync.loyalty.update_ledger(
                store, platform, adapter.shop, as_of=as_of, policy=policy
            )
            adapters.append(adapter)
        plan = shopsync.plan(store, policy, as_of)
        log.info("%s", plan.summary())
        sinks = [*adapters, JsonLines("actions.jsonl", root=out_dir)]
        applied = shopsync.apply(plan, store, sinks, now=as_of, policy=policy)
        log.info("applied: %s", applied)
    finally:
        for adapter in adapters:
            adapter.close()
        store.close()
    return 1 if failed or applied.parked else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    sys.exit(nightly(SHOPS, STORE_URL, OUT_DIR, load_policy()))
