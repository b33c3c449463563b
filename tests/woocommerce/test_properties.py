"""Property tests: any valid model survives render -> mapping as far as WooCommerce keeps it."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from shopsync_woocommerce import _render as render
from shopsync_woocommerce.mapping import customer_from_rest, product_from_rest

from shopsync.models import Customer, Product

from ..strategies import customers, products

TZ = dt.timezone(dt.timedelta(hours=5, minutes=30))


@settings(max_examples=60)
@given(customers(platform="woocommerce", shop="shop.example"))
def test_any_customer_round_trips(customer: Customer) -> None:
    wire = render.render_customer(customer, tz=TZ, base="https://shop.example")
    assert customer_from_rest(wire, shop="shop.example") == render.woocommerce_view(customer)


@settings(max_examples=60)
@given(products(platform="woocommerce", shop="shop.example"))
def test_any_product_round_trips(product: Product) -> None:
    prices = [v.price for v in product.variants if v.price is not None]
    currency = prices[0].currency if prices else "USD"
    if any(p.currency != currency for p in prices):
        return  # a store has one currency
    wire = render.render_product(product, tz=TZ, base="https://shop.example", currency=currency)
    variations = render.render_variations(product, tz=TZ, base="https://shop.example")
    got = product_from_rest(
        wire,
        shop="shop.example",
        currency=currency,
        variations=variations if product.variants else None,
    )
    assert got == render.woocommerce_view(product)
