"""The platform sink writes a points balance only from a current loyalty ledger (issue 17.1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync import loyalty
from shopsync.core.actions import LoyaltyAward
from shopsync.core.loyalty import to_micros
from shopsync.outbox import apply, list_outbox
from shopsync.store import Store
from shopsync.testing import EmulatedShop
from tests.sync.emulated import FAST_RETRIES, emulated

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["shopify", "woocommerce"])
def synced(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EmulatedShop, Any, Store]]:
    end = NOW - dt.timedelta(days=1)
    with emulated(request.param, seed=5, customers=12, orders=60, products=6, end=end) as shop:
        adapter = shopsync.connect(shop.platform, **shop.settings, retry_policy=FAST_RETRIES)
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        yield shop, adapter, store
        store.close()
        adapter.close()


def _award(adapter: Any, customer_id: str, n: int = 1) -> LoyaltyAward:
    return LoyaltyAward(
        platform=adapter.platform,
        shop=adapter.shop,
        customer_id=customer_id,
        due_at=NOW - dt.timedelta(hours=1),
        reason="order paid",
        facts={"points": 10},
        idempotency_key=f"loyalty_award:test:{customer_id}:{n}",
        points=10,
    )


def _written(shop: EmulatedShop, customer_id: str) -> str | None:
    emulator: Any = shop.emulator
    if shop.platform == "shopify":
        field = emulator.metafields.get((customer_id, "loyalty", "points_balance"))
        return None if field is None else str(field["value"])
    value = emulator.customer_meta.get(customer_id, {}).get("_loyalty_points_balance")
    return None if value is None else str(value)


def _with_points(store: Store, adapter: Any) -> str:
    """A customer with approved points once the ledger is derived (nothing written here)."""
    derived = loyalty.update_ledger(store, adapter.platform, adapter.shop, as_of=NOW, dry_run=True)
    assert derived.derived > 0
    for c in store.iter(shopsync.Customer, adapter.platform, adapter.shop):
        mine = loyalty.update_ledger(
            store, adapter.platform, adapter.shop, as_of=NOW, customer_ids=[c.id], dry_run=True
        )
        if c.email and mine.derived:
            return c.id
    raise AssertionError("nobody earned points in the emulated shop")


def test_a_never_derived_ledger_holds_the_row_and_writes_nothing(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _with_points(store, adapter)
    report = apply([_award(adapter, cid)], store, [adapter], now=NOW)
    (row,) = list_outbox(store)
    assert report.delivered == 0 and row.status == "pending", row
    assert row.reason is not None and "never brought up to date" in row.reason
    assert "shopsync.plan" in row.reason
    assert _written(shop, cid) is None  # no 0 overwrote the customer's points
    # a plan brings the ledger up to date; the held row then goes out with the real balance
    shopsync.plan(store, shopsync.Policy(), NOW)
    apply(None, store, [adapter], now=NOW + dt.timedelta(hours=2))
    (row,) = list_outbox(store)
    assert row.status == "done", row.reason
    points = loyalty.balance(
        store, (adapter.platform, adapter.shop, cid), NOW + dt.timedelta(hours=2)
    )
    assert points.lifetime > 0
    assert _written(shop, cid) == str(points.approved)


def test_an_apply_given_a_policy_derives_a_never_derived_ledger_first(synced: Any) -> None:
    """A worker's incremental plans never write the ledger, and its shop's full plan may not
    have run yet: an apply that passes its policy gives the settings to derive with, so the
    award goes out now instead of waiting out a retry's backoff (the chaos test saw it)."""
    shop, adapter, store = synced
    cid = _with_points(store, adapter)
    report = apply([_award(adapter, cid)], store, [adapter], now=NOW, policy=shopsync.Policy())
    (row,) = list_outbox(store)
    assert report.delivered == 1 and row.status == "done", row.reason
    assert loyalty.ledger_status(store, adapter.platform, adapter.shop, NOW) is None
    points = loyalty.balance(store, (adapter.platform, adapter.shop, cid), NOW)
    assert points.lifetime > 0
    assert _written(shop, cid) == str(points.approved)


