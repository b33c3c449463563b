"""Shopify checkouts keyed by token (issue 22): since API 2026-04 the checkout webhooks carry
``token`` and no ``id``, order webhooks ``checkout_token`` and no ``checkout_id``
(https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks); the
GraphQL ``AbandonedCheckout`` carries the token in its ``abandonedCheckoutUrl`` only."""

from __future__ import annotations

from typing import Any

import pytest
from shopsync_shopify._checkouts import (
    checkout_from_graphql,
    checkout_from_webhook,
    checkout_key,
    recovery_segment,
)

from shopsync.errors import InvalidRecordError, WebhookError
from tests.shopify.checkout_bodies import delivered, graphql_node, webhook_body

SHOP = "token-shop.myshopify.com"
TOKEN = "0123456789abcdef0456456789abcdef"
URL = f"https://{SHOP}/14168/checkouts/ac/{TOKEN}/recover?key=6dacd6065bb80268bda857ee"
BODY = webhook_body(TOKEN, "c1", URL)
NODE = graphql_node(URL)


def _parse(topic: str, body: dict[str, Any]) -> Any:
    return delivered(topic, body, SHOP)


def test_a_webhook_without_id_and_the_graphql_node_name_one_checkout() -> None:
    hooked = checkout_from_webhook(BODY, shop=SHOP)
    synced = checkout_from_graphql(NODE, shop=SHOP)
    assert hooked.id == synced.id == checkout_key(TOKEN)
    assert TOKEN not in hooked.id  # the id travels into plans and logs; the token must not
    assert recovery_segment(f"https://{SHOP}/1/checkouts/{TOKEN}/recover?key=k") == TOKEN


def test_a_checkout_naming_no_checkout_is_quarantined_with_the_reason() -> None:
    named = ("token", "cart_token", "abandoned_checkout_url")
    event = _parse("checkouts/update", {k: v for k, v in BODY.items() if k not in named})
    (rejected,) = event.rejected
    assert "no abandoned_checkout_url, cart_token or token" in rejected.reason
    assert not event.checkouts
    with pytest.raises(InvalidRecordError, match="abandonedCheckoutUrl") as caught:
        checkout_from_graphql({**NODE, "abandonedCheckoutUrl": "https://x.test/"}, shop=SHOP)
    assert "x.test" not in str(caught.value)


def test_an_order_names_the_checkout_it_completes_by_checkout_token() -> None:
    from shopsync_shopify._render_rest import order_rest

    from tests.sync.emulated import emulated

    with emulated("shopify", seed=2, customers=3, orders=3, products=2) as shop:
        order = sorted(shop.state.orders.values(), key=lambda o: o.id)[0]
        body = order_rest(order, shop.state)
    body["checkout_token"] = TOKEN
    assert "checkout_id" not in order_rest(order)
    event = _parse("orders/create", body)
    assert [o.id for o in event.records] == [order.id]
    assert [cid for cid, _ in event.completed_checkouts] == [checkout_key(TOKEN)]
    body["checkout_token"] = None
    assert not _parse("orders/updated", body).completed_checkouts


@pytest.mark.parametrize(
    "body",
    [
        {"id": 122, "token": TOKEN},
        {"token": TOKEN},
        {"token": TOKEN, "presentment_currency": "USD", "something_new": 1},
    ],
)
def test_checkouts_delete_takes_a_token_with_unknown_extra_keys(body: dict[str, Any]) -> None:
    event = _parse("checkouts/delete", body)
    number = ["122"] if "id" in body else []  # the checkout's number: the sync keeps it
    assert [cid for cid, _ in event.deleted_checkouts] == [checkout_key(TOKEN), *number]


@pytest.mark.parametrize(
    "body",
    [
        {"id": 122},  # orders/delete's body: no token binds it to a checkout
        {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"},
        {"token": TOKEN, "line_items": []},
        {"token": TOKEN, "email": "ann@x.test"},
        {"token": TOKEN, "financial_status": "paid"},
        {"token": TOKEN, "variants": []},
        {"token": TOKEN, "addresses": []},
        {"token": TOKEN, "checkout_token": TOKEN},
        {"token": TOKEN, "abandoned_checkout_url": URL},
        {"token": TOKEN, "shop_domain": SHOP},
        {"token": "", "id": 122},
    ],
)
def test_checkouts_delete_refuses_another_topics_body(body: dict[str, Any]) -> None:
    with pytest.raises(WebhookError, match="checkouts/delete body"):
        _parse("checkouts/delete", body)


def test_the_emulated_checkout_has_a_hex_token_and_a_link_naming_its_cart_token() -> None:
    """As today's Shopify (the published bodies in ``shopsync_shopify._checkouts``): a
    32-hex ``token``, a distinct ``cart_token`` that the recovery link names, the link of
    ``/<shop number>/checkouts/ac/<cart_token>/recover?key=<hex>``; a deletion body names
    ``id`` and ``token``; the order placed from it ``checkout_token`` and ``cart_token``."""
    import re

    from shopsync_shopify._checkouts import (
        checkout_delete_rest,
        checkout_from_graphql,
        checkout_graphql,
        checkout_rest,
    )
    from shopsync_shopify._render_rest import order_rest

    from tests.sync.emulated import emulated

    with emulated("shopify", seed=5, customers=8, orders=40, products=3) as shop:
        from shopsync.testing._checkouts import add_checkouts

        last = max(o.created_at for o in shop.state.orders.values())
        assert add_checkouts(shop.state, seed=5, now=last, days=365)
        placed = sorted(shop.state.order_checkouts.items())
        checkouts = sorted(shop.state.checkouts.values(), key=lambda c: c.id)
        bodies = [checkout_rest(c) for c in checkouts]
        nodes = [checkout_graphql(c) for c in checkouts]
        orders = {oid: order_rest(shop.state.orders[oid], shop.state) for oid, _ in placed}
        by_id = {c.id: body for c, body in zip(checkouts, bodies, strict=True)}
    shops = set()
    for c, body, node in zip(checkouts, bodies, nodes, strict=True):
        assert re.fullmatch("[0-9a-f]{32}", body["token"]) and "id" not in body
        assert body["cart_token"] != body["token"] and len(body["cart_token"]) in (52, 56)
        link = re.fullmatch(
            r"https://[^/]+/(\d{11})/checkouts/ac/([^/]+)/recover\?key=[0-9a-f]+",
            body["abandoned_checkout_url"],
        )
        assert link and link.group(2) == body["cart_token"]
        shops.add(link.group(1))
        assert "token" not in node and node["abandonedCheckoutUrl"] == c.recovery_url
        assert checkout_delete_rest(c) == {"id": int(c.id), "token": body["token"]}
        # the deletion names the number the GraphQL node carries (what the sync keeps)
        page = {**node, "lineItems": {"nodes": node["lineItems"]}}  # as the connection serves it
        synced = checkout_from_graphql(page, shop=c.shop)
        assert node["id"] == f"gid://shopify/AbandonedCheckout/{c.id}"
        assert synced.number == str(checkout_delete_rest(c)["id"])
    assert len(shops) == 1  # one shop, one number
    assert placed
    for oid, cid in placed:
        assert orders[oid]["checkout_token"] == by_id[cid]["token"]
        assert orders[oid]["cart_token"] == by_id[cid]["cart_token"]
