"""What the body of each WooCommerce webhook topic must look like, checked before it applies.

WooCommerce signs the body only (``X-WC-Webhook-Signature``); ``X-WC-Webhook-Topic``,
``X-WC-Webhook-Source`` and ``X-WC-Webhook-Delivery-ID`` are unsigned, and one receiver may
serve several sites with one secret. So the body must fit the topic and name the same site:

- a ``*.deleted`` body is exactly ``{"id": <id>}``: ``WC_Webhook::build_payload()`` builds
  ``array('id' => $resource_id)`` for every deleted event
  (plugins/woocommerce/includes/class-wc-webhook.php);
- any other body is the REST response of the resource (``get_wp_api_payload``), whose
  ``_links.self`` is ``rest_url()`` on the same ``home_url`` that ``X-WC-Webhook-Source``
  carries: its host must be the delivery's, and its path names the resource;
- an order body never goes under a customer or product topic and so on (keys only one kind
  of REST record has).

Every topic-shape rule of this adapter lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shopsync.errors import WebhookError

__all__ = ["check_shape"]

_MARKERS: dict[str, frozenset[str]] = {
    "order": frozenset({"line_items", "order_key", "payment_method", "customer_ip_address"}),
    "customer": frozenset({"username", "role", "is_paying_customer"}),
    "product": frozenset({"catalog_visibility", "variations", "purchase_note"}),
}
_COLLECTION = {"order": "orders", "customer": "customers", "product": "products"}


def _host(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port else host


def _self_link(payload: Mapping[str, Any]) -> str | None:
    links = payload.get("_links")
    own = links.get("self") if isinstance(links, dict) else None
    first = own[0] if isinstance(own, list) and own else None
    href = first.get("href") if isinstance(first, dict) else None
    return href if isinstance(href, str) else None


def check_shape(topic: str, payload: Mapping[str, Any], source: str) -> None:
    """Raise :class:`WebhookError` unless ``payload`` is a body of ``topic`` from ``source``
    (the ``X-WC-Webhook-Source`` URL). Topics this module has no rule for pass."""
    resource, _, event = topic.partition(".")
    if resource not in _MARKERS:
        return
    if event == "deleted":
        if set(payload) != {"id"}:
            raise WebhookError(
                f"{topic} body has keys {sorted(payload)[:8]}; a deletion is exactly {{id}}: "
                "refused (a record body replayed as a deletion?)"
            )
        return
    if set(payload) <= {"id"}:
        raise WebhookError(f"{topic} body carries only an id: a deletion, not a record")
    for other, markers in _MARKERS.items():
        found = markers & set(payload)
        if other != resource and found:
            raise WebhookError(f"{topic} body carries {sorted(found)}, keys of a {other}: refused")
    href = _self_link(payload)
    if href is None:
        return  # a filter (woocommerce_webhook_payload) may drop _links: nothing to compare
    named, expected = _host(href), _host(source)
    if named and expected and named.lower() != expected.lower():
        raise WebhookError(
            f"{topic} body comes from {named!r}, the delivery says {expected!r}: refused (a "
            "body signed for one site, replayed for another)"
        )
    try:
        parts = urlsplit(href)
    except ValueError:
        raise WebhookError(f"{topic} body's _links.self is not a URL: refused") from None
    if f"/{_COLLECTION[resource]}/" not in f"{parts.path}?{parts.query}":
        raise WebhookError(f"{topic} body links to {href!r}, not to a {resource}: refused")
