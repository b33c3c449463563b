"""``checkoutToken`` and ``cartToken`` are on the GraphQL ``Order`` since Admin API 2026-07
(https://shopify.dev/changelog/new-checkouttoken-field-added-to-the-order-object,
https://shopify.dev/changelog/new-field-carttoken-added-to-the-order-graphql-admin-api:
``effectiveApiVersion: 2026-07``). A shop pinned to an older version Shopify still supports
(2026-01, 2026-04 until 2027: ``versions.version_problem`` accepts them) would answer a query
naming them with "Field 'checkoutToken' doesn't exist on type 'Order'" and sync no order at
all: the adapter asks for them only from 2026-07 on, on every read path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync.models import Order
from tests.shopify.test_shopify_graphql_checkout_token import PATHS
from tests.sync.emulated import connect, emulated


def _asked(adapter: Any) -> list[str]:
    """Every GraphQL document the adapter sends (a bulk operation's inner query too)."""
    sent: list[str] = []
    real = adapter.graphql

    def graphql(query: str, variables: Any = None, **options: Any) -> Any:
        sent.append(query + str((variables or {}).get("query", "")))
        return real(query, variables, **options)

    adapter.graphql = graphql
    return sent


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(("version", "named"), [("2026-04", False), ("2026-07", True)])
def test_the_order_tokens_are_asked_for_only_from_2026_07(
    path: str, version: str, named: bool, tmp_path: Path
) -> None:
    store = shopsync.Store(f"sqlite:///{tmp_path / 'sync.db'}")
    with emulated(
        "shopify", seed=5, customers=5, orders=12, products=3, api_version=version
    ) as shop:
        adapter = connect(shop)
        assert adapter.api_version == version  # type: ignore[attr-defined]
        for name, value in PATHS[path].items():
            setattr(adapter, name, value)
        sent = _asked(adapter)
        shopsync.sync(adapter, store, resources=["customers", "products", "orders"])
        orders = [q for q in sent if "displayFinancialStatus" in q]
        assert orders
        assert all(("checkoutToken" in q and "cartToken" in q) == named for q in orders)
        assert len(list(store.iter(Order, "shopify", shop.state.shop))) == len(shop.state.orders)
    store.close()
