"""Webhooks of the emulated shop: which topics a state event fires and the body of each.

Bodies are REST-shaped as Shopify posts them, signed in ``X-Shopify-Hmac-Sha256`` with the
app's secret, with ``X-Shopify-Webhook-Id``, ``X-Shopify-Event-Id`` (the same for every
delivery of one event) and ``X-Shopify-Triggered-At``
(https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates,
https://shopify.dev/docs/api/webhooks). Customer webhooks carry no tags or consent since
2025-01 (:mod:`._emu_topics`); the privacy topics carry the shop and the customer's order ids
(https://shopify.dev/docs/apps/build/privacy-law-compliance).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from shopsync.testing.webhooks import Delivery
from shopsync_shopify import _emu_bulk as bulk_emu
from shopsync_shopify import _render as render
from shopsync_shopify._checkouts import (
    CHECKOUT_DELETE_TOPIC,
    checkout_delete_rest,
    checkout_rest,
)
from shopsync_shopify._emu_edits import order_edited_rest
from shopsync_shopify._emu_topics import FACT_TOPICS, WEBHOOK_DROPPED
from shopsync_shopify.webhooks import sign

if TYPE_CHECKING:
    from shopsync.testing.state import Event, Subscription
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = ["TOPICS", "Webhooks"]

TOPICS: dict[str, tuple[str, ...]] = {
    "customer.created": ("customers/create", *FACT_TOPICS),
    "customer.updated": ("customers/update", *FACT_TOPICS),
    "customer.deleted": ("customers/delete",),
    "customer.redact": ("customers/redact",),
    "customer.data_request": ("customers/data_request",),
    "order.created": ("orders/create",),
    "order.updated": ("orders/updated",),
    "order.paid": ("orders/paid", "orders/updated"),
    "order.cancelled": ("orders/cancelled", "orders/updated"),
    "order.edited": ("orders/edited", "orders/updated"),  # ._emu_edits
    "order.fulfilled": ("orders/fulfilled",),
    "order.deleted": ("orders/delete",),
    "refund.created": ("refunds/create", "orders/updated"),
    "fulfillment.created": ("fulfillments/create", "orders/updated"),
    "product.created": ("products/create",),
    "product.updated": ("products/update",),
    "shop.redact": ("shop/redact",),
    "bulk_operation.finished": ("bulk_operations/finish",),
    "checkout.created": ("checkouts/create",),  # issue 22 (._checkouts)
    "checkout.updated": ("checkouts/update",),
    "checkout.deleted": ("checkouts/delete",),
}
"""Neutral event -> the Shopify topics it fires (an update fires ``orders/updated`` too)."""


class Webhooks:
    """The webhook deliveries of one emulator."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        if subscription.topic not in TOPICS.get(event.topic, ()):
            return None
        payload = self.webhook_payload(subscription.topic, event)
        if payload is None:
            return None
        body = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": subscription.topic,
            "X-Shopify-Hmac-Sha256": sign(subscription.secret or self.emu.api_secret, body),
            "X-Shopify-Shop-Domain": self.emu.state.shop,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-API-Version": self.emu.api_version,
            "X-Shopify-Triggered-At": event.at.isoformat().replace("+00:00", "Z"),
            "X-Shopify-Event-Id": str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL,
                    f"{self.emu.state.shop}/{event.topic}/{event.record_id}/{event.at.isoformat()}",
                )
            ),
        }
        return Delivery(headers=headers, body=body, id=webhook_id)

    def webhook_payload(self, topic: str, event: Event) -> dict[str, Any] | None:
        """The REST-shaped body Shopify posts for ``topic``."""
        state, record = self.emu.state, event.record
        shop_fields = {"shop_id": 1, "shop_domain": state.shop}
        orders_of = [
            int(o.id)
            for o in state.orders.values()
            if o.customer_id == event.record_id and o.id.isdigit()
        ]
        if topic in ("customers/create", "customers/update"):
            body = render.customer_rest(
                record,  # type: ignore[arg-type]
                state,
                metafield_namespaces=self.emu.webhook_metafield_namespaces,
            )
            for key in WEBHOOK_DROPPED:  # since 2025-01 (see ._emu_topics)
                body.pop(key, None)
            return body
        if topic in FACT_TOPICS:
            return self.emu.customer_facts.payload(topic, event)
        if topic in ("customers/delete", "orders/delete"):
            return {"id": int(event.record_id) if event.record_id.isdigit() else event.record_id}
        if topic == "customers/redact":
            return {
                **shop_fields,
                "customer": {"id": int(event.record_id), "email": None, "phone": None},
                "orders_to_redact": orders_of,
            }
        if topic == "customers/data_request":
            customer = record
            return {
                **shop_fields,
                "customer": {
                    "id": int(event.record_id),
                    "email": getattr(customer, "email", None),
                    "phone": getattr(customer, "phone", None),
                },
                "orders_requested": orders_of,
                "data_request": {"id": abs(hash((event.record_id, event.at))) % 10**6},
            }
        if topic == "shop/redact":
            return dict(shop_fields)
        if topic == "orders/edited":
            return order_edited_rest(record, state)  # type: ignore[arg-type]
        if topic.startswith("orders/"):
            return render.order_rest(record, state)  # type: ignore[arg-type]
        if topic == "refunds/create":
            refund = next((r for r in record.refunds if r.id == event.child_id), None)  # type: ignore[union-attr]
            return render.refund_rest(refund, record) if refund else None  # type: ignore[arg-type]
        if topic == "fulfillments/create":
            fulfillments = list(record.fulfillments)  # type: ignore[union-attr]
            for i, f in enumerate(fulfillments):
                if f.id == event.child_id:
                    return render.fulfillment_rest(f, record, i + 1)  # type: ignore[arg-type]
            return None
        if topic.startswith("products/"):
            return render.product_rest(record, state)  # type: ignore[arg-type]
        if topic in ("checkouts/create", "checkouts/update"):
            return checkout_rest(record)  # type: ignore[arg-type]
        if topic == CHECKOUT_DELETE_TOPIC:
            return checkout_delete_rest(record)  # type: ignore[arg-type]
        if topic == "bulk_operations/finish":
            op = self.emu.bulk_ops.get(event.record_id)
            if op is None:
                return None
            shown = op.render()
            return bulk_emu.finish_payload(
                shown["id"], op.status, shown["errorCode"], shown["createdAt"], shown["completedAt"]
            )
        return None
