"""The NPS loop end to end against both emulators: sync, plan (surveys due after delivery,
or after fulfilment where the platform gives no delivery date: WooCommerce core), apply
(emails received by the local SMTP server), a score link in an email clicked over HTTP on
127.0.0.1 (the survey WSGI app), the answer recorded, and the detractor's alert delivered to
the support webhook exactly once; a promoter gets the review request of their order."""

from __future__ import annotations

import datetime as dt
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import shopsync
from shopsync.core.policy import Policy
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Brand, Email, Webhook
from shopsync.store.survey_rows import survey_answer_rows
from shopsync.surveys import SurveyLinks, survey_app
from tests.apply.helpers import Receiver, smtp_server
from tests.sync.emulated import connect, emulated

SECRET = "survey-secret-0123456789abcdef"
HOOK_SECRET = "support-hook-secret-0123456789"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/survey"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def links_in(message: Any) -> dict[int, str]:
    text = message.get_body(("plain",)).get_content()
    return {int(n): url for n, url in re.findall(r"^(\d+): (http://\S+)", text, re.M)}


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_survey_answer_and_detractor_alert_end_to_end(platform: str, tmp_path: Path) -> None:
    with (
        emulated(platform, seed=11, customers=30, orders=90, products=5) as shop,
        smtp_server() as smtp,
        Receiver() as support_desk,
    ):
        adapter = connect(shop)
        store = shopsync.Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        orders = list(store.iter(shopsync.Order, platform, adapter.shop))
        shipped = [f.created_at for o in orders for f in o.fulfillments]
        assert shipped, "the emulated shop shipped nothing"
        as_of = max(shipped) + dt.timedelta(days=11)
        policy = Policy.from_dict(
            {
                "surveys": {"enabled": True, "max_late_days": 3650},
                "reviews": {"enabled": False},
                "winback": {"enabled": False},
                "replenishment": {"enabled": False},
                "warranty": {"enabled": False},
                "loyalty": {"enabled": False},
                "holdout": {"share": 0},
                "frequency_cap": {"email_hours": 0, "max_emails": 99},
            }
        )
        plan = shopsync.plan(store, policy=policy, as_of=as_of)
        surveys = [a for a in plan if a.kind == "survey_request"]
        assert len(surveys) >= 2, plan.summary()
        # due after the delivery date where the shipment has one (Shopify's deliveredAt,
        # WooCommerce's shipment-tracking date_delivered), else after the shipment
        assert {a.facts["after"] for a in surveys} <= {"delivery", "fulfilment"}

        brand = Brand(name="Acme", address="1 Main St, Springfield", url="https://acme.example")
        # the email sink needs the app's URL and the app the sinks: the links come last
        email = Email(
            "127.0.0.1",
            smtp.port,
            sender="shop@acme.example",
            brand=brand,
            security="none",
            unsubscribe_url="https://acme.example/unsubscribe",
            unsubscribe_secret=SECRET,
        )
        support = Webhook(support_desk.url, HOOK_SECRET, name="support", kinds={"survey_detractor"})
        app = survey_app(store, SECRET, support=[support], customer=[email], policy=policy)
        with serve(app) as base:
            email.extra_context = SurveyLinks(base, SECRET)
            report = apply(plan, store, [email, support], now=as_of, policy=policy)
            assert report.delivered == len(plan.actions), report
            mails = [m for m in smtp.messages if m["X-Shopsync-Kind"] == "survey_request"]
            assert len(mails) == len(surveys)
            first, second = links_in(mails[0]), links_in(mails[1])
            assert sorted(first) == list(range(11))
            assert "List-Unsubscribe" in mails[0]  # marketing: consent and one-click opt-out

            assert get(first[2]) == 200  # a detractor
            assert get(first[10]) == 409  # the first answer stands
            assert get(second[10]) == 200  # a promoter
            assert get(first[2].replace("token=", "token=x")) == 403
            answers = {a.score for a in survey_answer_rows(store, platform, adapter.shop)}
            assert answers == {2, 10}

            later = as_of + dt.timedelta(minutes=1)
            apply(None, store, [email, support], now=later, policy=policy)
            apply(None, store, [email, support], now=later, policy=policy)  # nothing twice
        [alert] = support_desk.received
        assert alert.headers["X-Shopsync-Kind"] == "survey_detractor"
        body = alert.json()
        assert body["action"]["score"] == 2 and body["customer"]["email"]
        promoter = [m for m in smtp.messages if m["X-Shopsync-Kind"] == "review_request"]
        assert len(promoter) == 1
        done = {(e.kind, e.status) for e in list_outbox(store) if e.kind != "survey_request"}
        assert done == {("survey_detractor", "done"), ("review_request", "done")}
        store.close()
