"""Revision 0022 adds ``program_due`` (issue 19): the upgraded schema is the declared one, a
store upgraded from 0021 keeps what it held and starts without program moments (its first
incremental plan plans every customer), and a downgrade drops the table."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from shopsync.models import Order
from shopsync.store import Store, changes
from shopsync.store.incremental import program_not_due, settle
from tests.store.alembic_kit import downgrade, drift
from tests.test_store import full_order


def test_upgrade_adds_program_due_and_downgrade_drops_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0021")
    assert "program_due" not in inspect(old.engine).get_table_names()
    placed = full_order()
    with monkeypatch.context() as patched:  # this version's notes need revision 0026
        patched.setattr(changes, "note", lambda *args: 0)
        old.upsert([placed])
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert drift(store.engine) == []
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM program_due")).scalar_one() == 0
    assert store.get(Order, placed.platform, placed.shop, placed.id) == placed
    shop_id = store.shop_id(placed.platform, placed.shop)
    settle(store, shop_id, (), {}, 100, "l", {"a": 200, "b": None, "c": 50}, "p")
    assert program_not_due(store, shop_id, 150, "p") == {"a", "b"}
    assert program_not_due(store, shop_id, 150, "other") == set()
    assert program_not_due(store, shop_id, 250, "p") == {"b"}
    # derived earlier: the later row is kept but due at once (the back-dated plan consumed
    # a change the later derivation never saw)
    settle(store, shop_id, (), {}, 90, "l", {"a": 95}, "p")
    assert program_not_due(store, shop_id, 150, "p") == {"b"}

    downgrade(store.engine, "0021")
    assert store.schema_version() == "0021"
    assert "program_due" not in inspect(store.engine).get_table_names()
    store.close()
