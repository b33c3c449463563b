"""Webhooks of the emulated store: the ``/webhooks`` endpoints, the ping and deliveries.

A delivery is what ``WC_Webhook::deliver()`` posts: the resource as the REST API renders it,
signed in ``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the body), with the
``X-WC-Webhook-*`` headers and WordPress's user agent. Creating a webhook through
``POST /webhooks`` first sends ``WC_Webhook::deliver_ping()``'s ``webhook_id=<id>`` form.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shopsync.testing.server import Request, Response
from shopsync.testing.state import DeliveryAttempt, Event, Subscription
from shopsync.testing.webhooks import Delivery
from shopsync_woocommerce import _render as render
from shopsync_woocommerce._emu_rest import PREFIX, error
from shopsync_woocommerce.webhooks import sign

if TYPE_CHECKING:
    from shopsync_woocommerce.emulator import WooCommerceEmulator

__all__ = ["USER_AGENT", "WEBHOOK_TOPICS", "Webhooks"]


WC_VERSION = "9.4.1"
WP_VERSION = "6.7.1"
USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"

WEBHOOK_TOPICS = {
    "customer.created": ("customer.created",),
    "customer.updated": ("customer.updated",),
    "customer.redact": ("customer.updated",),
    "customer.deleted": ("customer.deleted",),
    "order.created": ("order.created",),
    "order.updated": ("order.updated",),
    "order.paid": ("order.updated",),
    "order.cancelled": ("order.updated",),
    "order.fulfilled": ("order.updated",),
    "refund.created": ("order.updated",),
    "fulfillment.created": ("order.updated",),
    "order.deleted": ("order.deleted",),
    "product.created": ("product.created",),
    "product.updated": ("product.updated",),
}
"""Neutral state event -> the WooCommerce topics it fires (a store fires ``order.updated``
for every save of an order: payment, refund, shipment, cancellation)."""

_VALID_TOPICS = {
    f"{r}.{e}"
    for r in ("order", "customer", "product", "coupon")
    for e in ("created", "updated", "deleted", "restored")
}


class Webhooks:
    """The webhook endpoints and deliveries of one emulator."""

    def __init__(self, emu: WooCommerceEmulator) -> None:
        self.emu = emu
        self._delivery_seq = itertools.count(1)

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        topics = WEBHOOK_TOPICS.get(event.topic, ())
        if subscription.topic not in topics:
            return None
        resource, _, action = subscription.topic.partition(".")
        if action == "deleted" or event.record is None:
            payload: Any = {"id": int(event.record_id)}
        else:
            # The body's _links are rest_url() on the same home_url as X-WC-Webhook-Source
            # (WC_Webhook::get_wp_api_payload through the REST controllers), not our address.
            payload = self.emu.rest.render_record(event.record, base=self.emu.site())
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = hashlib.md5(
            f"{subscription.id}{time.time()}{next(self._delivery_seq)}".encode()
        ).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": self.emu.site() + "/",
            "X-WC-Webhook-Topic": subscription.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": action,
            "X-WC-Webhook-Signature": sign(subscription.secret or "", body),
            "X-WC-Webhook-ID": str(subscription.id),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        return Delivery(headers=headers, body=body, id=delivery_id)

    def _webhook_json(self, sub: Subscription) -> dict[str, Any]:
        resource, _, event = sub.topic.partition(".")
        now = dt.datetime.now(dt.timezone.utc)
        return {
            "id": int(sub.id),
            "name": getattr(sub, "name", None) or f"{resource.title()} {event}",
            "status": "active",
            "topic": sub.topic,
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{resource}_{event}"],
            "delivery_url": sub.address,
            **{
                k: v
                for k, v in (
                    ("date_created", render.wc_date(now, self.emu.tz)),
                    ("date_created_gmt", render.wc_date(now, dt.timezone.utc)),
                    ("date_modified", render.wc_date(now, self.emu.tz)),
                    ("date_modified_gmt", render.wc_date(now, dt.timezone.utc)),
                )
            },
            "_links": {
                "self": [{"href": f"{self.emu.home()}{PREFIX}webhooks/{sub.id}"}],
                "collection": [{"href": f"{self.emu.home()}{PREFIX}webhooks"}],
            },
        }

    def collection(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET /webhooks``."""
        with self.emu.state.lock:
            subs = list(self.emu.state.webhooks)
        return self.emu.rest.page(request, subs, self._webhook_json)

    def create(self, request: Request, params: Mapping[str, str]) -> Response:
        """``POST /webhooks``: a valid topic and delivery URL, then the ping."""
        state = self.emu.state
        try:
            data = request.json() or {}
        except ValueError:
            return error("rest_invalid_json", "Invalid JSON body passed.", 400)
        topic = str(data.get("topic") or "")
        if topic not in _VALID_TOPICS:
            return error(
                "woocommerce_rest_webhook_invalid_topic",
                "Webhook topic is required and must be valid.",
                400,
            )
        address = str(data.get("delivery_url") or "")
        if not address.startswith(("http://", "https://")):
            return error(
                "woocommerce_rest_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
                400,
            )
        secret = str(data.get("secret") or "") or secrets.token_urlsafe(36)
        sub = Subscription(state.new_id("webhooks"), topic, address, secret)
        with state.lock:
            state.webhooks.append(sub)
        self._ping(sub)
        return Response.json(self._webhook_json(sub), status=201)

    def one(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET /webhooks/<id>``."""
        return self._one(params["id"], delete=False)

    def delete(self, request: Request, params: Mapping[str, str]) -> Response:
        """``DELETE /webhooks/<id>``: answers the webhook as it was."""
        return self._one(params["id"], delete=True)

    def _one(self, webhook_id: str, *, delete: bool) -> Response:
        state = self.emu.state
        with state.lock:
            found = [s for s in state.webhooks if s.id == webhook_id]
            if found and delete:
                state.webhooks.remove(found[0])
        if not found:
            return self.emu.rest.not_found("webhooks")
        return Response.json(self._webhook_json(found[0]))

    def _ping(self, sub: Subscription) -> None:
        """``WC_Webhook::deliver_ping()``: a form body ``webhook_id=<id>``, in the background."""
        body = f"webhook_id={sub.id}".encode()

        def post() -> None:
            req = urllib.request.Request(
                sub.address,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": f"WordPress/{WP_VERSION}; {self.emu.site()}",
                },
            )
            status: int | None
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(req, timeout=10) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            self.emu.pings.append((sub.id, status))
            with self.emu.state.lock:
                self.emu.state.deliveries.append(DeliveryAttempt(sub.id, f"ping-{sub.id}", status))

        threading.Thread(target=post, name=f"wc-webhook-ping-{sub.id}", daemon=True).start()
