"""Receiving WooCommerce webhooks: signature check and the ping that is not an event.

WooCommerce signs each delivery with ``X-WC-Webhook-Signature``: the base64 HMAC-SHA256 of the
raw body, keyed with the secret of that webhook (not the REST consumer secret). When a webhook
is created or re-activated it first POSTs a form body ``webhook_id=<id>`` (no topic payload);
a receiver must answer it with 200 and not read it as an order.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from shopsync.adapter import Deletion, Rejected, Resource, WebhookEvent
from shopsync.adapter_kit import quarantined_record
from shopsync.checkouts import Checkout
from shopsync.errors import InvalidRecordError, SignatureError, WebhookError
from shopsync.models import Customer, Order, Product
from shopsync_woocommerce._checkouts import checkout_from_rest
from shopsync_woocommerce._shapes import check_shape
from shopsync_woocommerce.mapping import customer_from_rest, order_from_rest, product_from_rest

__all__ = ["is_ping", "map_record", "parse_webhook", "sign", "verify"]


def sign(secret: str | bytes, raw_body: bytes) -> str:
    """The ``X-WC-Webhook-Signature`` value WooCommerce sends for ``raw_body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, raw_body, hashlib.sha256).digest()).decode("ascii")


def verify(secret: str | bytes, raw_body: bytes, signature_header: str | None) -> bool:
    """True when ``signature_header`` is the body's signature (compared in constant time).

    Verify the bytes as received, before any JSON parsing: re-serialising changes them.
    """
    if not secret or not signature_header or not isinstance(signature_header, str):
        return False  # None, bytes, numbers: False, never an exception (a 401, not a 500)
    expected = sign(secret, raw_body).encode("ascii")
    try:
        given = signature_header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


def is_ping(raw_body: bytes, headers: Mapping[str, str] | None = None) -> bool:
    """True for the creation ping: a form body holding only ``webhook_id``, no topic header."""
    if headers:
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("x-wc-webhook-topic"):
            return False
    text = raw_body.strip()
    if not text.startswith(b"webhook_id="):
        return False
    try:
        fields = parse_qsl(text.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return False
    return [key for key, _ in fields] == ["webhook_id"] and fields[0][1].isdigit()


def _shop_of(url: str) -> str:
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return host + parts.path.rstrip("/")


def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
    """A verified delivery, mapped to what the store must do.

    The shop is the host (and path) of ``X-WC-Webhook-Source``, the store's home URL, as the
    adapter derives it from its ``url``; the ping names its site in the WordPress user agent.
    A delivery's order lists refunds without dates or lines (as the REST order does): each is
    dated by the order's last modification, exact for the refund that caused the delivery;
    the next sync brings the refunded lines.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    if is_ping(raw_body, lowered):
        agent = lowered.get("user-agent", "")
        site = agent.split(";", 1)[1] if ";" in agent else ""
        return WebhookEvent(topic="ping", shop=_shop_of(site), delivery_id=None, ping=True)
    if not verify(secret, raw_body, lowered.get("x-wc-webhook-signature")):
        raise SignatureError("missing or wrong X-WC-Webhook-Signature")
    topic = lowered.get("x-wc-webhook-topic", "")
    resource, _, action = topic.partition(".")
    shop = _shop_of(lowered.get("x-wc-webhook-source", ""))
    if not shop:
        raise WebhookError("delivery without X-WC-Webhook-Source")
    delivery_id = lowered.get("x-wc-webhook-delivery-id") or None
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
        raise WebhookError(f"{topic or 'webhook'} body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError(f"{topic or 'webhook'} body is not a JSON object")
    # Topic and source are unsigned: the body must fit them (see _shapes).
    check_shape(topic, payload, lowered.get("x-wc-webhook-source", ""))
    kind = _KINDS.get(resource)
    if kind is None:  # coupon.*, action.* ...: nothing shopsync keeps
        return WebhookEvent(topic=topic, shop=shop, delivery_id=delivery_id)
    if action == "deleted":
        record_id = payload.get("id")
        if record_id in (None, "", 0):
            raise WebhookError(f"{topic} body has no id")
        gone = Deletion(kind, str(record_id), dt.datetime.now(dt.timezone.utc))
        return WebhookEvent(topic=topic, shop=shop, delivery_id=delivery_id, deleted=(gone,))
    try:
        record = map_record(kind, payload, shop)
    except InvalidRecordError as exc:
        rejected = Rejected(
            resource=kind,
            record_id=str(payload["id"]) if payload.get("id") not in (None, "") else None,
            raw=raw_body.decode("utf-8", errors="replace"),
            reason=str(exc),
        )
        return WebhookEvent(topic=topic, shop=shop, delivery_id=delivery_id, rejected=(rejected,))
    checkouts: tuple[Checkout, ...] = ()
    if kind == "orders" and payload.get("status") in ("pending", "checkout-draft"):
        # issue 22: a draft or unpaid order is also a checkout (see ._checkouts); its mapping
        # succeeded as an order just above, so it succeeds as a checkout
        checkouts = (checkout_from_rest(payload, shop=shop),)
    return WebhookEvent(
        topic=topic, shop=shop, delivery_id=delivery_id, records=(record,), checkouts=checkouts
    )


_KINDS: dict[str, Resource] = {"order": "orders", "customer": "customers", "product": "products"}


def map_record(
    resource: str, raw: str | Mapping[str, Any], shop: str
) -> Customer | Order | Product:
    """Map one REST record (or its JSON text) of ``resource`` again, e.g. from the quarantine."""
    raw = quarantined_record(raw)
    if resource == "orders":
        return order_from_rest(raw, shop=shop)
    if resource == "customers":
        return customer_from_rest(raw, shop=shop)
    if resource == "products":
        return product_from_rest(raw, shop=shop)
    raise InvalidRecordError(f"unknown resource {resource!r}", raw=raw)