def test_an_apply_given_other_settings_keeps_the_ledger_as_derived(synced: Any) -> None:
    """The apply's policy only starts a ledger never derived: one derived by a plan keeps the
    settings it was derived with (two callers with different settings would otherwise
    derive it again in turn, each delivery)."""
    shop, adapter, store = synced
    shopsync.plan(store, shopsync.Policy(), NOW)
    mark = store.get_cursor(adapter.platform, adapter.shop, "loyalty_ledger")
    assert mark is not None
    cid = _with_points(store, adapter)
    before = loyalty.balance(store, (adapter.platform, adapter.shop, cid), NOW).approved
    richer = shopsync.Policy.from_dict({"loyalty": {"earn": {"points_per_unit": 50}}})
    apply([_award(adapter, cid)], store, [adapter], now=NOW, policy=richer)
    (row,) = list_outbox(store)
    assert row.status == "done", row.reason
    assert _written(shop, cid) == str(before)
    again = store.get_cursor(adapter.platform, adapter.shop, "loyalty_ledger")
    assert again is not None and again.state == mark.state


def test_data_synced_after_the_plan_is_in_the_balance_written(synced: Any) -> None:
    shop, adapter, store = synced
    shopsync.plan(store, shopsync.Policy(), NOW)
    cid = _with_points(store, adapter)
    before = loyalty.balance(store, (adapter.platform, adapter.shop, cid), NOW).approved
    assert loyalty.ledger_status(store, adapter.platform, adapter.shop, NOW) is None
    # an adjustment recorded after the plan: the ledger is no longer current
    loyalty.adjust(
        store,
        (adapter.platform, adapter.shop, cid),
        250,
        at=NOW - dt.timedelta(days=1),
        reason="support ticket 7",
        key="ticket-7",
    )
    stale = loyalty.ledger_status(store, adapter.platform, adapter.shop, NOW)
    assert stale is not None and "data changed" in stale
    apply([_award(adapter, cid)], store, [adapter], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "done", row.reason
    assert _written(shop, cid) == str(before + 250)


def test_a_delivery_after_an_approval_fell_due_rederives_first(synced: Any) -> None:
    shop, adapter, store = synced
    early = NOW - dt.timedelta(days=40)
    shopsync.plan(store, shopsync.Policy(), early)  # the ledger as of 40 days ago
    mark = store.get_cursor(adapter.platform, adapter.shop, "loyalty_ledger")
    assert mark is not None and mark.state["valid_until"] is not None
    assert mark.state["valid_until"] <= to_micros(NOW)  # something fell due
    cid = _with_points(store, adapter)
    apply([_award(adapter, cid)], store, [adapter], now=NOW)
    assert list_outbox(store)[0].status == "done"
    assert loyalty.ledger_status(store, adapter.platform, adapter.shop, NOW) is None
    points = loyalty.balance(store, (adapter.platform, adapter.shop, cid), NOW).approved
    assert _written(shop, cid) == str(points)


def test_a_delivery_moment_after_the_clock_is_held(synced: Any) -> None:
    shop, adapter, store = synced
    shopsync.plan(store, shopsync.Policy(), NOW)
    cid = _with_points(store, adapter)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)
    apply([_award(adapter, cid)], store, [adapter], now=future)
    (row,) = list_outbox(store)
    assert row.status == "pending" and "after the present" in (row.reason or ""), row.reason
    assert _written(shop, cid) is None


def test_a_dry_run_writes_neither_the_shop_nor_the_ledger(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _with_points(store, adapter)
    preview = apply([_award(adapter, cid)], store, [adapter], now=NOW, dry_run=True)
    assert "not current" in str([d.payload for d in preview.deliveries])
    assert loyalty.ledger_entries(store, adapter.platform, adapter.shop) == []
    assert _written(shop, cid) is None
