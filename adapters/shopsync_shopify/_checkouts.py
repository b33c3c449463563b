"""Shopify abandoned checkouts (issue 22): the query, the mapping, the emulator's rendering.

Read through the GraphQL Admin API's ``abandonedCheckouts`` connection (2024-10+, the
successor of the REST ``checkouts.json``: https://shopify.dev/changelog/new-abandoned-checkouts-listing-endpoint-on-the-admin-graphql-api).
"A checkout is considered abandoned when a customer adds contact information but doesn't
complete their purchase. Includes both abandoned and recovered checkouts"
(https://shopify.dev/docs/api/admin-graphql/latest/queries/abandonedCheckouts); it needs the
``read_orders`` scope and the ``manage_abandoned_checkouts`` staff permission
(https://shopify.dev/docs/api/admin-graphql/latest/objects/AbandonedCheckout).

The connection filters on ``created_at``/``updated_at`` but sorts only by ``CHECKOUT_ID``,
``CREATED_AT``, ``CUSTOMER_NAME``, ``ID``, ``RELEVANCE`` or ``TOTAL_PRICE`` (no
``UPDATED_AT``: https://shopify.dev/docs/api/admin-graphql/latest/enums/AbandonedCheckoutSortKeys),
so an incremental read filters ``updated_at:>=`` and pages by ``ID``; its high-water mark is
known only after the last page. Fields: ``abandonedCheckoutUrl`` (the recovery link),
``completedAt``, ``customer``, ``lineItems`` (``AbandonedCheckoutLineItem``: ``title``,
``quantity``, ``originalUnitPriceSet``, ``product``, ``variant``), ``subtotalPriceSet``,
``totalPriceSet``.

One key for a checkout, whatever told us of it: the path segment of its **recovery link**.
The GraphQL ``AbandonedCheckout`` has an ``id`` (gid), a ``name`` and ``abandonedCheckoutUrl``
but no token field (https://shopify.dev/docs/api/admin-graphql/2026-07/objects/AbandonedCheckout),
so the link is all a sync page and a webhook share. Today's link is
``https://<shop>/<shop number>/checkouts/ac/<cart_token>/recover?key=<hex>``: two published
``checkouts/create`` bodies (2024-11 and 2024-01, public test fixtures of two analytics
connectors) carry a 32-hex ``token``, a distinct base64 ``cart_token``, and that link naming
the cart token. The REST resource's older form, ``/checkouts/<token>/recover``, named the
token (https://shopify.dev/api/admin-rest/2022-10/resources/abandoned-checkouts). A webhook
body without a usable link is keyed by its ``cart_token``, then its ``token``.

The checkout's **token** is kept too, as :attr:`~shopsync.checkouts.Checkout.token_key`:
since API 2026-04 the checkout webhooks carry ``token`` and no ``id``, order bodies
``checkout_token`` (and ``cart_token``) and no ``checkout_id``
(https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks), and a
``checkouts/delete`` body names ``id`` and ``token`` only, so the store finds a checkout by
either key. Both are :func:`checkout_key` digests: the link is a bearer link, and the id
travels into plans, outbox keys and reasons, where neither token may.

The checkout's **number** is kept as well (:attr:`~shopsync.checkouts.Checkout.number`,
plain: it is no secret, nothing opens with it but the shop's own credentials): the number of
the ``AbandonedCheckout`` gid, which is the REST checkout's ``id`` (a gid is
``gid://shopify/{object_name}/{id}``, the REST resource's simple id:
https://shopify.dev/docs/api/usage/gids, https://shopify.dev/docs/api/admin-rest/usage/simple-ids;
the REST ``checkouts.json`` resource has that ``id``:
https://shopify.dev/api/admin-rest/2023-10/resources/abandoned-checkouts). A sync page
has no token, so a ``checkouts/delete`` finds the sync's copy by this ``id`` alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shopsync._instants import instant
from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage
from shopsync.checkouts import Checkout
from shopsync.errors import InvalidRecordError
from shopsync.ingest_columns import OrderRows
from shopsync_shopify._map_common import gid, parse_gid
from shopsync_shopify._render_base import _bag, fmt_amount, fmt_time

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = [
    "CHECKOUTS_PAGE",
    "CHECKOUT_DELETE_TOPIC",
    "CHECKOUT_TOPICS",
    "checkout_delete_rest",
    "checkout_from_graphql",
    "checkout_from_webhook",
    "checkout_graphql",
    "checkout_key",
    "checkout_number",
    "checkout_rest",
    "emulated_token",
    "placed_from",
    "read_checkouts",
    "recovery_segment",
    "webhook_keys",
]

CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})
"""Shopify's checkout webhooks: REST-shaped checkout bodies (``abandoned_checkout_url``,
``completed_at`` once the order is placed, ``customer``, ``line_items`` with ``price``);
https://shopify.dev/docs/api/webhooks (topics ``checkouts/create``, ``checkouts/update``).
There is no "abandoned" event: a checkout is abandoned while ``completed_at`` stays null."""

CHECKOUT_DELETE_TOPIC = "checkouts/delete"
"""A checkout was deleted (``CHECKOUTS_DELETE`` of ``WebhookSubscriptionTopic``,
https://shopify.dev/docs/api/admin-graphql/2026-01/enums/WebhookSubscriptionTopic; scope
``read_orders``). Like Shopify's other deletion topics its body names the record only: here the
checkout's ``id`` and its ``token``, the identifier Shopify's checkout webhooks key on
(https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks). The
``token`` is what binds the body to a checkout: a deletion body of another resource has none,
so one cannot be replayed as the other (``._shapes``). The intake drops the stored checkout
and keeps a tombstone (``shopsync.store.checkout_rows.delete_checkout``)."""

PLATFORM = "shopify"
LINES = 20
"""Lines fetched with each checkout (a checkout with more keeps its first 20: the reminder
names products, it does not rebuild the cart)."""
_MONEY = "shopMoney { amount currencyCode }"

CHECKOUTS_PAGE = f"""query ShopsyncCheckouts($first: Int!, $after: String, $query: String) {{
  abandonedCheckouts(first: $first, after: $after, query: $query, sortKey: ID) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ id abandonedCheckoutUrl createdAt updatedAt completedAt
      customer {{ id email }}
      subtotalPriceSet {{ {_MONEY} }} totalPriceSet {{ {_MONEY} }}
      lineItems(first: {LINES}) {{ nodes {{ title quantity
        product {{ id }} variant {{ id }} originalUnitPriceSet {{ {_MONEY} }} }} }} }}
  }}
}}"""
PAGE_SIZE = 50


_SEGMENT = re.compile(r"/checkouts/(?:ac/)?([A-Za-z0-9_=%-]+)/recover(?:[/?#]|$)")


def checkout_key(token: str) -> str:
    """The stored key of a checkout token or cart token (see the module doc): a digest, so
    the token, part of the recovery link, stays out of plans, outbox keys and logs. A lone
    surrogate (JSON's ``\\ud800`` escape) is hashed as it came, not refused: an order naming
    such a token is still stored, and the same text always gives the same key."""
    return "t" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:39]


def placed_from(tokens: Iterable[object], at: dt.datetime) -> tuple[tuple[str, dt.datetime], ...]:
    """The checkouts an order names (its checkout token and cart token: REST ``checkout_token``
    and ``cart_token``, GraphQL ``checkoutToken`` and ``cartToken``), by key, each completed at
    ``at`` (the order's creation): the store finds a checkout by whichever key it holds."""
    texts = [t.strip() for t in tokens if isinstance(t, str) and t.strip()]
    return tuple((key, at) for key in dict.fromkeys(checkout_key(t) for t in texts))


class CheckoutTap:
    """The checkouts a read's orders were placed from, onto its pages
    (:attr:`~shopsync.adapter.Page.completed_checkouts`): :meth:`mapped` wraps a record or row
    mapper, :meth:`pages` hands each page what the mappers took since the previous one. A
    page's records are all mapped before it is yielded, and none of the next page's."""

    def __init__(self) -> None:
        self._done: list[tuple[str, dt.datetime]] = []

    def mapped(self, mapper: Callable[..., Any]) -> Callable[..., Any]:
        """``mapper`` noting the tokens of each node it maps (None: not mapped by it)."""

        def run(node: Any, *more: Any) -> Any:
            named = type(node) is dict
            tokens = (node.get("checkoutToken"), node.get("cartToken")) if named else ()
            out = mapper(node, *more)
            if out is not None and any(tokens):
                self._done += placed_from(tokens, _created(out))
            return out

        return run

    def pages(self, pages: Iterable[Page[Any]]) -> Iterator[Page[Any]]:
        for page in pages:
            done, self._done = tuple(self._done), []
            yield dataclasses.replace(page, completed_checkouts=done) if done else page


def _created(mapped: Any) -> dt.datetime:
    """When a mapped order (a model, or its store rows) was placed."""
    if isinstance(mapped, OrderRows):
        return instant(mapped.tables["orders"][0]["created_at"])
    return mapped.created_at  # type: ignore[no-any-return]


def recovery_segment(url: object) -> str | None:
    """The token a recovery URL's path names (None if it names none): the cart token in
    today's ``/checkouts/ac/<cart_token>/recover``, the token in the older
    ``/checkouts/<token>/recover``. Percent escapes are undone (a padded base64 cart token
    may come as ``%3D``), so the link and a body's ``cart_token`` give one key."""
    found = _SEGMENT.search(url) if isinstance(url, str) else None
    return urllib.parse.unquote(found.group(1)) if found else None


def checkout_number(value: object) -> str | None:
    """A checkout's number from a REST ``id`` (an integer or its digits) or an
    ``AbandonedCheckout`` gid; None for anything else (a gid of another type names another
    record, so it can delete no checkout)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("gid://shopify/AbandonedCheckout/"):
        text = text.rsplit("/", 1)[-1].split("?", 1)[0]
    return text if text.isascii() and text.isdigit() and text.strip("0") else None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def webhook_keys(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A checkout body's stored id and token key (:func:`checkout_key` digests; None where
    the body names neither): the id from its recovery link's segment, else its
    ``cart_token``, else its ``token``; the token key from its ``token``."""
    token = _text(payload.get("token"))
    source = (
        recovery_segment(payload.get("abandoned_checkout_url"))
        or _text(payload.get("cart_token"))
        or token
    )
    return (
        checkout_key(source) if source is not None else None,
        checkout_key(token) if token is not None else None,
    )


def _money(bag: Mapping[str, Any] | None) -> dict[str, Any]:
    shop = (bag or {}).get("shopMoney") or {}
    return {"amount": shop.get("amount"), "currency": shop.get("currencyCode")}


def checkout_from_graphql(node: Mapping[str, Any], *, shop: str) -> Checkout:
    """One ``AbandonedCheckout`` node as a :class:`~shopsync.checkouts.Checkout`; raises
    :class:`InvalidRecordError` naming what is wrong."""
    try:
        total = _money(node.get("totalPriceSet"))
        segment = recovery_segment(node.get("abandonedCheckoutUrl"))
        if segment is None:
            raise ValueError("abandonedCheckoutUrl names no checkout")
        customer = node.get("customer") or {}
        lines = []
        for line in (node.get("lineItems") or {}).get("nodes") or []:
            product = (line.get("product") or {}).get("id")
            variant = (line.get("variant") or {}).get("id")
            lines.append(
                {
                    "product_id": parse_gid(product) if product else None,
                    "variant_id": parse_gid(variant) if variant else None,
                    "title": line.get("title") or "",
                    "quantity": line.get("quantity"),
                    "unit_price": _money(line.get("originalUnitPriceSet")),
                }
            )
        return Checkout.model_validate(
            {
                "platform": PLATFORM,
                "shop": shop,
                "id": checkout_key(segment),
                "number": checkout_number(node.get("id")),
                "customer_id": parse_gid(customer["id"]) if customer.get("id") else None,
                "email": customer.get("email"),
                "created_at": node.get("createdAt"),
                "updated_at": node.get("updatedAt"),
                "completed_at": node.get("completedAt"),
                "recovery_url": node.get("abandonedCheckoutUrl"),
                "currency": total["currency"],
                "subtotal": _money(node.get("subtotalPriceSet")),
                "total": total,
                "line_items": lines,
            }
        )
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
        # the recovery URL is a bearer link: the reason names fields, never values
        fields = ", ".join(
            ".".join(str(p) for p in e["loc"]) for e in getattr(exc, "errors", list)()
        )
        if not fields and isinstance(exc, ValueError) and "abandonedCheckoutUrl" in str(exc):
            fields = str(exc)
        raise InvalidRecordError(
            f"abandoned checkout {node.get('id')!r} is invalid: {fields or type(exc).__name__}"
        ) from None


def checkout_from_webhook(payload: Mapping[str, Any], *, shop: str) -> Checkout:
    """A ``checkouts/create``/``update`` body as a checkout (REST field names), keyed as a
    sync page keys it (:func:`webhook_keys`; the body has no ``id`` since 2026-04)."""
    key, token_key = webhook_keys(payload)
    if key is None:
        raise InvalidRecordError(
            "checkout body has no abandoned_checkout_url, cart_token or token:"
            " it cannot be matched to a checkout"
        )
    cur = payload.get("currency") or payload.get("presentment_currency")
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    assert isinstance(customer, dict)
    lines = payload.get("line_items") if isinstance(payload.get("line_items"), list) else []
    assert isinstance(lines, list)
    try:
        return Checkout.model_validate(
            {
                "platform": PLATFORM,
                "shop": shop,
                "id": key,
                "token_key": token_key,
                "customer_id": customer.get("id") or None,
                "email": payload.get("email") or customer.get("email"),
                "created_at": payload.get("created_at"),
                "updated_at": payload.get("updated_at"),
                "completed_at": payload.get("completed_at"),
                "recovery_url": payload.get("abandoned_checkout_url"),
                "currency": cur,
                "subtotal": {"amount": payload.get("subtotal_price"), "currency": cur},
                "total": {"amount": payload.get("total_price"), "currency": cur},
                "line_items": [
                    {
                        "product_id": line.get("product_id") or None,
                        "variant_id": line.get("variant_id") or None,
                        "title": line.get("title") or "",
                        "quantity": line.get("quantity"),
                        "unit_price": {"amount": line.get("price"), "currency": cur},
                    }
                    for line in lines
                    if isinstance(line, dict)
                ],
            }
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidRecordError(f"checkout {key!r} is invalid: {fields}") from None


def checkout_rest(checkout: Checkout) -> dict[str, Any]:
    """The REST body of a checkout webhook, as the emulator posts it: ``token``,
    ``cart_token`` (the one its recovery URL names) and the URL, no ``id`` (removed in
    2026-04: see the module doc)."""
    amount = fmt_amount
    return {
        "token": emulated_token(checkout),
        "cart_token": recovery_segment(checkout.recovery_url),
        "email": checkout.email,
        "created_at": fmt_time(checkout.created_at, rest=True),
        "updated_at": fmt_time(checkout.updated_at, rest=True),
        "completed_at": fmt_time(checkout.completed_at, rest=True),
        "abandoned_checkout_url": checkout.recovery_url,
        "currency": checkout.currency,
        "presentment_currency": checkout.currency,
        "subtotal_price": amount(checkout.subtotal),
        "total_price": amount(checkout.total),
        "customer": {"id": int(checkout.customer_id), "email": checkout.email}
        if checkout.customer_id and checkout.customer_id.isdigit()
        else None,
        "line_items": [
            {
                "product_id": int(line.product_id) if line.product_id else None,
                "variant_id": int(line.variant_id) if line.variant_id else None,
                "title": line.title,
                "quantity": int(line.quantity),
                "price": amount(line.unit_price),
            }
            for line in checkout.line_items
        ],
    }


def checkout_delete_rest(checkout: Checkout) -> dict[str, Any]:
    """The body of a ``checkouts/delete`` webhook, as the emulator posts it: the checkout's
    ``id`` and ``token`` (the changelog above removed ``id`` from create/update only). The
    ``id`` is the number of the node's gid (:func:`checkout_graphql`), as Shopify's is."""
    return {
        "id": int(checkout.id) if checkout.id.isdigit() else checkout.id,
        "token": emulated_token(checkout),
    }


def emulated_token(checkout: Checkout) -> str:
    """The token of an emulated checkout: 32 hex digits, as in the published bodies (see the
    module doc), fixed by its shop and id (the emulator holds checkouts under their GraphQL
    id, as Shopify numbers them). Its recovery URL names its cart token, not this."""
    return hashlib.sha256(f"{checkout.shop}/checkouts/{checkout.id}".encode()).hexdigest()[:32]


def read_checkouts(adapter: Any, updated_since: dt.datetime | None) -> Iterator[Page[Checkout]]:
    """The shop's abandoned checkouts updated at or after ``updated_since`` (all of them
    without), page by page through ``adapter.graphql``."""
    search = None
    if updated_since is not None:
        since = updated_since.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        search = f"updated_at:>='{since}'"
    shop = adapter.shop

    def raw_pages() -> Iterator[RawPage]:
        after: str | None = None
        while True:
            result = adapter.graphql(
                CHECKOUTS_PAGE, {"first": PAGE_SIZE, "after": after, "query": search}
            )
            connection = result["data"]["abandonedCheckouts"]
            info = connection["pageInfo"]
            after = info.get("endCursor") or after
            yield RawPage(connection["nodes"], cursor=after, last=not info.get("hasNextPage"))

    loop: PageLoop[Checkout] = PageLoop(
        "checkouts",
        lambda node: checkout_from_graphql(node, shop=shop),
        record_id=lambda node: str(node.get("id")) if isinstance(node, dict) else None,  # the gid
        ordered=False,
    )
    return loop.run(raw_pages())


# -- the emulator's rendering ---------------------------------------------------------------


def checkout_graphql(checkout: Checkout, state: ShopState | None = None) -> dict[str, Any]:
    """An ``AbandonedCheckout`` node as Shopify renders it (whole-second timestamps come
    from the state's clock; the recovery URL has today's ``/checkouts/ac/<cart_token>/recover``
    form, as the model holds it). Like Shopify's it has an ``id``, a ``name`` and no token
    field (https://shopify.dev/docs/api/admin-graphql/2026-07/objects/AbandonedCheckout)."""
    cur = checkout.currency
    customer = None
    if checkout.customer_id is not None:
        customer = {
            "__typename": "Customer",
            "id": gid("Customer", checkout.customer_id),
            "email": checkout.email,
        }
    return {
        "__typename": "AbandonedCheckout",
        "id": gid("AbandonedCheckout", checkout.id),
        "name": f"#{checkout.id}",
        "abandonedCheckoutUrl": checkout.recovery_url,
        "createdAt": fmt_time(checkout.created_at),
        "updatedAt": fmt_time(checkout.updated_at),
        "completedAt": fmt_time(checkout.completed_at),
        "customer": customer,
        "subtotalPriceSet": _bag(checkout.subtotal, cur),
        "totalPriceSet": _bag(checkout.total, cur),
        "lineItems": [
            {
                "__typename": "AbandonedCheckoutLineItem",
                "id": gid("AbandonedCheckoutLineItem", f"{checkout.id}{i:03d}"),
                "title": line.title,
                "quantity": int(line.quantity),
                "product": {"__typename": "Product", "id": gid("Product", line.product_id)}
                if line.product_id
                else None,
                "variant": {
                    "__typename": "ProductVariant",
                    "id": gid("ProductVariant", line.variant_id),
                }
                if line.variant_id
                else None,
                "originalUnitPriceSet": _bag(line.unit_price, cur),
            }
            for i, line in enumerate(checkout.line_items)
        ],
    }
