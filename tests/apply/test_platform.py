"""The platform sink against both emulators over HTTP: codes, tags, loyalty fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync.core.actions import WinBack
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Platform
from shopsync.store import Store
from shopsync.testing import EmulatedShop
from tests.apply.helpers import NOW, reward, tier
from tests.sync.emulated import FAST_RETRIES, emulated

PLATFORMS = ["shopify", "woocommerce"]


@pytest.fixture(params=PLATFORMS)
def synced(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[EmulatedShop, Any, Store]]:
    with emulated(request.param, seed=5, customers=12, orders=30, products=6) as shop:
        adapter = shopsync.connect(shop.platform, **shop.settings, retry_policy=FAST_RETRIES)
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        # the points balance written back comes only from a current ledger
        shopsync.loyalty.update_ledger(store, adapter.platform, adapter.shop, as_of=NOW)
        yield shop, adapter, store
        store.close()
        adapter.close()


def _first(store: Store, adapter: Any, subscribed: bool | None = None) -> str:
    for c in store.iter(shopsync.Customer, adapter.platform, adapter.shop):
        if c.email and (subscribed is None or c.consent.email.allows_marketing == subscribed):
            return c.id
    raise AssertionError("no such customer in the emulated shop")


def _codes(shop: EmulatedShop) -> dict[str, Any]:
    emulator: Any = shop.emulator
    if shop.platform == "shopify":
        return {d.code.lower(): d for d in emulator.discounts.values()}
    return {c["code"]: c for c in emulator.coupons.values()}


def test_reward_code_is_created_once_limited_to_the_customer(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter)
    action = reward(adapter.platform, adapter.shop, cid)
    report = apply([action], store, [adapter], now=NOW)
    assert report.delivered == 1, list_outbox(store)
    (row,) = list_outbox(store)
    assert row.result["discount"]["created"] is True  # type: ignore[index]
    codes = _codes(shop)
    made = codes[action.code.lower()]
    expires = NOW + dt.timedelta(days=90)
    email = store.get(shopsync.Customer, adapter.platform, adapter.shop, cid).email  # type: ignore[union-attr]
    if shop.platform == "shopify":
        assert made.customer_ids == (cid,) and made.usage_limit == 1 and made.once_per_customer
        assert made.ends_at == expires and made.amount == "5.00"
    else:
        assert made["email_restrictions"] == [email]
        assert (made["usage_limit"], made["usage_limit_per_user"]) == (1, 1)
        assert made["date_expires_gmt"] == expires.strftime("%Y-%m-%dT%H:%M:%S")
        assert (made["discount_type"], made["amount"]) == ("fixed_cart", "5.00")
    # a crash after the code was created, before the row was settled: run again
    from shopsync.store.schema import outbox

    with store.transaction() as conn:
        conn.execute(outbox.update().values(status="pending", attempts=0, result=None))
    apply([action], store, [adapter], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "done" and row.result["discount"]["created"] is False  # type: ignore[index]
    assert len(_codes(shop)) == 1
    writes = shop.emulator.writes  # type: ignore[union-attr]
    assert writes.get("discount_taken", 0) + writes.get("coupon_exists", 0) == 0


def test_loyalty_balance_tier_and_tags_are_written(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter, subscribed=True)
    apply([tier(adapter.platform, adapter.shop, cid)], store, [adapter], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "done", row.reason
    customer = shop.state.customers[cid]
    assert "shopsync-tier-gold" in customer.tags and "shopsync-tier-silver" not in customer.tags
    emulator: Any = shop.emulator
    if shop.platform == "shopify":
        assert emulator.metafields[(cid, "loyalty", "tier")]["value"] == "gold"
        assert emulator.metafields[(cid, "loyalty", "points_balance")]["type"] == "number_integer"
        # the adapter reads them back through GraphQL, as a theme or app would
        node = adapter.graphql(
            'query($id: ID!) { customer(id: $id) { metafield(namespace: "loyalty", key: "tier")'
            " { value } } }",
            {"id": f"gid://shopify/Customer/{cid}"},
        )["data"]["customer"]
        assert node["metafield"]["value"] == "gold"
    else:
        meta = {m["key"]: m["value"] for m in adapter.get_customer(cid)["meta_data"]}
        points = shopsync.loyalty.balance(store, (adapter.platform, adapter.shop, cid), NOW)
        assert meta["_loyalty_tier"] == "gold"
        assert meta["_loyalty_points_balance"] == str(points.approved)


def test_mutations_are_charged_by_the_shopify_throttle(tmp_path: Path) -> None:
    with emulated("shopify", seed=5, customers=5, orders=5, products=2, plan="standard") as shop:
        adapter = shopsync.connect("shopify", **shop.settings, retry_policy=FAST_RETRIES)
        store = Store(f"sqlite:///{tmp_path / 's.db'}")
        shopsync.sync(adapter, store)
        shopsync.loyalty.update_ledger(store, adapter.platform, adapter.shop, as_of=NOW)
        cid = _first(store, adapter)
        before = adapter.counters["actual_cost"]
        apply([reward("shopify", adapter.shop, cid)], store, [adapter], now=NOW)
        # lookup by code (a query) + discountCodeBasicCreate + metafieldsSet (10 each)
        assert adapter.counters["actual_cost"] - before >= 20
        assert adapter._bucket is not None and adapter._bucket[1] < 2000


def test_expired_discount_is_cancelled_and_the_rest_delivered(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter)
    stale = reward(
        adapter.platform, adapter.shop, cid, 1, facts={"expires_at": "2026-01-01T00:00:00Z"}
    )
    fresh = reward(adapter.platform, adapter.shop, cid, 2)
    report = apply([stale, fresh], store, [adapter], now=NOW)
    assert (report.cancelled, report.delivered) == (1, 1)
    (cancelled,) = list_outbox(store, status="cancelled")
    assert cancelled.reason == f"discount code {stale.code} expired at 2026-01-01T00:00:00+00:00"
    assert set(_codes(shop)) == {fresh.code.lower()}


def test_winback_offer_gets_a_percent_code_derived_from_its_key(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter, subscribed=True)
    action = WinBack(
        platform=adapter.platform,
        shop=adapter.shop,
        customer_id=cid,
        due_at=NOW,
        reason="no order for 120 days: win-back 2 of 3 (offer)",
        idempotency_key=f"winback:{adapter.shop}:{cid}:o1:stage2",
        stage=2,
        stage_name="offer",
        last_order_id="o1",
        trigger="rhythm",
        discount_percent=15,
    )
    report = apply([action], store, [adapter], now=NOW)
    assert report.delivered == 1, list_outbox(store)
    (code,) = _codes(shop)
    assert code.startswith("ss-")
    assert "shopsync-winback" in shop.state.customers[cid].tags
    made = _codes(shop)[code]
    if shop.platform == "woocommerce":
        assert (made["discount_type"], made["amount"]) == ("percent", "15.00")


def test_a_refused_write_parks_with_the_platform_message(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter)
    action = reward(adapter.platform, adapter.shop, cid)
    # the platform lost the customer (deleted there, not yet synced here)
    shop.state.delete_customer(cid)
    report = apply([action], store, [adapter], now=NOW)
    (row,) = list_outbox(store)
    assert report.parked == 1 and row.status == "parked"
    assert row.reason and ("refused" in row.reason or "400" in row.reason or "404" in row.reason)


def test_platform_sink_answers_5xx_storms_by_retrying(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter)
    shop.faults.inject("5xx", count=3)
    shop.faults.inject("drop", count=1)
    report = apply(
        [reward(adapter.platform, adapter.shop, cid)], store, [Platform(adapter)], now=NOW
    )
    assert report.delivered == 1
    assert len(_codes(shop)) == 1


def test_an_older_tier_change_retried_after_a_newer_one_is_cancelled(synced: Any) -> None:
    shop, adapter, store = synced
    cid = _first(store, adapter, subscribed=True)
    silver = tier(
        adapter.platform,
        adapter.shop,
        cid,
        due_at=NOW - dt.timedelta(days=3),
        from_tier="bronze",
        to_tier="silver",
        reason="entered the silver tier",
        idempotency_key=f"loyalty_tier_change:{adapter.shop}:{cid}:silver",
    )
    apply([tier(adapter.platform, adapter.shop, cid)], store, [adapter], now=NOW)
    apply([silver], store, [adapter], now=NOW)  # e.g. a retry that comes back late
    rows = {r.idempotency_key: r for r in list_outbox(store)}
    assert rows[silver.idempotency_key].status == "cancelled"
    customer = shop.state.customers[cid]
    assert "shopsync-tier-gold" in customer.tags and "shopsync-tier-silver" not in customer.tags
