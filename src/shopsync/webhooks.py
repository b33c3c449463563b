"""Webhook intake: verify, de-duplicate, and apply through the same upsert path as sync.

Platforms deliver at least once and in no particular order. So a delivery is applied only
if its id was not applied before (the id is recorded in the same transaction as the
changes), and an older version of a record never overwrites a newer one (the store's
``updated_at`` guard). Webhooks are hints: a periodic incremental sync remains the
reconciliation that catches what a lost delivery missed.

Limits: bodies over :data:`MAX_BODY` bytes are refused before any parsing. Deliveries for
a shop the store does not know (never synced) are refused unless the shop is passed in
``shops``.

Replays: both platforms sign the body only, so topic, shop, delivery id and trigger time can
be changed on a captured delivery. Each adapter checks that the body fits its topic and names
the delivery's shop (``shopsync_shopify._shapes``, ``shopsync_woocommerce._shapes``); here,
for every platform, a deletion is never dated after its receipt, and a shop removal is
refused while the shop shows signs of life (see :data:`ACTIVE_WINDOW`). A deletion body is
only an id and cannot be bound to its resource: what it wrongly keeps out is let back in with
``shopsync tombstones lift`` and a full sync.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shopsync.adapter import WebhookEvent, adapter_class, capability, check_capabilities
from shopsync.errors import ConfigurationError, SignatureError, StoreError, WebhookError
from shopsync.models import Customer, Order, Product
from shopsync.store import Store, UpsertResult
from shopsync.store.changes import mark_changed
from shopsync.store.errors import DatabaseError

__all__ = ["ACTIVE_WINDOW", "MAX_BODY", "WebhookResult", "handle", "wsgi_app"]

log = logging.getLogger("shopsync.webhooks")

MAX_BODY = 2 * 1024 * 1024
"""Largest delivery accepted, in bytes. Shopify's and WooCommerce's order payloads are tens
of kilobytes; an order with hundreds of lines stays well under this."""

ACTIVE_WINDOW = dt.timedelta(hours=24)
"""A shop that synced or delivered a webhook this recently is installed, so a shop removal
for it is a replay. Shopify sends ``shop/redact`` 48 hours after the uninstall, and an
uninstalled app neither syncs (its token is revoked) nor receives the shop's webhooks
(https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance#shop-redact); the
window leaves a day of margin on each side."""

_KINDS: dict[str, type[Customer | Order | Product]] = {
    "customers": Customer,
    "orders": Order,
    "products": Product,
}


@dataclass(frozen=True)
class WebhookResult:
    """What :func:`handle` did with a delivery."""

    status: Literal["applied", "duplicate", "ping"]
    topic: str
    shop: str
    delivery_id: str | None
    upserted: UpsertResult = field(default_factory=UpsertResult)
    quarantined: int = 0
    deleted: int = 0
    export: dict[str, Any] | None = None
    """For a data request: everything the store holds about the customer."""
    customer_ids: tuple[str, ...] = ()
    """Customers whose data changed: the ones to re-plan."""


_Parse = Callable[[Mapping[str, str], bytes, str], WebhookEvent]


def _parser(platform: str) -> _Parse:
    """The platform's webhook parser: its adapter is found through the installed entry
    points, which takes milliseconds (:func:`wsgi_app` keeps what it found)."""
    cls = adapter_class(platform)
    parser = capability(cls, "webhooks")
    if parser is None:
        raise ConfigurationError(
            f"adapter {platform!r} does not take webhooks (it declares no "
            "shopsync.adapter.WebhookParser)"
        )
    check_capabilities(cls, platform, only="webhooks")
    return parser.parse_webhook


def handle(
    platform: str,
    headers: Mapping[str, str],
    raw_body: bytes,
    store: Store,
    secret: str,
    *,
    shops: Collection[str] | None = None,
    max_body: int = MAX_BODY,
    now: dt.datetime | None = None,
) -> WebhookResult:
    """Verify one delivery and apply it to ``store``.

    Raises :class:`~shopsync.errors.SignatureError` for a missing or wrong signature and
    :class:`~shopsync.errors.WebhookError` for anything else that must not be applied (too
    large, not JSON, unknown shop, a body that does not fit its topic or shop, the removal
    of a shop still active); nothing is stored in either case. ``now`` is the receipt time
    (default: the clock).
    """
    parse = _parser(platform)
    return _handle(parse, platform, headers, raw_body, store, secret, shops, max_body, now)


def _handle(
    parse: _Parse,
    platform: str,
    headers: Mapping[str, str],
    raw_body: bytes,
    store: Store,
    secret: str,
    shops: Collection[str] | None,
    max_body: int,
    now: dt.datetime | None,
) -> WebhookResult:
    """:func:`handle` with the platform's parser found (:func:`wsgi_app` finds it once)."""
    received = now or dt.datetime.now(dt.timezone.utc)
    if len(raw_body) > max_body:
        raise WebhookError(f"delivery of {len(raw_body)} bytes exceeds the {max_body}-byte limit")
    lowered = {k.lower(): v for k, v in headers.items()}
    event = parse(lowered, raw_body, secret)
    allowed = shops if shops is not None else {s for p, s in store.shops() if p == platform}
    if event.shop not in allowed:
        raise WebhookError(f"delivery for a shop this store does not serve: {event.shop!r}")
    if event.ping:
        return WebhookResult("ping", event.topic, event.shop, event.delivery_id)
    if event.redact_shop:
        _refuse_if_active(store, platform, event.shop, received)
    # A trigger time is an unsigned header: a deletion is never dated after its receipt.
    event = dataclasses.replace(
        event,
        deleted=[
            dataclasses.replace(d, deleted_at=min(d.deleted_at, received)) for d in event.deleted
        ],
        deleted_checkouts=[(cid, min(at, received)) for cid, at in event.deleted_checkouts],
        completed_checkouts=[(cid, min(at, received)) for cid, at in event.completed_checkouts],
    )
    with store.transaction() as tx:
        # A data request writes nothing: it is answered again when the platform retries.
        read_only = event.data_request_customer is not None and not event.records
        if (
            not read_only
            and event.delivery_id is not None
            and not store.record_delivery(
                platform, event.shop, event.delivery_id, event.topic, conn=tx
            )
        ):
            log.info("duplicate delivery %s (%s) ignored", event.delivery_id, event.topic)
            return WebhookResult("duplicate", event.topic, event.shop, event.delivery_id)
        upserted = store.upsert(event.records, conn=tx, same_stamp=False)
        if event.checkouts:  # issue 22
            from shopsync.store.checkout_rows import upsert_checkouts

            upsert_checkouts(store, event.checkouts, conn=tx)
        if event.completed_checkouts:  # issue 22: an order names the checkout it came from
            from shopsync.store.checkout_rows import complete_checkouts

            complete_checkouts(store, tx, platform, event.shop, event.completed_checkouts)
        store.apply_customer_changes(
            platform, event.shop, event.customer_changes, conn=tx, now=received
        )
        quarantined = store.quarantine(platform, event.shop, event.rejected, conn=tx)
        deleted = sum(
            store.delete(
                _KINDS[d.resource],
                platform,
                event.shop,
                d.record_id,
                conn=tx,
                deleted_at=d.deleted_at,
            )
            for d in event.deleted
        )
        if event.deleted_checkouts:  # issue 22
            from shopsync.store.checkout_rows import delete_checkout

            for checkout_id, at in event.deleted_checkouts:
                deleted += delete_checkout(store, tx, platform, event.shop, checkout_id, at)
        if not event.redact_shop:  # noted with the change itself: a worker re-plans them
            # (the writes above noted what they changed; a delivery also names customers whose
            # change its payload may not carry, e.g. Shopify's customer topics without tags)
            touched = _customers_touched(event) - {event.redact_customer}
            mark_changed(store, tx, platform, event.shop, touched, dt.datetime.now(dt.timezone.utc))
        if event.redact_customer is not None:
            store.redact_customer(
                platform,
                event.shop,
                event.redact_customer,
                conn=tx,
                order_ids=event.redact_orders,
                contacts=event.redact_contacts,
            )
        if event.redact_shop:
            store.remove_shop(platform, event.shop, conn=tx)
    export = None
    if event.data_request_customer is not None:
        export = store.export_customer(
            platform,
            event.shop,
            event.data_request_customer,
            order_ids=event.data_request_orders,
        )
    return WebhookResult(
        "applied",
        event.topic,
        event.shop,
        event.delivery_id,
        upserted=upserted,
        quarantined=quarantined,
        deleted=deleted,
        export=export,
        customer_ids=tuple(sorted(_customers_touched(event))),
    )


def _refuse_if_active(store: Store, platform: str, shop: str, received: dt.datetime) -> None:
    last = store.last_activity(platform, shop)
    if last is not None and received - last < ACTIVE_WINDOW:
        raise WebhookError(
            f"shop removal for {shop!r} refused: the shop was active at {last:%Y-%m-%d %H:%M} "
            "UTC (a sync or a delivery), so it is still installed and this is a replay; a "
            "genuine one arrives 48 hours after the uninstall"
        )


def _customers_touched(event: WebhookEvent) -> set[str]:
    touched = {change.customer_id for change in event.customer_changes}
    for record in event.records:
        if isinstance(record, Customer):
            touched.add(record.id)
        elif isinstance(record, Order) and record.customer_id:
            touched.add(record.customer_id)
    return touched


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wsgi_app(
    store: Store,
    secrets: Mapping[str, str],
    *,
    shops: Collection[str] | None = None,
    max_body: int = MAX_BODY,
    on_result: Callable[[WebhookResult], None] | None = None,
) -> WSGIApp:
    """A WSGI app that takes deliveries at ``POST .../<platform>`` (e.g. ``/webhooks/shopify``).

    ``secrets`` maps a platform name to its signing secret (Shopify: the app's client
    secret; WooCommerce: the webhook's secret). Mount it in Flask, Django or any WSGI server.
    Answers: 200 applied/duplicate/ping, 401 bad signature (what Shopify requires for the
    GDPR topics), 413 too large, 400 anything else refused, 404 unknown platform, 405 not POST.
    ``on_result`` is called after a delivery is applied (re-plan the customers it touched,
    answer a data request).
    """

    parsers: dict[str, _Parse] = {}  # each platform's, found on its first delivery

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def answer(
            status: str, body: dict[str, Any], extra: tuple[tuple[str, str], ...] = ()
        ) -> list[bytes]:
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

        platform = environ.get("PATH_INFO", "").rstrip("/").rsplit("/", 1)[-1]
        if platform not in secrets:
            return answer("404 Not Found", {"error": "unknown webhook endpoint"})
        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return answer("400 Bad Request", {"error": "bad Content-Length"})
        if length < 0:
            return answer("400 Bad Request", {"error": "bad Content-Length"})
        if length > max_body:
            return answer("413 Payload Too Large", {"error": f"limit is {max_body} bytes"})
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        parse = parsers.get(platform)
        if parse is None:
            parse = parsers[platform] = _parser(platform)
        try:
            result = _handle(
                parse, platform, headers, body, store, secrets[platform], shops, max_body, None
            )
        except SignatureError as exc:
            log.warning("%s webhook refused: %s", platform, exc)
            return answer("401 Unauthorized", {"error": "invalid signature"})
        except WebhookError as exc:
            log.warning("%s webhook refused: %s", platform, exc)
            return answer("400 Bad Request", {"error": str(exc)})
        except (StoreError, DatabaseError) as exc:
            # Nothing was applied (the transaction rolled back): the platform retries a 503.
            log.warning("%s webhook not applied, store error: %s", platform, exc)
            return answer(
                "503 Service Unavailable",
                {"error": "store busy or unavailable; retry later"},
                (("Retry-After", "30"),),
            )
        if on_result is not None:
            on_result(result)
        return answer("200 OK", {"status": result.status})

    return app
