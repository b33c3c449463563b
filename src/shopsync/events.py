"""The signed browse-event endpoint (issue 22): storefront events in, browse reminders out.

Shopify's web pixels emit standard events (https://shopify.dev/docs/api/web-pixels-api/standard-events):
``product_viewed`` (``data.productVariant.product.id``), ``product_added_to_cart``
(``data.cartLine.merchandise.product.id``) and ``checkout_started``
(``data.checkout.lineItems[].variant.product.id``), each with ``id``, ``name``,
``timestamp`` and ``clientId``. A shop's relay (its pixel's server side, or the WordPress
snippet of docs/programs.md for WooCommerce) posts them here in one JSON body::

    {"shop": "acme.myshopify.com", "customer_id": "123" | null,
     "events": [{"id": "...", "name": "product_viewed", "timestamp": "...",
                 "clientId": "...", "data": {...}}]}

signed like Shopify's webhooks: ``X-Shopsync-Signature`` is the base64 HMAC-SHA256 of the raw
body under the shop's event secret (kept on the relay, never in a browser).

Answers: 200 with counts; 401 a missing or wrong signature; 404 a shop this store does not
serve (or without a secret); 413 a body over :data:`MAX_BODY`; 400 anything malformed; 429
when every event of the request was over the visitor's cap (``per_visitor`` events per
``window``), with ``Retry-After``. Events of a visitor nobody identified are kept (caps,
figures) and never messaged: the program reads identified customers only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shopsync.store import Store
from shopsync.store.event_rows import EventRow, Recorded, UnknownShop, record_events

__all__ = ["KINDS", "MAX_BODY", "EventError", "events_app", "parse_events", "sign"]

KINDS = ("product_viewed", "product_added_to_cart", "checkout_started")
MAX_BODY = 64 * 1024
MAX_EVENTS = 50
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class EventError(ValueError):
    """A body the endpoint refuses (400)."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Shopsync-Signature`` of ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _id(value: Any) -> str | None:
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip():
        text = str(value).strip()
        return text.rsplit("/", 1)[-1] if text.startswith("gid://") else text
    return None


def _products(name: str, data: Mapping[str, Any]) -> list[str | None]:
    def dig(obj: Any, *path: str) -> Any:
        for key in path:
            obj = obj.get(key) if isinstance(obj, dict) else None
        return obj

    if name == "product_viewed":
        return [_id(dig(data, "productVariant", "product", "id"))]
    if name == "product_added_to_cart":
        return [_id(dig(data, "cartLine", "merchandise", "product", "id"))]
    lines = dig(data, "checkout", "lineItems")
    found = [_id(dig(line, "variant", "product", "id")) for line in lines or []]
    return found or [None]


def parse_events(body: Mapping[str, Any], received: dt.datetime) -> tuple[str, list[EventRow]]:
    """The shop and the events of a verified body (raises :class:`EventError`)."""
    shop = body.get("shop")
    if not isinstance(shop, str) or not shop.strip():
        raise EventError("no shop")
    customer = _id(body.get("customer_id"))
    raw = body.get("events")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_EVENTS:
        raise EventError(f"events must be a list of 1 to {MAX_EVENTS}")
    rows: list[EventRow] = []
    for event in raw:
        if not isinstance(event, dict):
            raise EventError("an event is not an object")
        name, eid, visitor = event.get("name"), _id(event.get("id")), _id(event.get("clientId"))
        if name not in KINDS or eid is None or visitor is None:
            raise EventError(f"event needs a known name ({', '.join(KINDS)}), an id and a clientId")
        try:
            at = dt.datetime.fromisoformat(str(event.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            raise EventError(f"event {eid}: timestamp is not ISO 8601") from None
        if at.tzinfo is None:
            raise EventError(f"event {eid}: timestamp has no offset")
        at = min(at.astimezone(dt.timezone.utc), received)  # a client clock ahead is capped
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        for n, product in enumerate(_products(str(name), data or {})):
            key = eid if n == 0 else f"{eid}:{n}"
            rows.append(EventRow(key[:255], visitor[:255], customer, str(name), product, at))
    return shop.strip(), rows


def events_app(
    store: Store,
    secrets: Mapping[str, str],
    *,
    platform: str,
    per_visitor: int = 120,
    window: dt.timedelta = dt.timedelta(hours=1),
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> WSGIApp:
    """A WSGI app taking ``POST`` event bodies of ``platform``'s shops; ``secrets`` maps each
    shop to its event secret (see the module docstring)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def answer(status: str, body: dict[str, Any], *extra: tuple[str, str]) -> list[bytes]:
            payload = json.dumps(body).encode()
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    *extra,
                ],
            )
            return [payload]

        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return answer("413 Payload Too Large", {"error": f"at most {MAX_BODY} bytes"})
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return answer("400 Bad Request", {"error": "not JSON"})
        named = body.get("shop") if isinstance(body, dict) else None
        secret = secrets.get(named) if isinstance(named, str) else None
        if secret is None:
            return answer("404 Not Found", {"error": "unknown shop"})
        given = environ.get("HTTP_X_SHOPSYNC_SIGNATURE", "")
        if not hmac.compare_digest(given.encode(), sign(secret, raw).encode()):
            return answer("401 Unauthorized", {"error": "signature missing or wrong"})
        received = clock()
        try:
            shop, rows = parse_events(body, received)
            done: Recorded = record_events(
                store, platform, shop, rows, received_at=received, cap=per_visitor, window=window
            )
        except EventError as exc:
            return answer("400 Bad Request", {"error": str(exc)})
        except UnknownShop:
            return answer("404 Not Found", {"error": "unknown shop"})
        counts = {"stored": done.stored, "duplicates": done.duplicates, "capped": done.capped}
        if done.capped and not done.stored and not done.duplicates:
            seconds = str(int(window.total_seconds()))
            return answer("429 Too Many Requests", counts, ("Retry-After", seconds))
        return answer("200 OK", counts)

    return app
