"""Revision 0014 (the order facts' change sequence): an upgrade cut short leaves the schema as
it was and runs again; the orders already stored are read whole through the snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.operations import Operations
from sqlalchemy import inspect, text

from shopsync.models import Order
from shopsync.store import Store, facts
from tests.store.test_facts import PLATFORM, T0, assert_same_read, micros
from tests.store.test_facts_crash import SHOP, an_order


@pytest.fixture(autouse=True)
def snapshot_always(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield


def test_an_upgrade_cut_short_runs_again_and_back_fills(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0013")
    with old.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO shops (shop_id, platform, shop, created_at) VALUES (1, :p, :s, 0)"),
            {"p": PLATFORM, "s": SHOP},
        )
        conn.execute(
            text(
                "INSERT INTO orders (shop_id, id, customer_id, created_at, updated_at,"
                " financial_status, fulfillment_status, currency, subtotal, total_discounts,"
                " total_shipping, total_tax, total, total_refunded, discount_codes, tags)"
                " VALUES (1, '77', 'c1', :t, :t, 'paid', 'unfulfilled', 'USD', 100000, 0, 0, 0,"
                " 100000, 0, '[]', '[]')"
            ),
            {"t": micros(T0)},
        )

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the columns were added, before the tables

    monkeypatch.setattr(Operations, "create_table", killed)
    with pytest.raises(KeyboardInterrupt):
        old.migrate()
    monkeypatch.undo()
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    assert old.schema_version() == "0013"
    assert "seq" not in {c["name"] for c in inspect(old.engine).get_columns("orders")}
    old.close()
    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT seq FROM orders")).scalar_one() == 0
        assert conn.execute(text("SELECT facts_seq FROM shops")).scalar_one() == 0
    at = micros(T0 + dt.timedelta(days=400))
    assert_same_read(store, 1, at)  # the snapshot, from the back-filled rows
    store.upsert([an_order(5)])
    store.delete(Order, PLATFORM, SHOP, "77")
    assert_same_read(store, 1, at)
    store.close()
