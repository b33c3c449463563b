"""The new-category bonus on synced data (issue 17.4).

Neither platform's order payload carries a product type on its line items (Shopify's
``LineItem`` has none; WooCommerce's order ``line_items`` name the product id only), so
the category comes from the product, as the planner takes it (``LINE_PRODUCT_TYPE``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import shopsync
from shopsync import loyalty
from shopsync.store import Store
from shopsync.store.schema import line_items
from tests.sync.emulated import FAST_RETRIES, emulated

END = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
POLICY = shopsync.Policy.from_dict({"loyalty": {"category_bonus": {"points": 25}}})


@pytest.fixture(params=["shopify", "woocommerce"])
def synced(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str, str]]:
    with emulated(request.param, seed=5, customers=30, orders=150, products=8, end=END) as shop:
        adapter = shopsync.connect(shop.platform, **shop.settings, retry_policy=FAST_RETRIES)
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        adapter.close()
        yield store, shop.platform, store.shops()[0][1]
        store.close()


def test_synced_lines_carry_no_product_type_yet_the_bonus_is_paid(
    synced: tuple[Store, str, str],
) -> None:
    store, platform, shop = synced
    with store.engine.connect() as conn:
        typed = conn.execute(select(func.count(line_items.c.product_type))).scalar_one()
    assert typed == 0  # payload-shaped: the category is only on the product
    loyalty.update_ledger(store, platform, shop, as_of=END, policy=POLICY)
    bonuses = [
        e
        for e in loyalty.ledger_entries(store, platform, shop)
        if e.source_key.startswith("bonus:category:")
    ]
    assert bonuses, "no first-order-in-a-category bonus on synced data"
    assert all(e.approved == 25 and e.detail["categories"] for e in bonuses)
    by_customer: dict[str, set[str]] = {}
    for e in bonuses:  # a category pays once per customer
        mine = by_customer.setdefault(e.customer_id, set())
        assert not mine & set(e.detail["categories"]), e
        mine.update(e.detail["categories"])


def test_one_customer_replanned_sees_the_same_categories(synced: tuple[Store, str, str]) -> None:
    store, platform, shop = synced
    lookback = dt.timedelta(days=400)
    wide = loyalty.update_ledger(
        store, platform, shop, as_of=END, policy=POLICY, dry_run=True, lookback=lookback
    )
    keyed = {a.idempotency_key: a for a in wide.actions if "first order in" in a.reason}
    assert keyed, "no category award in the last 400 days"
    customer_id = next(iter(keyed.values())).customer_id
    currency = loyalty.shop_currency(store, platform, shop, POLICY) or ""
    one = loyalty.customer_actions(
        store,
        platform,
        shop,
        customer_id,
        as_of=END,
        policy=POLICY,
        currency=currency,
        lookback=lookback,
    )
    mine = {k for k, a in keyed.items() if a.customer_id == customer_id}
    assert mine <= {a.idempotency_key for a in one}
