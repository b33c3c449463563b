"""Shopify webhook deliveries: signature check and payload mapping.

Shopify signs the raw request body: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of
those exact bytes, keyed with the app's client secret. Verify before parsing (re-serialised
JSON would not match), and answer 401 when it fails, as the compliance topics require.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from shopsync.adapter import CustomerChange, Deletion, Rejected, WebhookEvent
from shopsync.errors import InvalidRecordError, SignatureError, WebhookError
from shopsync.models import Customer, Order
from shopsync_shopify._checkouts import (
    CHECKOUT_DELETE_TOPIC,
    CHECKOUT_TOPICS,
    checkout_from_webhook,
    checkout_key,
    checkout_number,
    placed_from,
    webhook_keys,
)
from shopsync_shopify._shapes import check_shape, triggered_at
from shopsync_shopify.mapping import (
    consent_from_webhook,
    customer_from_webhook,
    order_from_webhook,
    parse_gid,
)

__all__ = [
    "BULK_FINISH_TOPIC",
    "COMPLIANCE_TOPICS",
    "CUSTOMER_FACT_TOPICS",
    "CUSTOMER_TOPICS",
    "ORDER_PARTS",
    "ORDER_TOPICS",
    "order_from_delivery",
    "parse",
    "parse_webhook",
    "sign",
    "verify",
]

ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "refunds/create",
        "fulfillments/create",
    }
)
CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})
CUSTOMER_FACT_TOPICS = frozenset(
    {
        "customers_email_marketing_consent/update",
        "customers_marketing_consent/update",
        "customer.tags_added",
        "customer.tags_removed",
    }
)
"""What customer webhooks stopped carrying in 2025-01, each on its own topic (changelog
https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload;
tag topics since 2023-07,
https://shopify.dev/changelog/additional-webhook-subscription-topics-for-customer-tags)."""
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
BULK_FINISH_TOPIC = "bulk_operations/finish"
"""A bulk operation ended (any status): a notice, nothing to store; the payload names the
operation (``admin_graphql_api_id``), its lower-case ``status`` and ``error_code``."""


def _secret_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes | SecretStr, raw_body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify would send for ``raw_body``."""
    digest = hmac.new(_secret_bytes(secret), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(secret: str | bytes | SecretStr, raw_body: bytes, hmac_header: str | None) -> bool:
    """True when ``hmac_header`` signs ``raw_body``; False when missing, malformed or wrong.

    The comparison is constant-time on the decoded digests, so a forger learns nothing from
    timing; a header that is not strict base64 of 32 bytes is refused before comparing.
    """
    if not hmac_header or not isinstance(hmac_header, str) or not secret:
        return False
    try:
        given = base64.b64decode(hmac_header.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    if len(given) != hashlib.sha256().digest_size:
        return False
    expected = hmac.new(_secret_bytes(secret), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


def parse(
    topic: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | bytes | SecretStr,
    shop: str | None = None,
) -> Order | Customer | dict[str, Any]:
    """Verify a delivery and map it: an :class:`Order` for order topics, a :class:`Customer`
    for customer topics, and the decoded JSON for ``refunds/create`` and
    ``fulfillments/create`` (a child record naming its ``order_id``) and for the compliance
    topics (they name ids to export or erase, not a record to store).

    Raises :class:`SignatureError` for a bad signature and :class:`WebhookError` for a topic
    this adapter does not handle or a body that is not JSON.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if not verify(secret, raw_body, lower.get("x-shopify-hmac-sha256")):
        raise SignatureError("webhook signature missing or wrong")
    shop = shop or lower.get("x-shopify-shop-domain")
    if not shop:
        raise WebhookError("no shop: pass shop= or send X-Shopify-Shop-Domain")
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
        raise WebhookError("webhook body is not JSON") from None
    if isinstance(payload, dict):
        check_shape(topic, payload, shop)
    if topic in ORDER_TOPICS:
        if topic in ("refunds/create", "fulfillments/create"):
            return dict(payload)  # a child record naming its order_id: re-read that order
        return order_from_delivery(payload, shop)
    if topic in CUSTOMER_TOPICS:
        return customer_from_webhook(payload, shop=shop)
    if topic in COMPLIANCE_TOPICS:
        return dict(payload)
    raise WebhookError(f"unhandled webhook topic {topic!r}")


def customer_change(topic: str, payload: Mapping[str, Any]) -> CustomerChange:
    """What a consent or tag delivery changes. Payloads: ``customer_id`` and
    ``email_marketing_consent`` (email consent); ``id`` and ``sms_marketing_consent``
    (``customers_marketing_consent/update``); ``customerId`` (a GID) and ``tags`` (tags)."""
    if topic == "customers_email_marketing_consent/update":
        customer = parse_gid(_id_of(payload, "customer_id"))
        consent = consent_from_webhook(
            payload.get("email_marketing_consent"), path="email_marketing_consent"
        )
        return CustomerChange(customer, email_consent=consent)
    if topic == "customers_marketing_consent/update":
        customer = parse_gid(_id_of(payload, "id"))
        consent = consent_from_webhook(
            payload.get("sms_marketing_consent"), path="sms_marketing_consent"
        )
        return CustomerChange(customer, sms_consent=consent)
    key = next((k for k in ("customerId", "customer_id", "id") if payload.get(k)), "customerId")
    customer = parse_gid(_id_of(payload, key))
    tags = payload.get("tags")
    if isinstance(tags, str):
        tags = [t for t in tags.split(",")]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise WebhookError("tags is not a list of strings")
    cleaned = tuple(t.strip() for t in tags if t.strip())
    if topic == "customer.tags_added":
        return CustomerChange(customer, tags_added=cleaned)
    return CustomerChange(customer, tags_removed=cleaned)


def _id_of(payload: Any, *path: str) -> str:
    value = payload
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value in (None, "") or isinstance(value, bool):
        raise WebhookError(f"webhook payload has no {'.'.join(path)}")
    return str(value)


def _ids(value: Any) -> tuple[str, ...]:
    """``orders_to_redact``: a list of order ids (numbers or GIDs); anything else is refused."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WebhookError("orders_to_redact is not a list")
    ids = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or not str(item).strip():
            raise WebhookError(f"orders_to_redact holds {item!r}, not an order id")
        try:
            ids.append(parse_gid(item))
        except ValueError:
            raise WebhookError(f"orders_to_redact holds {item!r}, not an order id") from None
    return tuple(ids)


def _contacts(customer: Any) -> tuple[str, ...]:
    if not isinstance(customer, dict):
        return ()
    found = (customer.get("email"), customer.get("phone"))
    return tuple(v.strip() for v in found if isinstance(v, str) and v.strip())


def _link_shop(payload: Mapping[str, Any], shop: str, topic: str) -> None:
    """A checkout's recovery link on a myshopify domain names its shop, which must be the
    delivery's (as an order's ``order_status_url``, ``._shapes``): the signature does not
    cover the shop header, and the link is the checkout's key. Only the host is shown."""
    url = payload.get("abandoned_checkout_url")
    try:
        host = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        host = None
    if host and host.endswith(".myshopify.com") and host != shop.strip().lower():
        raise WebhookError(
            f"{topic} body's recovery link is on {host!r}, the delivery says {shop!r}: refused"
            " (a body signed for one shop of the app, replayed for another)"
        )


