"""The emulated Admin API: auth, cost and throttling, paging, filters, bulk, REST, OAuth,
and the official ShopifyAPI client driven through it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import shopify
from pydantic import SecretStr
from shopsync_shopify._graphql import connection_multiplier
from shopsync_shopify._render import order_rest
from shopsync_shopify.install import (
    AppCredentials,
    exchange_token,
    new_state,
    permission_url,
    verify_callback,
)

from shopsync.errors import AuthenticationError, SignatureError

from .conftest import load

ORDERS_PAGE = """query($after: String, $q: String, $first: Int!) {
  orders(first: $first, after: $after, query: $q, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor } edges { cursor node { id updatedAt } } } }"""


def _gql(
    shop: Any, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> requests.Response:
    s = shop.settings
    return requests.post(
        f"{shop.url}/admin/api/{s['api_version']}/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token or s["access_token"]},
        timeout=10,
    )


def _all_ids(shop: Any, q: str | None = None, first: int = 7) -> list[str]:
    ids, after = [], None
    while True:
        body = _gql(shop, ORDERS_PAGE, {"after": after, "q": q, "first": first}).json()
        conn = body["data"]["orders"]
        ids += [e["node"]["id"].rsplit("/", 1)[-1] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return ids
        after = conn["pageInfo"]["endCursor"]


def test_token_required(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5)
    assert _gql(shop, "{ shop { name } }", token="wrong").status_code == 401
    r = requests.get(f"{shop.url}/admin/api/2025-07/orders.json", timeout=5)
    assert r.status_code == 401 and "Invalid API key" in r.json()["errors"]


def test_cost_extension_and_refund_of_unused_cost(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5, plan="standard")
    body = _gql(shop, ORDERS_PAGE, {"first": 50}).json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + connection_multiplier(50) * 1 == 10
    assert cost["actualQueryCost"] == 2 + connection_multiplier(5) * 1 == 6
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert status["currentlyAvailable"] >= 2000 - cost["actualQueryCost"] - 1


def test_throttled_as_shopify_returns_it(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5, bucket_size=120, restore_rate=0.001)
    shop.emulator.gql_bucket.take(110)  # another client of the shop spent the bucket
    again = _gql(shop, ORDERS_PAGE, {"first": 115})  # 2 + 9 requested > 10 left
    assert again.status_code == 200
    body = again.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["requestedQueryCost"] == 11
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 11


def test_single_query_cap(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5)
    money = "{ shopMoney { amount } }"
    line = (
        f"id variant {{ id }} product {{ id }} originalUnitPriceSet {money} "
        f"originalTotalSet {money} totalDiscountSet {money} discountedTotalSet {money}"
    )
    lines = f"lineItems(first: 250) {{ nodes {{ {line} }} }}"
    q = f"{{ orders(first: 250) {{ nodes {{ id {lines} }} }} }}"
    body = _gql(shop, q).json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 2 + 10 * (1 + 2 + 10 * 11) > 1000


def test_validation_errors_come_back_as_graphql_errors(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=5)
    r = _gql(shop, "{ orders(first: 1) { nodes { noSuchField } } }")
    assert r.status_code == 200 and "noSuchField" in r.json()["errors"][0]["message"]


def test_paging_is_stable_with_equal_timestamps(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=60)
    state = shop.state
    same = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    for order_id in list(state.orders)[:25]:
        state.update_order(order_id, updated_at=same)
    ids = _all_ids(shop, first=7)
    assert len(ids) == len(set(ids)) == 60
    expected = sorted(state.orders.values(), key=lambda o: (o.updated_at, int(o.id)))
    assert ids == [o.id for o in expected]


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_updated_at_filters(shopify_shop: Any, op: str) -> None:
    shop = shopify_shop(orders=40)
    pivot = sorted(o.updated_at for o in shop.state.orders.values())[20]
    text = pivot.isoformat().replace("+00:00", "Z")
    ids = set(_all_ids(shop, f"updated_at:{op}'{text}'"))
    compare = {">": pivot.__lt__, ">=": pivot.__le__, "<": pivot.__gt__, "<=": pivot.__ge__}[op]
    assert ids == {o.id for o in shop.state.orders.values() if compare(o.updated_at)}


def test_bulk_operation_jsonl(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=30, bulk_delay=0.3)
    inner = """{ orders { edges { node { id
      lineItems { edges { node { __typename id quantity } } }
      refunds { id refundLineItems { edges { node { __typename quantity } } } } } } } }"""
    run = """mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: true) {
      bulkOperation { id status } userErrors { field message } } }"""
    body = _gql(shop, run, {"q": inner}).json()
    op = body["data"]["bulkOperationRunQuery"]["bulkOperation"]
    assert (
        op["status"] in ("CREATED", "RUNNING")
        and body["extensions"]["cost"]["requestedQueryCost"] == 10
    )
    # five may run at once since 2026-01: tests/shopify/test_shopify_bulk.py
    status_q = (
        "query($id: ID!) { node(id: $id) { ... on BulkOperation { id status objectCount url } } }"
    )
    for _ in range(200):
        node = _gql(shop, status_q, {"id": op["id"]}).json()["data"]["node"]
        if node["status"] == "COMPLETED":
            break
        import time

        time.sleep(0.05)
    assert node["status"] == "COMPLETED"
    current = _gql(shop, "{ currentBulkOperation { id status } }").json()["data"][
        "currentBulkOperation"
    ]
    assert current["id"] == op["id"]
    text = requests.get(node["url"], timeout=10).text  # no token: a signed URL
    assert "gid:\\/\\/shopify\\/Order\\/" in text
    lines = [json.loads(line) for line in text.splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    assert len(roots) == 30 and int(node["objectCount"]) == len(lines)
    children = [line for line in lines if "__parentId" in line]
    seen: set[str] = set()
    for line in lines:  # every child comes after its parent
        if "__parentId" in line:
            assert line["__parentId"] in seen
        seen.add(line["id"]) if "id" in line else None
        for refund in line.get("refunds", []):
            seen.add(refund["id"])
    total_lines = sum(len(o.line_items) for o in shop.state.orders.values())
    assert sum(1 for c in children if c["__typename"] == "LineItem") == total_lines


def test_rest_pagination_limits_and_429(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=30, rest_bucket_size=4, rest_leak_rate=0.01)
    s = shop.settings
    headers = {"X-Shopify-Access-Token": s["access_token"]}
    url = f"{shop.url}/admin/api/{s['api_version']}/orders.json?limit=10&status=any"
    r = requests.get(url, headers=headers, timeout=5)
    assert r.headers["X-Shopify-Shop-Api-Call-Limit"] == "1/4"
    assert r.headers["Link"].endswith('rel="next"') and len(r.json()["orders"]) == 10
    nxt = r.headers["Link"].split(";")[0].strip("<>")
    r2 = requests.get(nxt, headers=headers, timeout=5)
    assert 'rel="previous"' in r2.headers["Link"] and 'rel="next"' in r2.headers["Link"]
    bad = requests.get(nxt + "&status=any", headers=headers, timeout=5)
    assert bad.status_code == 400
    assert (
        requests.get(url, headers=headers, timeout=5).headers["X-Shopify-Shop-Api-Call-Limit"]
        == "4/4"
    )
    limited = requests.get(url, headers=headers, timeout=5)
    assert limited.status_code == 429 and float(limited.headers["Retry-After"]) > 0
    assert "Exceeded 2 calls per second" in limited.json()["errors"]


def test_shopify_api_client_through_the_emulator(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=23, orders=5)
    s = shop.settings
    session = shopify.Session(s["shop"], s["api_version"], s["access_token"])
    shopify.ShopifyResource.activate_session(session)
    try:
        shopify.ShopifyResource.set_site(f"{shop.url}/admin/api/{s['api_version']}")
        seen = []
        for page in shopify.PaginatedIterator(shopify.Customer.find(limit=10)):
            seen += [c.id for c in page]
        assert sorted(seen) == sorted(int(i) for i in shop.state.customers)
        answer = json.loads(shopify.GraphQL().execute("{ shop { myshopifyDomain currencyCode } }"))
        assert answer["data"]["shop"]["myshopifyDomain"] == s["shop"]
        assert "throttleStatus" in answer["extensions"]["cost"]
        assert shopify.Limits.credit_limit() == 40
    finally:
        shopify.ShopifyResource.clear_session()


def test_install_flow(shopify_shop: Any) -> None:
    shop = shopify_shop(orders=2)
    app = AppCredentials("emulated-api-key", SecretStr("emulated-api-secret"))
    state = new_state()
    url = permission_url(
        app, shop.state.shop, ["read_orders", "read_customers"], "https://app.example/cb", state
    )
    assert url.startswith(f"https://{shop.state.shop}/admin/oauth/authorize?")
    query = urlsplit(url).query
    r = requests.get(f"{shop.url}/admin/oauth/authorize?{query}", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    params = dict(parse_qsl(urlsplit(r.headers["Location"]).query))
    assert verify_callback(app, params, state)
    assert not verify_callback(app, {**params, "shop": "evil.myshopify.com"}, state)
    assert not verify_callback(app, params, "other-state")
    install = exchange_token(app, params, expected_state=state, base_url=shop.url)
    assert install.shop == shop.state.shop and "read_orders" in install.scopes
    token = install.access_token.get_secret_value()
    assert token not in repr(install)
    assert _gql(shop, "{ shop { name } }", token=token).status_code == 200
    with pytest.raises(AuthenticationError):  # a code works once
        exchange_token(app, params, expected_state=state, base_url=shop.url)
    with pytest.raises(SignatureError):
        exchange_token(app, {**params, "code": "forged"}, base_url=shop.url)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _same_shape(ours: Any, theirs: Any, path: str, problems: list[str]) -> None:
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{path}.{key} missing")
            else:
                _same_shape(ours[key], value, f"{path}.{key}", problems)
    elif isinstance(theirs, list) and isinstance(ours, list):
        if theirs and ours:
            _same_shape(ours[0], theirs[0], f"{path}[0]", problems)
    elif theirs == "NoneType" or ours == "NoneType":
        return  # a null on either side says nothing about the type
    elif theirs != ours:
        problems.append(f"{path}: {ours} vs {theirs}")


USED_ORDER_KEYS = [
    "id",
    "email",
    "created_at",
    "updated_at",
    "processed_at",
    "cancelled_at",
    "closed_at",
    "currency",
    "financial_status",
    "fulfillment_status",
    "name",
    "source_name",
    "tags",
    "subtotal_price",
    "subtotal_price_set",
    "total_discounts",
    "total_discounts_set",
    "total_tax",
    "total_tax_set",
    "total_price",
    "total_price_set",
    "total_shipping_price_set",
    "discount_codes",
    "customer",
    "billing_address",
    "shipping_address",
    "line_items",
    "refunds",
    "fulfillments",
]


def test_rest_and_webhook_output_has_the_shape_of_real_payloads(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=40, orders=150)
    state = shop.state
    real = load("ruby-2026-07-order.json")["order"]
    order = (
        next(
            o
            for o in state.orders.values()
            if o.refunds and o.fulfillments and o.customer_id and o.discount_codes
        )
        if any(
            o.refunds and o.fulfillments and o.customer_id and o.discount_codes
            for o in state.orders.values()
        )
        else next(
            o for o in state.orders.values() if o.refunds and o.fulfillments and o.customer_id
        )
    )
    ours = order_rest(order, state)
    problems: list[str] = []
    for key in USED_ORDER_KEYS:
        assert key in ours, key
        if key in real:
            _same_shape(_shape(ours[key]), _shape(real[key]), key, problems)
    assert not problems, problems
    s = shop.settings
    customer_id = order.customer_id
    r = requests.get(
        f"{shop.url}/admin/api/{s['api_version']}/customers/{customer_id}.json",
        headers={"X-Shopify-Access-Token": s["access_token"]},
        timeout=5,
    )
    real_customer = load("ruby-2026-07-customer.json")["customer"]
    problems = []
    _same_shape(_shape(r.json()["customer"]), _shape(real_customer), "customer", problems)
    assert not problems, problems
