"""The webhook sink: signed JSON, Idempotency-Key, retries on 5xx and timeouts, 4xx parks."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopsync.http import RetryPolicy
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Webhook
from shopsync.sinks.webhook import SIGNATURE_HEADER, verify_signature
from shopsync.store import Store
from tests.apply.helpers import NOW, Receiver, customer, nudge

SECRET = "webhook-secret-0123456789"
FAST = RetryPolicy(attempts=3, max_elapsed=5, initial_wait=0.01, max_wait=0.02)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert([customer(str(i)) for i in range(1, 5)])
    return s


def sink(url: str, **kw: object) -> Webhook:
    return Webhook(url, SECRET, retry_policy=FAST, timeout=0.5, **kw)  # type: ignore[arg-type]


def test_posts_signed_json_with_an_idempotency_key(store: Store) -> None:
    with Receiver() as receiver:
        report = apply([nudge("1")], store, [sink(receiver.url)], now=NOW)
    assert report.delivered == 1
    (got,) = receiver.received
    assert got.headers["Idempotency-Key"] == nudge("1").idempotency_key
    assert verify_signature(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    assert not verify_signature("another-secret-000000", got.body, got.headers[SIGNATURE_HEADER])
    body = got.json()
    assert body["kind"] == "nudge" and body["customer"]["email"] == "c1@example.com"
    assert body["action"]["reason"] == "you have not ordered for 90 days"
    assert list_outbox(store)[0].result == {"status": 200, "request_id": None}


def test_5xx_and_timeouts_are_retried_garbage_answers_accepted(store: Store) -> None:
    with Receiver() as receiver:
        receiver.script = [(503, 0, b""), (502, 0, b"")]  # then 200
        assert apply([nudge("1")], store, [sink(receiver.url)], now=NOW).delivered == 1
        receiver.script = [(200, 1.5, b"")]  # slower than the timeout, then answered
        assert apply([nudge("2")], store, [sink(receiver.url)], now=NOW).delivered == 1
        receiver.script = [(200, 0, b"\x00not json at all")]
        assert apply([nudge("3")], store, [sink(receiver.url)], now=NOW).delivered == 1
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    # the timed-out attempt reached the receiver too: at least once, same key
    assert keys.count(nudge("2").idempotency_key) == 2
    assert set(keys) == {nudge(str(i)).idempotency_key for i in (1, 2, 3)}


def test_4xx_parks_and_5xx_storms_end_pending_then_parked(store: Store) -> None:
    with Receiver() as receiver:
        receiver.script = [(422, 0, b'{"error":"unknown list"}')]
        report = apply([nudge("1")], store, [sink(receiver.url)], now=NOW)
        assert report.parked == 1
        receiver.script = [(500, 0, b"")] * 3
        report = apply([nudge("2")], store, [sink(receiver.url, name="w2")], now=NOW)
        assert report.failed == 1
    parked = list_outbox(store, status="parked")[0]
    assert "request refused" in (parked.reason or "") and "status=422" in (parked.reason or "")
    pending = list_outbox(store, status="pending")[0]
    assert "server error" in (pending.reason or "")


def test_secret_is_not_in_repr_or_dry_run(store: Store) -> None:
    hook = sink("https://hooks.example/x?token=abc123")
    assert SECRET not in repr(hook) and "abc123" not in hook.name
    report = apply([nudge("1")], store, [hook], now=NOW, dry_run=True)
    payload = report.deliveries[0].payload or {}
    assert SIGNATURE_HEADER not in payload["headers"] and "abc123" not in payload["url"]
