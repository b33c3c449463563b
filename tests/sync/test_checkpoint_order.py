"""A page's checkpoint is never durable before the page's records.

Sync commits each page together with its checkpoint (one transaction). Were the checkpoint
committed first, or in a transaction of its own ahead of the records, a crash in between
would leave the checkpoint past records the store never got, and the next run, starting at
that checkpoint, would never read them again. These tests crash the sync at the store
boundary (right after the checkpoint is written, right after the page's records are written,
inside the records' insert) and check that no record is behind the stored checkpoint without
being stored, and that the next run ends with every record. The overlap is zero, so a record
the checkpoint skipped is not re-read by chance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import shopsync.store._upsert as upsert_module
from shopsync.models import Order
from shopsync.store import Store
from shopsync.sync import sync
from tests.test_models import order
from tests.test_sync import ListAdapter, at, stored

CRASH_PAGE = 3  # of 4
PAGE = 10


class Crash(BaseException):
    """A kill at that point: nothing after it runs, nothing catches it."""


@pytest.fixture
def shop() -> ListAdapter:
    adapter = ListAdapter(page_size=PAGE)  # PAGE >= COPY_MIN_ROWS: PostgreSQL writes by COPY
    for n in range(4 * PAGE):  # four pages, each order at its own minute
        adapter.orders[f"o{n:02d}"] = order(id=f"o{n:02d}", updated_at=at(n))
    return adapter


def _crash_on(target: Any, name: str, monkeypatch: pytest.MonkeyPatch, counts: Any) -> None:
    """Make ``target.name`` crash right after its ``CRASH_PAGE``-th call that ``counts``."""
    real = getattr(target, name)
    calls = {"n": 0}

    def crashing(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        if counts(*args, **kw):
            calls["n"] += 1
            if calls["n"] == CRASH_PAGE:
                raise Crash(name)
        return out

    monkeypatch.setattr(target, name, crashing)


def _orders_cursor(*args: Any, **kw: Any) -> bool:
    return args[3] == "orders"  # (self, platform, shop, resource)


def _order_page(*args: Any, **kw: Any) -> bool:
    return any(isinstance(r, Order) for r in args[1])  # (self, records)


def _order_rows(*args: Any, **kw: Any) -> bool:
    return bool(args[1].name == "orders" and args[2])  # (conn, table, rows)


POINTS = {
    "after the checkpoint is written": (Store, "set_cursor", _orders_cursor),
    "after the page's records are written": (Store, "upsert", _order_page),
    "inside the orders' insert": (upsert_module, "insert_rows", _order_rows),  # COPY on PostgreSQL
}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_crash_between_checkpoint_and_records_loses_no_record(
    store: Store, shop: ListAdapter, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, name, counts = POINTS[point]
    with monkeypatch.context() as patch:
        _crash_on(target, name, patch, counts)
        with pytest.raises(Crash):
            sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    cursor = store.get_cursor(shop.platform, shop.shop, "orders")
    have = stored(store)
    assert cursor is not None and cursor.high_water is not None  # pages before the crash
    behind = {o.id for o in shop.orders.values() if o.updated_at < cursor.high_water}
    assert behind - set(have) == set(), "the checkpoint is past records the store lacks"
    assert len(have) == PAGE * (CRASH_PAGE - 1)  # the crashed page vanished whole

    report = sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    assert report.resources["orders"].since == cursor.high_water
    after = stored(store)
    assert sorted(after) == sorted(shop.orders)
    assert {i: o.updated_at for i, o in after.items()} == {
        i: o.updated_at for i, o in shop.orders.items()
    }
    final = store.get_cursor(shop.platform, shop.shop, "orders")
    assert final is not None and final.high_water == at(4 * PAGE - 1)
