"""One-click unsubscribe (RFC 8058) through the WSGI app; platform consent changes."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from shopsync.errors import SignatureError
from shopsync.outbox import (
    apply,
    list_outbox,
    record_unsubscribe,
    unsubscribe_app,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge
from tests.apply.test_outbox import Recorder

SECRET = "unsubscribe-secret-0123456789"
SHOP = "acme.myshopify.com"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert([customer("1"), customer("2")])
    return s


def call(app: Any, method: str, query: str, body: bytes = b"") -> tuple[str, str]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/unsubscribe",
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    out = b"".join(app(environ, start_response)).decode()
    return seen["status"], out


def test_tokens_verify_and_refuse_tampering() -> None:
    token = unsubscribe_token(SECRET, "shopify", SHOP, "1")
    assert verify_unsubscribe_token(SECRET, token) == ("shopify", SHOP, "1", "email")
    other = unsubscribe_token(SECRET, "shopify", SHOP, "2")
    forged = token.split(".")[0] + "." + other.split(".")[1]
    for bad in (forged, token + "x", "garbage", ""):
        with pytest.raises(SignatureError):
            verify_unsubscribe_token(SECRET, bad)
    with pytest.raises(SignatureError):
        verify_unsubscribe_token("a-different-secret-0000", token)


def test_one_click_post_cancels_pending_marketing_before_delivery(store: Store) -> None:
    sink = Recorder()
    later = NOW + dt.timedelta(hours=3)
    marketing = nudge("1", due_at=later)
    transactional = nudge("1", 9, due_at=later, marketing=False)
    apply([marketing, transactional, nudge("2", due_at=later)], store, [sink], now=NOW)
    app = unsubscribe_app(store, SECRET)
    token = unsubscribe_token(SECRET, "shopify", SHOP, "1")
    status, page = call(app, "GET", f"token={token}")
    assert status == "200 OK" and '<form method="post"' in page  # a GET changes nothing
    assert len(list_outbox(store, status="pending")) == 3
    status, _ = call(app, "POST", f"token={token}", b"List-Unsubscribe=One-Click")
    assert status == "200 OK"
    (cancelled,) = list_outbox(store, status="cancelled")
    assert cancelled.idempotency_key == marketing.idempotency_key
    assert cancelled.reason == "customer unsubscribed (one-click link)"
    # new marketing planned later is withheld too; transactional mail still goes out
    apply([nudge("1", 2)], store, [sink], now=later)
    assert sorted(sink.delivered) == sorted(
        [transactional.idempotency_key, nudge("2").idempotency_key]
    )
    assert "unsubscribed (one-click link)" in (
        list_outbox(store, status="cancelled")[-1].reason or ""
    )
    # a second click is harmless
    assert call(app, "POST", f"token={token}")[0] == "200 OK"


def test_bad_tokens_and_paths(store: Store) -> None:
    app = unsubscribe_app(store, SECRET)
    assert call(app, "POST", "token=nope")[0] == "403 Forbidden"
    assert call(app, "DELETE", "token=nope")[0] == "405 Method Not Allowed"
    status, _ = call(app, "POST", "")
    assert status == "403 Forbidden"


def test_record_unsubscribe_returns_cancelled_count(store: Store) -> None:
    apply([nudge("2", due_at=NOW + dt.timedelta(days=1))], store, [Recorder()], now=NOW)
    assert record_unsubscribe(store, "shopify", SHOP, "2", source="support ticket") == 1
    assert record_unsubscribe(store, "shopify", SHOP, "2") == 0