ORDER_PARTS = ("line_items", "refunds", "fulfillments")
"""Keys of a REST order that every full delivery carries: the store replaces an order whole,
so a delivery without one would erase it. Not ``customer``: an order without one (a guest's,
or one whose customer was deleted) may leave the key out rather than send ``null``."""


def order_from_delivery(payload: Any, shop: str) -> Order:
    """An order delivery (its decoded body) as an Order; one without one of
    :data:`ORDER_PARTS` (left out by the subscription's ``includeFields`` or a proxy:
    shopify.dev/docs/apps/build/webhooks/customize) is refused with
    :class:`InvalidRecordError`: the order is stored whole, and it would lose what it held
    of that part."""
    body = payload.get("order", payload) if isinstance(payload, dict) else None
    if isinstance(body, dict):
        for part in ORDER_PARTS:
            if part not in body:
                raise InvalidRecordError(
                    "missing: stored without it, the order would lose what it holds of it",
                    path=part,
                )
    return order_from_webhook(payload, shop=shop)


def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
    """Verify a delivery and say what the store must do with it (``shopsync.webhooks``).

    - order and customer topics carry the whole record (REST-shaped): it is upserted, or
      quarantined with the reason if it cannot be mapped;
    - ``refunds/create`` and ``fulfillments/create`` carry only the child record; Shopify
      also sends ``orders/updated`` with the whole order, which is the one applied;
    - ``orders/delete``, ``customers/delete`` and ``products/delete`` delete the record;
    - the compliance topics name a customer to erase or export, or the shop to remove;
    - the consent and tag topics change a stored customer (``event.customer_changes``);
    - ``bulk_operations/finish`` is a notice (``event.notice``) with nothing to store;
    - ``checkouts/create`` and ``checkouts/update`` carry a checkout (``event.checkouts``);
      ``checkouts/delete`` names one the store must drop (``event.deleted_checkouts``).

    The de-duplication key is ``X-Shopify-Webhook-Id`` (the same across retries).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if not verify(secret, raw_body, lower.get("x-shopify-hmac-sha256")):
        raise SignatureError("webhook signature missing or wrong")
    topic = lower.get("x-shopify-topic", "")
    shop = lower.get("x-shopify-shop-domain", "")
    if not topic or not shop:
        raise WebhookError("delivery lacks X-Shopify-Topic or X-Shopify-Shop-Domain")
    try:
        payload = json.loads(raw_body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can go
        raise WebhookError("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookError("webhook body is not a JSON object")
    check_shape(topic, payload, shop)  # topic and shop are unsigned: the body must fit them
    event = WebhookEvent(topic=topic, shop=shop, delivery_id=lower.get("x-shopify-webhook-id"))
    resource, _, action = topic.partition("/")
    if (
        topic in ORDER_TOPICS - {"refunds/create", "fulfillments/create"}
        or topic in CUSTOMER_TOPICS
    ):
        kind = "orders" if resource == "orders" else "customers"
        mapper = order_from_delivery if kind == "orders" else customer_from_webhook
        try:
            record: Order | Customer = mapper(payload, shop=shop)
        except InvalidRecordError as exc:
            raw = raw_body.decode("utf-8", "replace")
            rid = payload.get("id")
            rejected = Rejected(kind, None if rid in (None, "") else str(rid), raw, str(exc))
            return dataclasses.replace(event, rejected=(rejected,))
        event = dataclasses.replace(event, records=(record,))
        if kind == "orders" and isinstance(record, Order):
            # the checkout it was placed from is completed (issue 22; ``._checkouts``): the
            # store finds it by its token's key or by its cart token's, whichever it holds
            named = (payload.get("checkout_token"), payload.get("cart_token"))
            done = placed_from(named, record.created_at)
            if done:
                event = dataclasses.replace(event, completed_checkouts=done)
        return event
    if topic in ("refunds/create", "fulfillments/create"):
        return event
    if topic in CHECKOUT_TOPICS:  # issue 22
        _link_shop(payload, shop, topic)
        try:
            checkout = checkout_from_webhook(payload, shop=shop)
        except InvalidRecordError as exc:
            raw = raw_body.decode("utf-8", "replace")
            key, _ = webhook_keys(payload)  # no ``id`` since 2026-04
            rejected = Rejected("checkouts", key, raw, str(exc))
            return dataclasses.replace(event, rejected=(rejected,))
        return dataclasses.replace(event, checkouts=(checkout,))
    if topic == CHECKOUT_DELETE_TOPIC:
        at = triggered_at(lower, dt.datetime.now(dt.timezone.utc))
        token = str(payload["token"]).strip()  # ``check_shape`` saw a token there
        # the ``id`` too: the sync's copy has no token, only the number (``._checkouts``)
        number = checkout_number(payload.get("id"))
        named_by = [checkout_key(token), *([number] if number else [])]
        return dataclasses.replace(event, deleted_checkouts=tuple((k, at) for k in named_by))
    if action == "delete" and resource in ("orders", "customers", "products"):
        received = dt.datetime.now(dt.timezone.utc)
        deletion = Deletion(resource, _id_of(payload, "id"), triggered_at(lower, received))  # type: ignore[arg-type]
        return dataclasses.replace(event, deleted=(deletion,))
    if topic == "customers/redact":
        return dataclasses.replace(
            event,
            redact_customer=_id_of(payload, "customer", "id"),
            redact_orders=_ids(payload.get("orders_to_redact")),
            redact_contacts=_contacts(payload.get("customer")),
        )
    if topic == "customers/data_request":
        return dataclasses.replace(
            event,
            data_request_customer=_id_of(payload, "customer", "id"),
            data_request_orders=_ids(payload.get("orders_requested")),
        )
    if topic == "shop/redact":
        return dataclasses.replace(event, redact_shop=True)
    if topic in CUSTOMER_FACT_TOPICS:
        try:
            change = customer_change(topic, payload)
        except (InvalidRecordError, WebhookError) as exc:
            raw = raw_body.decode("utf-8", "replace")
            return dataclasses.replace(
                event, rejected=(Rejected("customers", None, raw, str(exc)),)
            )
        return dataclasses.replace(event, customer_changes=(change,))
    if topic == BULK_FINISH_TOPIC:
        notice = {
            "bulk_operation": _id_of(payload, "admin_graphql_api_id"),
            "status": str(payload.get("status") or ""),
            "error_code": str(payload.get("error_code") or ""),
        }
        return dataclasses.replace(event, notice=notice)
    raise WebhookError(f"unhandled webhook topic {topic!r}")
