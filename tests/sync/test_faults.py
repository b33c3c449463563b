"""Sync against emulators that misbehave: the store still ends exactly right."""

from __future__ import annotations

import pytest

import shopsync
from shopsync.errors import AuthenticationError
from shopsync.sync import sync
from tests.sync.compare import differences, snapshot
from tests.sync.emulated import connect, emulated, platform_view

PLATFORMS = ["shopify", "woocommerce"]
STORMY = {
    "seed": 7,
    "rate_429": 0.15,
    "rate_5xx": 0.15,
    "rate_drop": 0.05,
    "rate_truncate": 0.05,
    "rate_slow": 0.03,
    "slow_seconds": 0.2,
    "retry_after": 0.01,
}


@pytest.fixture
def store(tmp_path) -> shopsync.Store:  # type: ignore[no-untyped-def]
    return shopsync.Store(f"sqlite:///{tmp_path / 'faults.db'}")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_clean_sync_stores_exactly_what_the_platform_holds(
    platform: str, store: shopsync.Store
) -> None:
    with emulated(platform, seed=2, customers=30, orders=120, products=12) as shop:
        adapter = connect(shop)
        sync(adapter, store)
        assert differences(snapshot(store, platform, adapter.shop), platform_view(shop)) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_sync_survives_a_storm_of_faults(platform: str, store: shopsync.Store) -> None:
    with emulated(platform, seed=2, customers=30, orders=120, products=12, faults=STORMY) as shop:
        adapter = connect(shop, timeout=2)
        report = sync(adapter, store)
        injected = dict(shop.faults.counts)
        assert sum(injected.values()) >= 5, injected
        assert report.total("retries") > 0
        assert differences(snapshot(store, platform, adapter.shop), platform_view(shop)) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_changes_on_the_platform_are_reflected_after_the_next_sync(
    platform: str, store: shopsync.Store
) -> None:
    with emulated(platform, seed=2, customers=30, orders=120, products=12) as shop:
        adapter = connect(shop)
        sync(adapter, store)
        ids = sorted(shop.state.orders)
        shop.state.update_order(ids[0], tags=("edited",))
        shop.state.refund_order(ids[1])
        shop.state.cancel_order(ids[2])
        customer_id = sorted(shop.state.customers)[0]
        shop.state.update_customer(customer_id, first_name="Renamed")
        report = sync(adapter, store)
        assert report.resources["orders"].updated >= 3
        assert differences(snapshot(store, platform, adapter.shop), platform_view(shop)) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_revoked_token_stops_with_a_clear_error_and_keeps_the_checkpoint(
    platform: str, store: shopsync.Store
) -> None:
    with emulated(platform, seed=2, customers=30, orders=120, products=12) as shop:
        good = connect(shop)
        sync(good, store, resources=["customers", "products"])
        bad = connect(shop, **_wrong_credentials(platform))
        with pytest.raises(AuthenticationError) as info:
            sync(bad, store)
        assert info.value.status in (401, 403) and not info.value.retryable
        cursor = store.get_cursor(platform, good.shop, "customers")
        assert cursor is not None and cursor.high_water is not None
        sync(good, store)
        assert differences(snapshot(store, platform, good.shop), platform_view(shop)) == []


def _wrong_credentials(platform: str) -> dict[str, str]:
    if platform == "shopify":
        return {"access_token": "shpat_revoked"}
    return {"consumer_secret": "cs_revoked"}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_deleted_orders_are_removed_by_the_next_sync(platform: str, store: shopsync.Store) -> None:
    with emulated(platform, seed=2, customers=30, orders=120, products=12) as shop:
        adapter = connect(shop)
        sync(adapter, store)
        gone = sorted(shop.state.orders)[5:8]
        for order_id in gone:
            shop.state.delete_order(order_id)
        report = sync(adapter, store)
        assert report.resources["deletions"].deleted == 3
        assert differences(snapshot(store, platform, adapter.shop), platform_view(shop)) == []
        assert sync(adapter, store).resources["deletions"].deleted == 0
