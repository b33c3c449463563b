"""What the body of each Shopify webhook topic must look like, checked before anything applies.

Shopify signs the raw body only (``X-Shopify-Hmac-Sha256``): ``X-Shopify-Topic``,
``X-Shopify-Shop-Domain``, ``X-Shopify-Webhook-Id`` and ``X-Shopify-Triggered-At`` travel
beside it unsigned, and every shop of one app signs with the same client secret
(https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook). So a
captured delivery can be sent again under another topic, another shop of the same app, a fresh
delivery id or a far-future trigger time. The body is the only thing a receiver can trust; this
module checks that it fits the topic it would be applied as, and names the same shop.

The shapes follow the sample payloads of the webhook reference, API 2026-07
(https://shopify.dev/docs/api/webhooks?reference=toml): the compliance topics carry exactly
these keys, a deletion carries the id (``customers/delete`` adds ``tax_exemptions`` and
``admin_graphql_api_id``), and records carry ``admin_graphql_api_id`` naming their type.
Every topic-shape rule of this adapter lives here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shopsync.errors import WebhookError

__all__ = ["check_shape", "triggered_at"]

COMPLIANCE_KEYS: dict[str, frozenset[str]] = {
    "shop/redact": frozenset({"shop_id", "shop_domain"}),
    "customers/redact": frozenset({"shop_id", "shop_domain", "customer", "orders_to_redact"}),
    "customers/data_request": frozenset(
        {"shop_id", "shop_domain", "customer", "orders_requested", "data_request"}
    ),
}
_CUSTOMER_KEYS = frozenset({"id", "email", "phone"})
_DELETE_KEYS: dict[str, frozenset[str]] = {
    "orders": frozenset({"id", "admin_graphql_api_id"}),
    "products": frozenset({"id", "admin_graphql_api_id"}),
    "customers": frozenset({"id", "admin_graphql_api_id", "tax_exemptions"}),
    # issue 22: ``checkouts/delete`` names the checkout by its token (and id); see
    # :func:`_checkout_deletion` for how its unverified shape is checked
    "checkouts": frozenset({"id", "token"}),
}
_CHECKOUT_NOT_DELETION = frozenset({"line_items", "email", "abandoned_checkout_url", "customer"})
"""Keys of a checkout record: a body with them is a checkout, not its deletion."""
_GID_TYPE = {"orders": "Order", "customers": "Customer", "products": "Product"}
# Top-level keys only one kind of REST record has: an order body never has ``addresses`` or
# ``variants``, a customer body never ``line_items`` (REST Admin resources, 2026-07).
_MARKERS: dict[str, frozenset[str]] = {
    "orders": frozenset(
        {"line_items", "financial_status", "order_number", "checkout_id", "checkout_token"}
    ),
    "customers": frozenset({"addresses", "verified_email", "multipass_identifier"}),
    "products": frozenset({"variants", "vendor", "body_html", "options"}),
    # issue 22: only a checkout has its recovery link (an order has ``checkout_token``)
    "checkouts": frozenset({"abandoned_checkout_url"}),
}
_FOREIGN = frozenset().union(*COMPLIANCE_KEYS.values()) - {"customer"}


def _same_shop(named: Any, shop: str, topic: str) -> None:
    if not isinstance(named, str) or named.strip().lower() != shop.strip().lower():
        raise WebhookError(
            f"{topic} body names shop {named!r}, the delivery says {shop!r}: refused (a body "
            "signed for one shop of the app, replayed for another)"
        )


def _compliance(topic: str, payload: Mapping[str, Any], shop: str) -> None:
    expected = COMPLIANCE_KEYS[topic]
    if set(payload) != expected:
        raise WebhookError(
            f"{topic} body has keys {sorted(payload)}, not {sorted(expected)}: refused (the "
            "body of another topic?)"
        )
    _same_shop(payload.get("shop_domain"), shop, topic)
    if topic != "shop/redact":
        customer = payload.get("customer")
        if not isinstance(customer, dict) or "id" not in customer or set(customer) - _CUSTOMER_KEYS:
            raise WebhookError(f"{topic} body's customer is not {{id, email, phone}}")


def _gid_fits(payload: Mapping[str, Any], resource: str, topic: str) -> None:
    """A body naming its type (``gid://shopify/Order/1``) must name the topic's type;
    anything else in that key is the mapper's business (quarantined if it matters)."""
    gid = payload.get("admin_graphql_api_id")
    if not isinstance(gid, str) or not gid.startswith("gid://shopify/"):
        return
    if not gid.startswith(f"gid://shopify/{_GID_TYPE[resource]}/"):
        raise WebhookError(f"{topic} body is a {gid!r}, not a {_GID_TYPE[resource]}")


def _status_url_shop(payload: Mapping[str, Any], shop: str, topic: str) -> None:
    """An order's ``order_status_url`` is on the shop's myshopify domain unless the shop has a
    custom domain; when it names a myshopify shop, that shop must be the delivery's."""
    url = payload.get("order_status_url")
    host = urlsplit(url).hostname if isinstance(url, str) else None
    if host and host.endswith(".myshopify.com"):
        _same_shop(host, shop, topic)


def _checkout_deletion(payload: Mapping[str, Any], topic: str) -> None:
    """``checkouts/delete``: Shopify's example body is not verified (and since 2026-04 its
    checkout topics key on ``token``), so a body with a ``token`` and any unknown keys is
    taken; what is refused is a body without a token (a bare ``{"id"}`` is another
    resource's deletion) or carrying another topic's marks (a record's fields)."""
    token = payload.get("token")
    if not isinstance(token, str) or not token.strip():
        raise WebhookError(
            f"{topic} body has keys {sorted(payload)} and no token: refused (another "
            "resource's deletion replayed?)"
        )
    foreign = set(payload) & (
        _CHECKOUT_NOT_DELETION | _FOREIGN | frozenset().union(*_MARKERS.values())
    )
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid.startswith(
        tuple(f"gid://shopify/{t}/" for t in _GID_TYPE.values())
    ):
        foreign.add("admin_graphql_api_id")
    if foreign:
        raise WebhookError(
            f"{topic} body carries {sorted(foreign)}, keys of a record: refused (a record "
            "body replayed as a deletion?)"
        )


def check_shape(topic: str, payload: Mapping[str, Any], shop: str) -> None:
    """Raise :class:`WebhookError` unless ``payload`` is a body of ``topic`` for ``shop``.

    Topics this module has no rule for pass (the caller refuses unknown topics anyway).
    """
    resource, _, action = topic.partition("/")
    if topic in COMPLIANCE_KEYS:
        _compliance(topic, payload, shop)
        return
    if resource not in _MARKERS:
        return
    if topic == "checkouts/delete":
        _checkout_deletion(payload, topic)
        return
    if action == "delete":
        allowed = _DELETE_KEYS[resource]
        if "id" not in payload or set(payload) - allowed:
            raise WebhookError(
                f"{topic} body has keys {sorted(payload)}; a deletion carries only "
                f"{sorted(allowed)}: refused (a record body replayed as a deletion?)"
            )
        if resource in _GID_TYPE:
            _gid_fits(payload, resource, topic)
        return
    if set(payload) <= _DELETE_KEYS["customers"] | _DELETE_KEYS["checkouts"]:
        raise WebhookError(f"{topic} body carries only an id: a deletion, not a record")
    if _FOREIGN & set(payload):
        raise WebhookError(f"{topic} body carries compliance keys: refused")
    for other, markers in _MARKERS.items():
        found = markers & set(payload)
        if resource == "checkouts" and other == "orders":
            found -= {"line_items"}  # a checkout has lines too
        if other != resource and found:
            raise WebhookError(
                f"{topic} body carries {sorted(found)}, keys of {other}, not {resource}: refused"
            )
    if resource in _GID_TYPE:
        _gid_fits(payload, resource, topic)
    if resource == "orders":
        _status_url_shop(payload, shop, topic)


def triggered_at(headers: Mapping[str, str], received: dt.datetime) -> dt.datetime:
    """``X-Shopify-Triggered-At`` (unsigned), never later than ``received``.

    A replay can put any instant there; a deletion dated in 2999 would keep the record's
    every later version out for good. Capping at receipt keeps the order of honest events.
    """
    text = headers.get("x-shopify-triggered-at", "")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return received
    return min(moment.astimezone(dt.timezone.utc), received)
