"""Deletions the way a GraphQL-only app sees them (REST is legacy; new public apps are
GraphQL-only since 2025-04): the ``events`` query (2024-10+) filtered on
``action:destroy`` and ``subject_type`` (the older ``deletionEvents`` is deprecated and
covers products and collections only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import shopsync

from .test_shopify_emulator import _gql

EVENTS = """query($q: String, $after: String) {
  events(first: 2, after: $after, query: $q, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { __typename ... on BasicEvent { id action createdAt subjectId subjectType } } } }"""


def test_the_events_query_lists_deletions(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=10, orders=12, products=4)
    state = shop.state
    gone = sorted(state.orders)[:3]
    for order_id in gone:
        state.delete_order(order_id)
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        q = "subject_type:ORDER AND action:destroy"
        body = _gql(shop, EVENTS, {"q": q, "after": after}).json()
        conn = body["data"]["events"]
        seen += conn["nodes"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert [e["subjectId"] for e in seen] == [f"gid://shopify/Order/{i}" for i in gone]
    assert {e["action"] for e in seen} == {"destroy"} and seen[0]["__typename"] == "BasicEvent"
    products = _gql(shop, EVENTS, {"q": "subject_type:PRODUCT AND action:destroy"}).json()
    assert products["data"]["events"]["nodes"] == []


def test_the_adapter_reads_deletions_through_graphql_only(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=10, orders=12, products=4)
    state = shop.state
    before = state.clock() - dt.timedelta(seconds=1)
    gone = sorted(state.orders)[:3]
    for order_id in gone:
        state.delete_order(order_id)
    adapter = shopsync.connect("shopify", **shop.settings)
    rest_before = shop.emulator.stats["rest"]
    deletions = list(adapter.read_deletions(before))  # type: ignore[attr-defined]
    assert shop.emulator.stats["rest"] == rest_before  # no REST Events API
    assert {(d.resource, d.record_id) for d in deletions} == {("orders", i) for i in gone}
    assert all(d.deleted_at.tzinfo is not None for d in deletions)
