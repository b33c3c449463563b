"""A store error during a delivery fails the run and costs the row nothing.

The store going away (a connection terminated, a lock timeout, a failover) says nothing about
the sink: counting it as a failed attempt would park a message after a few database blips,
and a parked row is never sent without an operator. The run raises instead (the worker
retries the job) and the row keeps its attempts and next_attempt_at; a sink's own failure
still counts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from shopsync.errors import TransportError
from shopsync.models import Customer
from shopsync.outbox import Backoff, _attempts, apply, list_outbox
from shopsync.sinks import DeliveryContext
from shopsync.store import Store
from shopsync.store.errors import DatabaseError
from tests.apply.helpers import NOW, customer, nudge
from tests.apply.test_outbox import Recorder

BACKOFF = Backoff(initial=60, factor=2, max_attempts=3)


def _blip() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


@pytest.fixture
def shop_store(store: Store) -> Store:
    store.upsert([customer(str(i)) for i in range(1, 4)])
    return store


def _rows(store: Store) -> list[tuple[str, str, int, dt.datetime]]:
    return [(r.customer_id, r.status, r.attempts, r.next_attempt_at) for r in list_outbox(store)]


class StoreReadingSink(Recorder):
    """A sink that reads the store while delivering (as the email and platform sinks do),
    through a store that fails as told."""

    def __init__(self) -> None:
        super().__init__()
        self.store_fails = 0

    def deliver(self, action: Any, context: DeliveryContext) -> dict[str, Any]:
        if self.store_fails:
            self.store_fails -= 1
            raise _blip()
        return super().deliver(action, context)


def test_a_store_error_in_the_sink_fails_the_run_and_leaves_the_row_as_it_was(
    shop_store: Store,
) -> None:
    sink = StoreReadingSink()
    apply([nudge("1")], shop_store, [sink], now=NOW - dt.timedelta(days=1), backoff=BACKOFF)
    before = _rows(shop_store)
    assert before == [("1", "pending", 0, NOW - dt.timedelta(hours=1))]  # not due yet
    for blip in range(BACKOFF.max_attempts + 2):  # more blips than attempts allowed
        sink.store_fails = 1
        with pytest.raises(DatabaseError):
            apply(None, shop_store, [sink], now=NOW + dt.timedelta(minutes=blip), backoff=BACKOFF)
        assert _rows(shop_store) == before
    report = apply(None, shop_store, [sink], now=NOW + dt.timedelta(hours=1), backoff=BACKOFF)
    assert report.delivered == 1 and sink.delivered == [nudge("1").idempotency_key]
    assert [(r.status, r.attempts) for r in list_outbox(shop_store)] == [("done", 1)]


def test_a_store_error_reading_the_customer_fails_the_run(
    shop_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Recorder()
    apply([nudge("1")], shop_store, [sink], now=NOW - dt.timedelta(days=1), backoff=BACKOFF)
    before = _rows(shop_store)
    real_get = Store.get

    def failing_get(self: Store, model: Any, *args: Any, **kw: Any) -> Any:
        if model is Customer:
            raise _blip()
        return real_get(self, model, *args, **kw)

    monkeypatch.setattr(Store, "get", failing_get)
    for blip in range(BACKOFF.max_attempts + 1):
        with pytest.raises(DatabaseError):
            apply(None, shop_store, [sink], now=NOW + dt.timedelta(minutes=blip), backoff=BACKOFF)
        assert _rows(shop_store) == before
    monkeypatch.undo()
    assert apply(None, shop_store, [sink], now=NOW, backoff=BACKOFF).delivered == 1


def test_rows_before_the_store_error_are_settled_and_rows_after_it_untouched(
    shop_store: Store,
) -> None:
    sink = StoreReadingSink()
    actions = [nudge("1"), nudge("2"), nudge("3")]
    sink.fail[actions[0].idempotency_key] = [TransportError("timed out: POST x")]
    apply(actions, shop_store, [sink], now=NOW - dt.timedelta(days=1), backoff=BACKOFF)

    real = sink.deliver

    def second_blips(action: Any, context: DeliveryContext) -> dict[str, Any]:
        if action.customer_id == "2":
            raise _blip()
        return real(action, context)

    sink.deliver = second_blips  # type: ignore[method-assign]
    with pytest.raises(DatabaseError):
        apply(None, shop_store, [sink], now=NOW, backoff=BACKOFF)
    by = {r.customer_id: r for r in list_outbox(shop_store)}
    assert (by["1"].status, by["1"].attempts) == ("pending", 1)  # the sink's failure counts
    assert by["1"].next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert (by["2"].status, by["2"].attempts) == ("pending", 0)
    assert (by["3"].status, by["3"].attempts) == ("pending", 0)  # not reached


def _terminate_store(store: Store) -> None:
    """pg_terminate_backend on every connection the store's engine holds open."""
    admin = create_engine(store.engine.url)
    try:
        with admin.begin() as conn:
            mine = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> :me "
                    "AND application_name = 'shopsync-outbox-test'"
                ),
                {"me": mine},
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_terminated_connection_during_delivery_costs_no_attempt(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sep = "&" if "?" in postgres_url else "?"
    store = Store(f"{postgres_url}{sep}application_name=shopsync-outbox-test")
    try:
        store.upsert([customer("1")])
        sink = Recorder()
        apply([nudge("1")], store, [sink], now=NOW - dt.timedelta(days=1), backoff=BACKOFF)
        before = _rows(store)
        real_claim = _attempts._claim
        kills = {"left": BACKOFF.max_attempts + 1}

        def claim_then_terminate(store_: Store, row: Any, attempts: int, at: int) -> bool:
            claimed = real_claim(store_, row, attempts, at)
            if kills["left"]:
                kills["left"] -= 1
                _terminate_store(store_)  # the next read of the row's customer fails
            return claimed

        monkeypatch.setattr(_attempts, "_claim", claim_then_terminate)
        for blip in range(BACKOFF.max_attempts + 1):
            with pytest.raises(DatabaseError) as raised:
                apply(None, store, [sink], now=NOW + dt.timedelta(minutes=blip), backoff=BACKOFF)
            assert getattr(raised.value, "connection_invalidated", False)  # the terminate's
            assert _rows(store) == before
        report = apply(None, store, [sink], now=NOW, backoff=BACKOFF)
        assert report.delivered == 1 and sink.delivered == [nudge("1").idempotency_key]
        assert [(r.status, r.attempts) for r in list_outbox(store)] == [("done", 1)]
    finally:
        store.close()
