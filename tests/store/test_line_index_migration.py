"""Revision 0021 drops ``ix_line_items_product`` (issue 20): the upgraded schema is the declared
one, the lines stored before are read as they were, and a downgrade builds the index again."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shopsync.models import Order
from shopsync.store import Store, changes
from tests.store.alembic_kit import downgrade, drift, indexes
from tests.test_store import full_order

INDEX = "ix_line_items_product"


def test_upgrade_drops_the_index_and_downgrade_builds_it_again(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0020")
    assert indexes(old.engine, "line_items")[INDEX] == ["shop_id", "product_id"]
    placed = full_order()
    with monkeypatch.context() as patched:  # this version's notes need revision 0026
        patched.setattr(changes, "note", lambda *args: 0)
        old.upsert([placed])
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert INDEX not in indexes(store.engine, "line_items")
    assert drift(store.engine) == []
    assert store.get(Order, placed.platform, placed.shop, placed.id) == placed

    downgrade(store.engine, "0020")
    assert store.schema_version() == "0020"
    assert indexes(store.engine, "line_items")[INDEX] == ["shop_id", "product_id"]
    with store.engine.connect() as conn:
        lines = conn.execute(text("SELECT count(*) FROM line_items")).scalar_one()
    assert lines == len(placed.line_items) > 0
    store.close()
