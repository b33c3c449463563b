"""Each emulator serves its endpoints from one route table, listing every endpoint once."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping

import pytest
from shopsync_shopify.emulator import ShopifyEmulator
from shopsync_woocommerce.emulator import WooCommerceEmulator

from shopsync.testing import generate_shop
from shopsync.testing.routes import Route, RouteTable
from shopsync.testing.server import Request, Response

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def request(method: str, path: str, headers: Mapping[str, str] | None = None) -> Request:
    return Request(method, path, {}, "", dict(headers or {}), b"", "http://127.0.0.1:9")


def answer(name: str) -> Route:
    def handler(request: Request, params: Mapping[str, str]) -> Response:
        return Response.json({"route": name, **params})

    return Route("GET", f"/{name}/{{id:\\d+}}", handler)


def missing(request: Request) -> Response:
    return Response.json({"route": None}, status=404)


def test_a_duplicate_route_is_refused_when_the_table_is_built() -> None:
    with pytest.raises(ValueError, match=r"two routes for GET /orders/\{id:\\d\+\}"):
        RouteTable([answer("orders"), answer("customers"), answer("orders")], missing)


def test_the_same_pattern_under_two_methods_is_two_endpoints() -> None:
    post = Route("POST", answer("orders").pattern, answer("orders").handler)
    table = RouteTable([answer("orders"), post], missing)
    assert [(r.method, r.pattern) for r in table] == [
        ("GET", r"/orders/{id:\d+}"),
        ("POST", r"/orders/{id:\d+}"),
    ]


def test_placeholders_match_what_they_say_and_nothing_else() -> None:
    table = RouteTable([answer("orders")], missing)
    assert json.loads(table.dispatch(request("GET", "/orders/12")).body) == {
        "route": "orders",
        "id": "12",
    }
    for method, path in [("GET", "/orders/x1"), ("GET", "/orders/12/x"), ("PUT", "/orders/12")]:
        assert table.dispatch(request(method, path)).status == 404, (method, path)
    with pytest.raises(ValueError, match="upper-case"):
        Route("get", "/orders", answer("orders").handler)


def _shopify() -> ShopifyEmulator:
    state = generate_shop(
        platform="shopify", shop="routes.myshopify.com", customers=2, orders=2, products=1, end=END
    )
    return ShopifyEmulator(state)


SHOPIFY_ENDPOINTS = [
    ("GET", "/admin/oauth/authorize", "/admin/oauth/authorize"),
    ("POST", "/admin/oauth/access_token", "/admin/oauth/access_token"),
    ("GET", "/admin/oauth/access_scopes.json", "/admin/oauth/access_scopes.json"),
    ("GET", "/_emulator/bulk/7.jsonl", r"/_emulator/bulk/{id:\d+}.jsonl"),
    ("GET", "/_emulator/bulk/7.partial.jsonl", r"/_emulator/bulk/{id:\d+}.partial.jsonl"),
    ("POST", "/admin/api/2026-01/graphql.json", "/admin/api/{version}/graphql.json"),
    ("GET", "/admin/api/2026-01/shop.json", "/admin/api/{version}/shop.json"),
    ("GET", "/admin/api/2026-01/events.json", "/admin/api/{version}/events.json"),
    (
        "GET",
        "/admin/api/2026-01/orders.json",
        "/admin/api/{version}/{resource:customers|orders|products}.json",
    ),
    (
        "GET",
        "/admin/api/2026-01/customers/count.json",
        "/admin/api/{version}/{resource:customers|orders|products}/count.json",
    ),
    (
        "GET",
        "/admin/api/2026-01/products/5.json",
        "/admin/api/{version}/{resource:customers|orders|products}/{id}.json",
    ),
]


def test_shopify_lists_every_endpoint_once() -> None:
    table = _shopify().routes
    listed = [(r.method, r.pattern) for r in table]
    assert sorted(listed) == sorted((m, p) for m, _, p in SHOPIFY_ENDPOINTS)
    for method, path, pattern in SHOPIFY_ENDPOINTS:
        found = table.match(method, path)
        assert found is not None and found[0].pattern == pattern, (method, path)


def test_shopify_answers_an_unknown_endpoint_with_its_own_404() -> None:
    emulator = _shopify()
    token = {"x-shopify-access-token": emulator.access_token}
    for method, path, headers in [
        ("GET", "/nowhere", {}),
        ("PUT", "/admin/oauth/authorize", {}),
        ("GET", "/admin/api/2026-01/graphql.json", token),
        ("GET", "/admin/api/2026-01/metafields.json", token),
        ("DELETE", "/admin/api/2026-01/orders.json", token),
    ]:
        response = emulator.handle(request(method, path, headers))
        assert (response.status, json.loads(response.body)) == (404, {"errors": "Not Found"})
    # The REST paths count against the call limit even when nothing is there, as on Shopify.
    assert emulator.stats["rest"] == 2
    # And an unknown Admin API path still wants the token first.
    response = emulator.handle(request("GET", "/admin/api/2026-01/metafields.json"))
    assert response.status == 401


def _woocommerce() -> WooCommerceEmulator:
    state = generate_shop(
        platform="woocommerce", shop="routes.example", customers=2, orders=2, products=1, end=END
    )
    return WooCommerceEmulator(state, https=True)


def _basic(emulator: WooCommerceEmulator) -> dict[str, str]:
    key, secret = emulator.credentials.consumer_key, emulator.credentials.consumer_secret
    return {"authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


WOOCOMMERCE_ENDPOINTS = [
    ("GET", "customers", "{resource:customers|orders|products}"),
    ("GET", "orders/12", r"{resource:customers|orders|products}/{id:\d+}"),
    ("GET", "orders/12/refunds", "orders/{id}/refunds"),
    ("GET", "products/3/variations", "products/{id}/variations"),
    ("GET", "data/currencies/current", "data/currencies/current"),
    ("GET", "refunds", "refunds"),
    ("GET", "coupons", "coupons"),
    ("POST", "coupons", "coupons"),
    ("GET", "coupons/5", "coupons/{id}"),
    ("PUT", "customers/7", "customers/{id}"),
    ("POST", "customers/7", "customers/{id}"),
    ("PATCH", "customers/7", "customers/{id}"),
    ("GET", "webhooks", "webhooks"),
    ("POST", "webhooks", "webhooks"),
    ("GET", "webhooks/4", r"webhooks/{id:\d+}"),
    ("DELETE", "webhooks/4", r"webhooks/{id:\d+}"),
]


def test_woocommerce_lists_every_endpoint_once() -> None:
    table = _woocommerce().routes
    prefix = "/wp-json/wc/v3/"
    listed = [(r.method, r.pattern) for r in table]
    assert sorted(listed) == sorted((m, prefix + p) for m, _, p in WOOCOMMERCE_ENDPOINTS)
    for method, path, pattern in WOOCOMMERCE_ENDPOINTS:
        found = table.match(method, prefix + path)
        assert found is not None and found[0].pattern == prefix + pattern, (method, path)


def test_woocommerce_without_the_refunds_collection_has_no_such_route() -> None:
    state = generate_shop(
        platform="woocommerce", shop="old.example", customers=1, orders=1, products=1, end=END
    )
    emulator = WooCommerceEmulator(state, https=True, refunds_endpoint=False)
    assert not any(r.pattern.endswith("/refunds") and "{" not in r.pattern for r in emulator.routes)
    response = emulator.handle(request("GET", "/wp-json/wc/v3/refunds", _basic(emulator)))
    assert (response.status, json.loads(response.body)["code"]) == (404, "rest_no_route")


def test_woocommerce_answers_an_unknown_endpoint_with_rest_no_route() -> None:
    emulator = _woocommerce()
    auth = _basic(emulator)
    for method, path, headers in [
        ("GET", "/wp-json/wp/v2/posts", {}),
        ("GET", "/wp-json/wc/v3/shipping_zones", auth),
        ("DELETE", "/wp-json/wc/v3/orders", auth),
        ("GET", "/wp-json/wc/v3/customers/abc", auth),
    ]:
        response = emulator.handle(request(method, path, headers))
        body = json.loads(response.body)
        assert (response.status, body["code"]) == (404, "rest_no_route"), (method, path)
        assert body["data"] == {"status": 404}
    # Under the API prefix the credentials come first, as WordPress checks them first.
    response = emulator.handle(request("GET", "/wp-json/wc/v3/shipping_zones"))
    assert response.status == 401
