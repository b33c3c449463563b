"""The emulator serves the same shapes (keys and JSON types) as the real payloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import woocommerce

from shopsync.testing import EmulatedShop, emulate

from ._fixtures import load

EXPECTED_DIFFERENCES = {
    "order.refunds[].refund": "the docs write 'refund'; WooCommerce writes 'reason'",
}
"""Fixture keys the emulator deliberately does not serve, with why."""


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def differences(real: Any, ours: Any, path: str) -> list[str]:
    """Where ``ours`` lacks a key of ``real`` or has another JSON type (null matches all)."""
    found: list[str] = []
    if real is None or ours is None:
        return found
    if kind(real) != kind(ours):
        return [f"{path}: {kind(real)} in the real payload, {kind(ours)} served"]
    if isinstance(real, dict):
        for key, value in real.items():
            where = f"{path}.{key}"
            if where in EXPECTED_DIFFERENCES or where.endswith("meta_data[].value"):
                continue  # a meta value is whatever JSON its plugin stores
            if key not in ours:
                found.append(f"{where}: missing")
            else:
                found += differences(value, ours[key], where)
    elif isinstance(real, list) and real and ours:
        for item in real:
            found += differences(item, ours[0], f"{path}[]")
    return found


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[EmulatedShop, woocommerce.API]]:
    with emulate("woocommerce", seed=4, customers=40, orders=300, products=20) as shop:
        api = woocommerce.API(
            url=shop.url,
            consumer_key=shop.settings["consumer_key"],
            consumer_secret=shop.settings["consumer_secret"],
            timeout=30,
        )
        yield shop, api


def get(api: woocommerce.API, endpoint: str, **params: Any) -> Any:
    response = api.get(endpoint, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def a_rich_order(shop: EmulatedShop) -> str:
    """An order with refunds, shipping, a coupon and shipment tracking, so nested lists compare."""
    state = shop.state
    with shop.faults.suspended():
        for order in state.orders.values():
            if order.refunds and order.fulfillments and order.total_shipping.amount:
                state.update_order(order.id, discount_codes=("SAVE15",), tags=("gift",))
                return order.id
    raise AssertionError("no order with refunds, shipping and a fulfilment was generated")


def test_order_shape(served: tuple[EmulatedShop, woocommerce.API]) -> None:
    shop, api = served
    oid = a_rich_order(shop)
    order = get(api, f"orders/{oid}")
    for label, real in (
        ("retrieve", load("retrieve-an-order")),
        ("list[1]", load("list-all-orders")[1]),
    ):
        assert differences(real, order, "order") == [], label
    real_coupon = {
        "id": 1,
        "code": "x",
        "discount": "1.00",
        "discount_tax": "0.00",
        "meta_data": [],
    }
    assert differences(real_coupon, order["coupon_lines"][0], "coupon_line") == []
    assert all(isinstance(order[k], str) for k in ("total", "discount_total", "shipping_total"))
    assert order["date_created_gmt"].count(":") == 2 and "+" not in order["date_created_gmt"]
    refunds = get(api, f"orders/{oid}/refunds")
    for real in load("list-all-refunds"):
        assert differences(real, refunds[0], "refund") == []


def test_customer_shape(served: tuple[EmulatedShop, woocommerce.API]) -> None:
    _, api = served
    customers = get(api, "customers", per_page=5)
    for real in [load("retrieve-a-customer"), *load("list-all-customers")]:
        assert differences(real, customers[0], "customer") == []


def test_product_shapes(served: tuple[EmulatedShop, woocommerce.API]) -> None:
    _, api = served
    products = get(api, "products", per_page=100)
    simple = next(p for p in products if p["type"] == "simple")
    variable = next(p for p in products if p["type"] == "variable")
    real_simple, real_variable = load("retrieve-a-product"), load("list-all-products")[0]
    assert differences(real_simple, simple, "product") == []
    assert differences(real_variable, variable, "product") == []
    variations = get(api, f"products/{variable['id']}/variations")
    real = load("retrieve-a-product-variation")
    essential = {
        k: real[k]
        for k in (
            "id",
            "date_created",
            "date_created_gmt",
            "date_modified",
            "date_modified_gmt",
            "sku",
            "price",
            "regular_price",
            "sale_price",
            "status",
            "attributes",
            "meta_data",
            "_links",
        )
    }
    assert differences(essential, variations[0], "variation") == []


def test_coupon_and_webhook_shapes(served: tuple[EmulatedShop, woocommerce.API]) -> None:
    _, api = served
    coupons = get(api, "coupons")
    assert coupons, "the generated shop uses discount codes"
    assert differences(load("retrieve-a-coupon"), coupons[0], "coupon") == []
    created = api.post(
        "webhooks",
        {"name": "x", "topic": "order.updated", "delivery_url": "http://127.0.0.1:9/hook"},
    )
    assert created.status_code == 201
    assert differences(load("retrieve-a-webhook"), created.json(), "webhook") == []


def test_the_comparison_can_fail() -> None:
    real = {"a": "1.00", "b": [{"c": 1}], "d": None}
    assert differences(real, {"a": 1.0, "b": [{}], "d": "x"}, "r") == [
        "r.a: string in the real payload, number served",
        "r.b[].c: missing",
    ]
