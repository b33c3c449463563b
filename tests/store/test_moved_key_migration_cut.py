"""Revision 0024 cut short half-way (a kill or Ctrl-C after renaming some rows) leaves every
key and the schema version as they were, on both engines: the next open upgrades it whole."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shopsync.store import Store
from shopsync.store.schema import loyalty_ledger
from tests.store.alembic_kit import downgrade
from tests.store.test_moved_key_migration import _keys, _row

CID, AT = "c" * 130, 1_700_000_000_000_000


def _old(order_id: str) -> str:
    text = f"adjust:moved:{CID}:{order_id}:{AT}"
    return "adjust:sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_an_upgrade_to_0024_cut_half_way_changes_nothing(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0023")
    orders = [f"{'o' * 130}{i}" for i in range(3)]
    with old.transaction() as conn:
        for n in range(3):  # several shops, each with moved orders' reversals
            shop_id = old.shop_id("shopify", f"s{n}.example", conn)
            conn.execute(
                loyalty_ledger.insert(), [_row(shop_id, _old(o), "adjust", -1, o) for o in orders]
            )
    before = _keys(old)
    real, calls = hashlib.sha256, [0]

    def dies(data: bytes = b"") -> Any:
        if data.startswith(b"adjust:moved:"):
            calls[0] += 1
            if calls[0] == 5:  # the middle of the second shop
                raise KeyboardInterrupt
        return real(data)

    monkeypatch.setattr(hashlib, "sha256", dies)
    with pytest.raises(KeyboardInterrupt):
        old.migrate()
    monkeypatch.setattr(hashlib, "sha256", real)
    assert calls[0] == 5
    assert old.schema_version() == "0023"
    assert _keys(old) == before
    old.close()
    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert all(k.startswith("adjust:moved:sha256:") for k in _keys(store))
    store.close()


def test_0024_down_and_up_twice_lands_on_the_same_keys(store_url: str) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0023")
    order = "o" * 200
    with old.transaction() as conn:
        shop_id = old.shop_id("shopify", "twice.example", conn)
        conn.execute(loyalty_ledger.insert(), [_row(shop_id, _old(order), "adjust", -1, order)])
    old.close()
    store = Store(store_url)
    up = _keys(store)
    assert up == ["adjust:moved:sha256:" + _old(order).removeprefix("adjust:sha256:")]
    for _ in range(2):
        downgrade(store.engine, "0023")
        assert _keys(store) == [_old(order)]
        store.migrate()
        assert _keys(store) == up
    store.close()
