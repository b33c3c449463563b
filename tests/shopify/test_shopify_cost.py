"""The emulator charges what Shopify charges since 2025-07: a connection's requested cost
grows with the logarithm of ``first``, and the actual cost follows the response size.

Published figures (Shopify, GraphQL Admin API rate limits,
https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): ``customers(first: 200)
{ id updatedAt }`` is 12 points, and an order's ``lineItems(first: 10)`` is 43.
"""

from __future__ import annotations

from typing import Any

from shopsync_shopify._graphql import connection_multiplier

from .test_shopify_emulator import _gql

CUSTOMERS_200 = "{ customers(first: 200) { nodes { id updatedAt } } }"
ORDER_LINES_10 = """query($id: ID!) { order(id: $id) { lineItems(first: 10) { nodes {
  id quantity variant { id }
  originalUnitPriceSet { shopMoney { amount } } originalTotalSet { shopMoney { amount } }
  totalDiscountSet { shopMoney { amount } } } } } }"""


def test_the_multiplier_is_logarithmic_and_never_above_the_page() -> None:
    assert [connection_multiplier(n) for n in (0, 1, 2, 3, 4, 10, 100, 200, 250)] == [
        0,
        1,
        2,
        3,
        4,
        5,
        9,
        10,
        10,
    ]


def test_requested_cost_matches_the_published_figures(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=250, orders=3, products=1)
    cost = _gql(shop, CUSTOMERS_200).json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 12  # was 2 + 200 x 1 = 202 before 2025-07
    order_id = next(iter(shop.state.records("orders")))
    body = _gql(shop, ORDER_LINES_10, {"id": f"gid://shopify/Order/{order_id}"}).json()
    assert body["extensions"]["cost"]["requestedQueryCost"] == 43  # 1 + 2 + 5 x 8


def test_actual_cost_follows_the_response_size(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=5, orders=3, products=1)
    cost = _gql(shop, CUSTOMERS_200).json()["extensions"]["cost"]
    assert cost["actualQueryCost"] == 2 + connection_multiplier(5) * 1 == 6
    empty = _gql(shop, '{ customers(first: 200, query: "id:<0") { nodes { id } } }')
    assert empty.json()["extensions"]["cost"]["actualQueryCost"] == 2
