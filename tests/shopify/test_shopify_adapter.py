"""ShopifyAdapter against the emulator over HTTP: paging, bulk, pacing, faults, rejects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from shopsync_shopify import ShopifyAdapter
from shopsync_shopify._cost import connection_multiplier
from shopsync_shopify._render import expressible
from shopsync_shopify.webhooks import parse

import shopsync
from shopsync.adapter import Adapter
from shopsync.errors import AuthenticationError
from shopsync.http import RetryPolicy
from shopsync.testing import Event, Subscription

FAST = RetryPolicy(attempts=8, initial_wait=0.01, max_wait=0.2)


def _connect(shop: Any, **kw: Any) -> ShopifyAdapter:
    kw.setdefault("retry_policy", FAST)
    adapter = shopsync.connect("shopify", **shop.settings, **kw)
    assert isinstance(adapter, ShopifyAdapter) and isinstance(adapter, Adapter)
    return adapter


def _read(pages: Any) -> tuple[dict[str, Any], list[Any]]:
    records, rejected = {}, []
    for page in pages:
        for record in page.records:
            assert record.id not in records
            records[record.id] = record
        rejected += list(page.rejected)
    return records, rejected


def test_full_read_equals_the_shop(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=40, orders=120, products=15)
    with _connect(shop, bulk_threshold=None) as adapter:
        orders, rejected = _read(adapter.read_orders())
        customers, _ = _read(adapter.read_customers())
        products, _ = _read(adapter.read_products())
    state = shop.state
    assert not rejected
    assert orders == {k: expressible(v) for k, v in state.orders.items()}
    assert customers == state.customers and products == state.products
    assert not shop.server.errors
    assert shop.settings["access_token"] not in repr(adapter)


def test_paging_bulk_and_webhook_agree(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=40, orders=150, seed=5)
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, _ = _read(adapter.read_orders())
        bulk, rejected = _read(adapter.backfill_orders())
    assert not rejected and paged == bulk
    emulator = shop.emulator
    sub = Subscription("1", "orders/updated", "http://127.0.0.1:9/unused", "s3cret")
    for order in shop.state.orders.values():
        delivery = emulator.webhook(
            Event("order.updated", "orders", order.id, order, order.updated_at), sub
        )
        from_hook = parse("orders/updated", delivery.body, delivery.headers, secret="s3cret")
        assert from_hook == paged[order.id]


def test_full_read_of_a_big_shop_uses_bulk(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=60)
    with _connect(shop, bulk_threshold=50, bulk_poll_interval=0.05) as adapter:
        orders, _ = _read(adapter.read_orders())
        assert shop.emulator.stats["bulk"] == 1 and len(orders) == 60
        since = max(o.updated_at for o in shop.state.orders.values()) - dt.timedelta(days=30)
        recent, _ = _read(adapter.read_orders(since))  # incremental reads page
        assert shop.emulator.stats["bulk"] == 1
    assert set(recent) == {o.id for o in shop.state.orders.values() if o.updated_at >= since}


def test_full_read_of_many_customers_uses_bulk_and_equals_paging(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=40, orders=20)
    with _connect(shop, bulk_threshold=10, bulk_poll_interval=0.01) as adapter:
        bulk, _ = _read(adapter.read_customers())
        assert shop.emulator.stats["bulk"] >= 1
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, _ = _read(adapter.read_customers())
    assert len(bulk) == 40 and bulk == paged


def test_incremental_read_sees_later_changes(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=50)
    with _connect(shop, bulk_threshold=None) as adapter:
        pages = list(adapter.read_orders())
        mark = pages[-1].high_water
        assert mark == max(o.updated_at for o in shop.state.orders.values())
        target = next(
            o
            for o in shop.state.orders.values()
            if not o.refunds and o.financial_status.value == "paid"
        )
        shop.state.refund_order(target.id, amount="1.00")
        again, _ = _read(adapter.read_orders(mark))
    assert target.id in again and again[target.id].total_refunded.amount == 1


def test_invalid_records_are_quarantined_not_fatal(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=20, orders=40)
    bad_order, bad_customer = list(shop.state.orders)[3], list(shop.state.customers)[2]
    shop.faults.invalid_records.update({("orders", bad_order), ("customers", bad_customer)})
    with _connect(shop, bulk_threshold=None) as adapter:
        orders, rejected = _read(adapter.read_orders())
        _customers, rejected_c = _read(adapter.read_customers())
        bulk, rejected_b = _read(adapter.backfill_orders())
    assert len(orders) == 39 and bad_order not in orders
    assert [r.record_id for r in rejected] == [bad_order] and "totalPriceSet" in rejected[0].reason
    assert '"abc"' in rejected[0].raw
    assert [r.record_id for r in rejected_c] == [bad_customer] and "createdAt" in rejected_c[
        0
    ].reason
    assert [r.record_id for r in rejected_b] == [bad_order] and len(bulk) == 39


@pytest.mark.parametrize("kind", ["429", "5xx", "drop", "truncate"])
def test_transient_faults_are_retried(shopify_shop: Any, kind: str) -> None:
    shop = shopify_shop(orders=30)
    shop.faults.inject(kind, count=2)
    with _connect(shop, bulk_threshold=None) as adapter:
        orders, _ = _read(adapter.read_orders())
    assert len(orders) == 30 and shop.faults.counts[kind] == 2


def test_bad_token_is_not_retried(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5)
    adapter = shopsync.connect(
        "shopify", **{**shop.settings, "access_token": "nope"}, retry_policy=FAST
    )
    with pytest.raises(AuthenticationError):
        list(adapter.read_customers())
    assert adapter.http.stats.requests == 1
    assert "nope" not in repr(adapter)


def test_pacing_keeps_throttled_rare_and_pages_under_the_cap(shopify_shop: Any) -> None:
    clock = ManualClock()
    shop = shopify_shop(orders=120, bucket_size=1000, restore_rate=50, clock=clock)
    with _connect(shop, bulk_threshold=None, sleep=clock.sleep, clock=clock) as adapter:
        orders, _ = _read(adapter.read_orders())
    assert len(orders) == 120
    assert shop.emulator.stats["throttled"] == 0
    assert adapter.counters["paced_seconds"] > 0
    size = adapter._size("orders")
    cost = 2 + connection_multiplier(size) * adapter._per_node["orders"]
    assert size >= 20 and cost <= 1000


class ManualClock:
    """Shared by the emulator's bucket and the adapter: time moves only when the adapter
    sleeps, so the bucket cannot refill behind the test's back on a slow machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_throttled_is_retried_after_the_announced_wait(shopify_shop: Any) -> None:
    clock = ManualClock()
    shop = shopify_shop(orders=40, bucket_size=1000, restore_rate=100, clock=clock)
    with _connect(
        shop, bulk_threshold=None, page_size=10, sleep=clock.sleep, clock=clock
    ) as adapter:
        pages = adapter.read_orders()
        first = next(pages)
        shop.emulator.gql_bucket.take(995)  # another app client spent the bucket
        adapter._bucket = (1000.0, 1000.0, 100.0, clock())  # a stale, optimistic view
        rest, _ = _read(pages)
    assert len(first.records) + len(rest) == 40
    assert adapter.counters["throttled"] >= 1


def test_a_broken_bulk_download_is_fetched_again(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=25)
    with _connect(shop, bulk_poll_interval=0.02) as adapter:
        op_id, url = adapter._run_bulk(adapter_query(), timeout=30)
        assert url is not None
        shop.faults.inject("truncate")
        spool = adapter._download(op_id, url)
        try:
            assert spool.read().count(b"\n") >= 25
        finally:
            spool.close()
    assert shop.faults.counts["truncate"] == 1


def adapter_query() -> str:
    from shopsync_shopify import queries

    return queries.BULK_ORDERS.replace("QUERY_ARG", "")
