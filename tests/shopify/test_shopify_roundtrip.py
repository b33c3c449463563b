"""mapping(render(model)) == model for generated shops, in both wire shapes."""

from __future__ import annotations

import pytest
from shopsync_shopify import _render as render
from shopsync_shopify.emulator import ShopifyEmulator
from shopsync_shopify.mapping import (
    customer_from_graphql,
    customer_from_webhook,
    order_from_graphql,
    order_from_webhook,
    product_from_graphql,
)

from shopsync.testing import generate_shop


@pytest.fixture(scope="module", params=[(3, "USD"), (11, "JPY")])
def state(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    seed, currency = request.param
    return generate_shop(
        platform="shopify",
        shop=ShopifyEmulator.default_shop(seed),
        seed=seed,
        customers=120,
        orders=600,
        products=30,
        currency=currency,
    )


def _graphql_node(value):  # type: ignore[no-untyped-def]
    """Resolve the lazy parts as the executor would (``metafield`` needs its arguments)."""
    if isinstance(value, dict):
        return {k: _graphql_node(v({}) if callable(v) else v) for k, v in value.items()}
    if isinstance(value, list):
        return [_graphql_node(v) for v in value]
    return value


def test_orders_round_trip(state) -> None:  # type: ignore[no-untyped-def]
    for order in state.orders.values():
        expected = render.expressible(order)
        assert (
            order_from_graphql(_graphql_node(render.order_graphql(order, state)), shop=state.shop)
            == expected
        )
        assert order_from_webhook(render.order_rest(order, state), shop=state.shop) == expected


def test_customers_round_trip(state) -> None:  # type: ignore[no-untyped-def]
    for customer in state.customers.values():
        node = _graphql_node(render.customer_graphql(customer, state))
        node["metafield"] = render.customer_graphql(customer)["metafield"](
            {"namespace": "facts", "key": "birth_date"}
        )
        assert customer_from_graphql(node, shop=state.shop) == customer
        rest = render.customer_rest(customer, state, metafield_namespaces=("facts",))
        assert customer_from_webhook(rest, shop=state.shop) == customer


def test_products_round_trip(state) -> None:  # type: ignore[no-untyped-def]
    for product in state.products.values():
        node = render.product_graphql(product, state)
        assert product_from_graphql(node, shop=state.shop, currency=state.currency) == product


def test_the_shop_exercises_what_matters(state) -> None:  # type: ignore[no-untyped-def]
    orders = list(state.orders.values())
    assert any(o.refunds for o in orders) and any(o.cancelled_at for o in orders)
    assert any(o.customer_id is None for o in orders) and any(
        f.delivered_at for o in orders for f in o.fulfillments
    )
    assert any(c.birthday for c in state.customers.values())
