"""A kill in the middle of a columnar-ingest page (issue 20 item 1): the sync process dies
by SIGKILL inside the page's transaction (after the orders' rows went in, before their lines
or refunds), forked from the chaos tests' fork server; a Shopify bulk read and a WooCommerce
page read alike. The next sync leaves the store equal
to a row-path store of the same shop: nothing lost, nothing twice. (The chaos sync tests in
test_chaos_sync.py run through the fast path too: their bulk reads of more than 20 orders
are synced with rows since this path exists.)"""

from __future__ import annotations

import os
import signal
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from shopsync_shopify import ShopifyAdapter
from shopsync_woocommerce import WooCommerceAdapter
from sqlalchemy import func, select

import shopsync
from shopsync.store.schema import line_items, orders
from tests.reliability.chaos import Kill, run_child, sync_child
from tests.shopify.test_fast_ingest import snapshot
from tests.sync.emulated import FAST_RETRIES, emulated

PAGE = 20
READING = {
    "shopify": {"bulk_threshold": 0, "bulk_poll_interval": 0.01, "retry_policy": FAST_RETRIES},
    "woocommerce": {"per_page": PAGE, "retry_policy": FAST_RETRIES},
}
ADAPTERS: dict[str, Any] = {"shopify": ShopifyAdapter, "woocommerce": WooCommerceAdapter}


def die_inside_a_page(
    emit: Any, platform: str, settings: dict[str, Any], url: str, page: int, table: str
) -> Any:
    """A fast-path sync that SIGKILLs itself right after page ``page`` wrote ``table``."""
    from shopsync.store import fast_rows as _fast

    real = _fast._insert
    seen = {"pages": 0}

    def insert(conn: Any, target: Any, rows: Any) -> None:
        real(conn, target, rows)
        if target.name == "orders":
            seen["pages"] += 1
        if target.name == table and seen["pages"] == page:
            os.kill(os.getpid(), signal.SIGKILL)

    _fast._insert = insert  # type: ignore[assignment]
    ShopifyAdapter.bulk_order_page = PAGE  # this child's own copy of the class
    return sync_child(emit, ADAPTERS[platform], settings, url, full=True)


def _adapter(platform: str, settings: dict[str, Any], fast: bool) -> Any:
    adapter = ADAPTERS[platform](**settings)
    adapter.bulk_order_page = PAGE
    adapter.fast_ingest = fast
    return adapter


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
@pytest.mark.parametrize(("page", "table"), [(1, "orders"), (2, "refunds")])
def test_a_kill_inside_a_fast_page_loses_and_duplicates_nothing(
    tmp_path: Path, platform: str, page: int, table: str
) -> None:
    with emulated(platform, customers=20, orders=50) as shop:
        settings = {**shop.settings, **READING[platform]}
        url = f"sqlite:///{tmp_path / 'fast.db'}"
        shopsync.Store(url).close()  # the schema, made by the parent as the chaos tests do
        first = run_child(die_inside_a_page, (platform, settings, url, page, table), Kill())
        assert first.killed, first.error
        store = shopsync.Store(url)
        with store.engine.connect() as c:  # what the killed page began is not there at all
            stored = c.execute(select(func.count()).select_from(orders)).scalar_one()
            lines = c.execute(select(func.count()).select_from(line_items)).scalar_one()
        assert stored == PAGE * (page - 1)
        assert (lines > 0) == (page > 1)
        with closing(_adapter(platform, settings, True)) as adapter:
            report = shopsync.sync(adapter, store)
        assert report.total("quarantined") == 0
        reference = shopsync.Store(f"sqlite:///{tmp_path / 'rows.db'}")
        with closing(_adapter(platform, settings, False)) as adapter:
            shopsync.sync(adapter, reference)
        assert store.count(shopsync.Order, platform, shop.state.shop) == 50
        ours, theirs = snapshot(store), snapshot(reference)
        for name in ("orders", "line_items", "refunds", "fulfillments", "customers"):
            assert ours[name] == theirs[name], name
        noted = {
            name: {row[1] for row in snap["changed_customers"]}
            for name, snap in (("ours", ours), ("theirs", theirs))
        }
        assert noted["ours"] == noted["theirs"]  # every customer with orders, once or more
        store.close()
        reference.close()
