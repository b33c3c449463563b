"""Shopify checkout payloads for the checkout tests: a ``checkouts/create``/``update`` body
(REST field names), an ``AbandonedCheckout`` node, and a signed webhook of either."""

from __future__ import annotations

import json
from typing import Any

from shopsync_shopify.webhooks import parse_webhook, sign

SECRET = "s"


def webhook_body(token: str, cart_token: str, url: str) -> dict[str, Any]:
    """A checkout webhook body of one $10 mug, customer 7."""
    return {
        "token": token,
        "cart_token": cart_token,
        "email": "ann@x.test",
        "created_at": "2026-11-30T10:00:00-05:00",
        "updated_at": "2026-11-30T10:05:00-05:00",
        "completed_at": None,
        "abandoned_checkout_url": url,
        "currency": "USD",
        "presentment_currency": "USD",
        "subtotal_price": "10.00",
        "total_price": "10.00",
        "customer": {"id": 7, "email": "ann@x.test"},
        "line_items": [
            {"product_id": 1, "variant_id": 2, "title": "Mug", "quantity": 1, "price": "10.00"}
        ],
    }


def graphql_node(url: str, *, updated_at: str = "2026-11-30T15:05:00Z") -> dict[str, Any]:
    """The same checkout as the sync reads it (``AbandonedCheckout/122``)."""
    return {
        "id": "gid://shopify/AbandonedCheckout/122",
        "abandonedCheckoutUrl": url,
        "createdAt": "2026-11-30T15:00:00Z",
        "updatedAt": updated_at,
        "completedAt": None,
        "customer": {"id": "gid://shopify/Customer/7", "email": "ann@x.test"},
        "subtotalPriceSet": {"shopMoney": {"amount": "10.0", "currencyCode": "USD"}},
        "totalPriceSet": {"shopMoney": {"amount": "10.0", "currencyCode": "USD"}},
        "lineItems": {"nodes": []},
    }


def delivered(topic: str, body: dict[str, Any], shop: str) -> Any:
    """``body`` parsed as a delivery of ``topic`` for ``shop``, signed with :data:`SECRET`."""
    raw = json.dumps(body).encode()
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": shop,
        "x-shopify-hmac-sha256": sign(SECRET, raw),
        "x-shopify-webhook-id": "d1",
    }
    return parse_webhook(headers, raw, SECRET)
