"""Paging or bulk, chosen by what each would cost (issue 17 item 8): a small shop is paged in
a few requests without throttle waits; a read whose paging would take longer than a bulk
operation's fixed overhead goes through bulk. Never asserted on wall-clock time."""

from __future__ import annotations

from typing import Any

from shopsync_shopify import ShopifyAdapter
from shopsync_shopify.adapter import BULK_OVERHEAD_SECONDS

import shopsync

from .test_shopify_adapter import FAST, _read


def _connect(shop: Any, **kw: Any) -> ShopifyAdapter:
    adapter = shopsync.connect("shopify", **shop.settings, retry_policy=FAST, **kw)
    assert isinstance(adapter, ShopifyAdapter)
    return adapter


def test_a_fifty_order_shop_is_paged_without_throttle_waits(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=20, orders=50, plan="standard")
    with _connect(shop) as adapter:
        orders, rejected = _read(adapter.read_orders())
        assert adapter.read_path["orders"] == "paging"
        assert adapter.http.stats.throttle_waits == 0
        assert adapter.counters["throttled"] == 0
        # the count, three pages of 20-22 orders, a follow-up for a long order at most
        assert adapter.counters["queries"] <= 5
    assert len(orders) == 50 and not rejected
    assert shop.emulator.stats["bulk"] == 0


def test_the_page_size_follows_the_logarithmic_cost(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=20, orders=400, plan="plus")
    with _connect(shop, bulk_threshold=None) as adapter:
        pages = adapter.read_orders()
        sizes = [len(page.records) for page in pages]
    assert sum(sizes) == 400
    assert max(sizes) == 22  # 2 + 6 x 165 = 992 points; 5 a page at the linear 2 + 5 x 165


def test_a_read_that_would_wait_longer_than_a_bulk_operation_uses_bulk(
    shopify_shop: Any,
) -> None:
    shop = shopify_shop(customers=20, orders=60, plan="standard")
    with _connect(shop, bulk_overhead=0.0, bulk_poll_interval=0.01) as adapter:
        orders, rejected = _read(adapter.read_orders())
        assert adapter.read_path["orders"] == "bulk"
    assert len(orders) == 60 and not rejected
    assert shop.emulator.stats["bulk"] == 1


def test_the_estimate_picks_bulk_for_a_large_shop_on_the_standard_plan() -> None:
    adapter = ShopifyAdapter(shop="a.myshopify.com", access_token="t")
    adapter._bucket = (2000.0, 2000.0, 100.0, adapter._clock())
    small = adapter.paging_seconds("orders", 50)
    large = adapter.paging_seconds("orders", 100_000)
    assert small < BULK_OVERHEAD_SECONDS < large
    assert adapter.paging_seconds("customers", 2_000) < BULK_OVERHEAD_SECONDS
