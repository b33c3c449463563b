"""An emulated Shopify shop: GraphQL Admin API, a REST subset, bulk operations, OAuth and
webhooks, rendered from a :class:`~shopsync.testing.state.ShopState`.

It enforces what decides a client's design on the real platform, with the real numbers:

- GraphQL cost: requested cost computed from the query before it runs (Shopify's rules, see
  :mod:`._graphql`), a per-shop leaky bucket (standard plan 2000 points, 100/s restore by
  default), the difference to the actual cost refunded, ``extensions.cost.throttleStatus``
  on every answer, ``THROTTLED`` as HTTP 200 with ``actualQueryCost: null`` when the bucket
  cannot hold the request, ``MAX_COST_EXCEEDED`` above 1000 points;
- cursor pagination with ``first``/``after`` (max 250), ``query: "updated_at:>'…'"`` filters
  and ``sortKey: UPDATED_AT`` tie-broken by id, so equal timestamps page stably;
- bulk operations: ``bulkOperationRunQuery``, up to five at once from 2026-01, polled
  through ``node(id:)`` or ``currentBulkOperation``, a JSONL result (children on their own
  lines with ``__parentId``, ungrouped and shuffled from 2026-01, ``/`` escaped as Shopify
  writes it) served from an expiring signed URL, ``partialDataUrl`` on failure and the
  ``bulk_operations/finish`` webhook (see :mod:`._emu_bulk`);
- REST: ``shop.json``, ``customers.json``, ``orders.json``, ``products.json`` with
  ``Link``-header cursor pagination exactly as ShopifyAPI parses it, the 40-call/2-per-second
  bucket, ``X-Shopify-Shop-Api-Call-Limit`` and 429 with ``Retry-After``;
- ``X-Shopify-Access-Token`` on every Admin API call (401 otherwise), and the OAuth install
  flow (``/admin/oauth/authorize`` redirects with a signed callback,
  ``/admin/oauth/access_token`` exchanges the code).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import operator
import re
import secrets
import threading
import time
import uuid
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, get_named_type

from shopsync.testing.server import Request, Response
from shopsync.testing.webhooks import Delivery
from shopsync_shopify import _emu_bulk as bulk_emu
from shopsync_shopify import _render as render
from shopsync_shopify._emu_edits import order_edited_rest
from shopsync_shopify._emu_events import deletion_events
from shopsync_shopify._emu_topics import FACT_TOPICS, WEBHOOK_DROPPED, CustomerFacts
from shopsync_shopify._emu_variety import add_variety
from shopsync_shopify._graphql import Connection, Executor, QueryError
from shopsync_shopify.mapping import gid, parse_gid
from shopsync_shopify.versions import API_VERSION
from shopsync_shopify.webhooks import sign

if TYPE_CHECKING:
    from shopsync.testing.state import Event, ShopState, Subscription

__all__ = ["DEFAULT_API_VERSION", "PLANS", "ShopifyEmulator"]

DEFAULT_API_VERSION = API_VERSION
PLANS: dict[str, tuple[float, float]] = {
    "legacy": (1000.0, 50.0),
    "standard": (2000.0, 100.0),
    "advanced": (4000.0, 200.0),
    "plus": (20000.0, 1000.0),
}
"""GraphQL bucket size and restore rate (points, points/s) per plan."""
MAX_QUERY_COST = 1000
MAX_PAGE = 250
ORDER_WINDOW = dt.timedelta(days=60)
"""What an app without ``read_all_orders`` sees of a shop's orders."""
RATE_DOC = "https://shopify.dev/api/usage/rate-limits"
_REST_LIMIT_MESSAGE = (
    "Exceeded 2 calls per second for api client. "
    "Reduce request rates to resume uninterrupted service."
)
_BAD_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"

_API_PATH = re.compile(r"^/admin/api/(?P<version>[^/]+)/(?P<rest>.+)$")
_BULK_PATH = re.compile(r"^/_emulator/bulk/(?P<id>\d+)(?P<partial>\.partial)?\.jsonl$")
_SEARCH_TERM = re.compile(r"""(\w+):(>=|<=|>|<|=)?('[^']*'|"[^"]*"|\S+)""")
_ROOTS = {
    "customers": ("customers", "Customer"),
    "orders": ("orders", "Order"),
    "products": ("products", "Product"),
}
_SORTS = {"ID": "id", "UPDATED_AT": "updated_at", "CREATED_AT": "created_at"}

_TOPICS: dict[str, tuple[str, ...]] = {
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
}
"""Neutral event -> the Shopify topics it fires (an update fires ``orders/updated`` too)."""


class LeakyBucket:
    """Shopify's leaky bucket: ``available`` refills at ``rate`` per second up to ``size``."""

    def __init__(self, size: float, rate: float, clock: Callable[[], float]) -> None:
        self.size, self.rate, self.clock = size, rate, clock
        self._available = size
        self._at = clock()
        self.lock = threading.Lock()

    def available(self) -> float:
        now = self.clock()
        self._available = min(self.size, self._available + (now - self._at) * self.rate)
        self._at = now
        return self._available

    def take(self, amount: float) -> None:
        self.available()
        self._available -= amount

    def give(self, amount: float) -> None:
        self.available()
        self._available = min(self.size, self._available + amount)


@dataclass
class BulkOperation:
    id: str
    query: str
    resource: str
    created_at: dt.datetime
    status: str = "CREATED"
    completed_at: dt.datetime | None = None
    object_count: int = 0
    root_count: int = 0
    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    grouped: bool = False
    partial: bytes | None = field(default=None, repr=False)
    """What a FAILED operation wrote before failing (served at ``partialDataUrl``)."""

    def render(self, url: str | None = None, partial_url: str | None = None) -> dict[str, Any]:
        return {
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", self.id),
            "status": self.status,
            "errorCode": "INTERNAL_SERVER_ERROR" if self.status == "FAILED" else None,
            "createdAt": render.fmt_time(self.created_at),
            "completedAt": render.fmt_time(self.completed_at),
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_count),
            "fileSize": str(len(self.data)) if self.data is not None else None,
            "url": url,
            "partialDataUrl": partial_url,
            "query": self.query,
            "type": "QUERY",
        }


@dataclass
class DiscountCode:
    """A basic code discount as created through the Admin API."""

    id: str
    code: str
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    customer_ids: tuple[str, ...]
    amount: str | None
    usage_limit: int | None
    once_per_customer: bool
    usage_count: int = 0

    def render(self, now: dt.datetime) -> dict[str, Any]:
        if self.ends_at is not None and self.ends_at <= now:
            status = "EXPIRED"
        elif self.starts_at > now:
            status = "SCHEDULED"
        else:
            status = "ACTIVE"
        return {
            "__typename": "DiscountCodeNode",
            "id": gid("DiscountCodeNode", self.id),
            "codeDiscount": {
                "__typename": "DiscountCodeBasic",
                "title": self.title,
                "status": status,
                "startsAt": render.fmt_time(self.starts_at),
                "endsAt": render.fmt_time(self.ends_at),
                "usageLimit": self.usage_limit,
                "appliesOncePerCustomer": self.once_per_customer,
                "asyncUsageCount": self.usage_count,
                "codesCount": {"count": 1, "precision": "EXACT"},
                "codes": [
                    {
                        "__typename": "DiscountRedeemCode",
                        "id": gid("DiscountRedeemCode", self.id),
                        "code": self.code,
                        "asyncUsageCount": self.usage_count,
                    }
                ],
            },
        }


def _parse_when(text: str) -> dt.datetime:
    text = text.strip().strip("'\"")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def search_filter(query: str | None) -> Callable[[Any], bool] | None:
    """Shopify's search syntax, the part syncs use: ``updated_at:>'…' AND id:>=5``.

    Terms are ANDed; fields ``updated_at``, ``created_at``, ``processed_at`` and ``id`` with
    ``:``, ``:>``, ``:>=``, ``:<``, ``:<=``. Unknown fields are ignored (Shopify warns
    about them in ``extensions.search`` rather than failing).
    """
    if not query or not query.strip():
        return None
    tests: list[Callable[[Any], bool]] = []
    for name, op, raw in _SEARCH_TERM.findall(query):
        if name in ("updated_at", "created_at", "processed_at"):
            bound: Any = _parse_when(raw)
            get: Callable[[Any], Any] = _attribute(name)
        elif name == "id":
            bound = int(raw.strip("'\""))
            get = lambda r: int(r.id) if r.id.isdigit() else -1  # noqa: E731
        else:
            continue
        compare = {
            ">": operator.gt,
            ">=": operator.ge,
            "<": operator.lt,
            "<=": operator.le,
            "=": operator.eq,
            "": operator.eq,
        }[op]
        tests.append(_compared(get, compare, bound))
    if not tests:
        return None
    return lambda r: all(t(r) for t in tests)


def _attribute(name: str) -> Callable[[Any], Any]:
    return lambda r: getattr(r, name, None)


def _compared(
    get: Callable[[Any], Any], compare: Callable[[Any, Any], Any], bound: Any
) -> Callable[[Any], bool]:
    """``compare(get(r), bound)``, false where the record lacks the value."""
    return lambda r: (v := get(r)) is not None and bool(compare(v, bound))


def _id_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _sort_key(record: Any, by: str) -> tuple[Any, ...]:
    if by == "id":
        return (_id_key(record.id),)
    return (getattr(record, by), _id_key(record.id))


def _encode_key(key: tuple[Any, ...]) -> str:
    parts = [
        k.isoformat() if isinstance(k, dt.datetime) else list(k) if isinstance(k, tuple) else k
        for k in key
    ]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_key(token: str, by: str) -> tuple[Any, ...]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if by == "id":
            return (tuple(parts[0]),)
        return (dt.datetime.fromisoformat(parts[0]), tuple(parts[1]))
    except (ValueError, TypeError, IndexError, KeyError):
        raise QueryError(
            f"Invalid cursor for current pagination sort: {token!r}", "BAD_REQUEST"
        ) from None


class ShopifyEmulator:
    """Serves one :class:`ShopState` the way Shopify's Admin API does.

    Options: ``access_token``; ``api_key``/``api_secret`` (the app's OAuth client and the
    webhook signing secret); ``plan`` (``standard`` by default) or ``bucket_size`` and
    ``restore_rate``; ``max_query_cost``; ``rest_bucket_size``/``rest_leak_rate`` (40, 2/s);
    ``throttle_status`` (200 as Shopify answers, 429 for clients that want it);
    ``bulk_delay`` (seconds a bulk operation stays RUNNING, to test polling);
    ``bulk_fail_after`` (a bulk operation FAILS after that many records, with its partial
    data); ``bulk_url_ttl`` (seconds a signed result URL stays valid, on ``clock``);
    ``webhook_metafield_namespaces`` (metafields included in customer webhooks, as a
    subscription's ``metafieldNamespaces`` would; default ``("facts",)`` for birthdays);
    ``scopes`` (comma-separated, what ``access_scopes.json`` and an install report);
    ``order_variety`` (test orders, tips, duties, tax lines and cancel reasons at the rates
    of :mod:`._emu_variety`); ``clock`` (monotonic seconds for the buckets, replaceable in tests).
    """

    platform: ClassVar[str] = "shopify"

    @classmethod
    def default_shop(cls, seed: int) -> str:
        return f"emulated-{seed}.myshopify.com"

    def __init__(
        self,
        state: ShopState,
        *,
        access_token: str | None = None,
        api_key: str = "emulated-api-key",
        api_secret: str = "emulated-api-secret",
        api_version: str = DEFAULT_API_VERSION,
        plan: str = "standard",
        bucket_size: float | None = None,
        restore_rate: float | None = None,
        max_query_cost: int = MAX_QUERY_COST,
        rest_bucket_size: int = 40,
        rest_leak_rate: float = 2.0,
        throttle_status: int = 200,
        bulk_delay: float = 0.0,
        bulk_fail_after: int | None = None,
        bulk_url_ttl: float = bulk_emu.URL_TTL,
        scopes: str = (
            "read_customers,read_orders,read_all_orders,read_products,"
            "write_customers,write_discounts"
        ),
        webhook_metafield_namespaces: tuple[str, ...] = ("facts",),
        order_variety: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        label = state.shop.split(".", 1)[0]
        self.access_token = access_token or f"shpat_{label}_emulated"
        self.api_key = api_key
        self.api_secret = api_secret
        self.api_version = api_version
        size, rate = PLANS[plan]
        self.gql_bucket = LeakyBucket(bucket_size or size, restore_rate or rate, clock)
        self.rest_bucket = LeakyBucket(float(rest_bucket_size), rest_leak_rate, clock)
        self.max_query_cost = max_query_cost
        self.throttle_status = throttle_status
        self.bulk_delay = bulk_delay
        self.bulk_fail_after = bulk_fail_after
        self.bulk_url_ttl = bulk_url_ttl
        self.customer_facts = CustomerFacts()
        if order_variety:
            add_variety(state)
        self._clock = clock
        self.scopes = scopes
        self.webhook_metafield_namespaces = tuple(webhook_metafield_namespaces)
        self.executor = Executor()
        self.tokens = {self.access_token}
        self.codes: set[str] = set()
        self.bulk_ops: dict[str, BulkOperation] = {}
        self.stats: dict[str, int] = {
            "graphql": 0,
            "throttled": 0,
            "rest": 0,
            "rest_429": 0,
            "bulk": 0,
        }
        self._ids = itertools.count(4046733967549)
        self._lock = threading.Lock()
        self.discounts: dict[str, DiscountCode] = {}
        """Code discounts created through ``discountCodeBasicCreate``, by lower-cased code."""
        self.metafields: dict[tuple[str, str, str], dict[str, Any]] = {}
        """Customer metafields set through ``metafieldsSet``, by (customer id, namespace, key)."""
        self.writes: Counter[str] = Counter()
        """Mutations by outcome: ``discount_created``, ``discount_taken``, ``tags_added``..."""

    def __repr__(self) -> str:
        return f"ShopifyEmulator(shop={self.state.shop!r})"

    # ------------------------------------------------------------------ protocol

    def settings(self, base_url: str) -> dict[str, Any]:
        return {
            "shop": self.state.shop,
            "access_token": self.access_token,
            "base_url": base_url,
            "api_version": self.api_version,
        }

    def view(self, record: Any) -> Any:
        """What Shopify's payloads can carry of a shared model (see
        :func:`._render.expressible`): what a perfect sync stores."""
        return render.expressible(record)

    def rate_limited(self, retry_after: float) -> Response:
        size = int(self.rest_bucket.size)
        return Response.json(
            {"errors": _REST_LIMIT_MESSAGE},
            status=429,
            headers={
                "Retry-After": f"{retry_after:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": f"{size}/{size}",
            },
        )

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/admin/oauth/authorize" and request.method == "GET":
            return self._authorize(request)
        if path == "/admin/oauth/access_token" and request.method == "POST":
            return self._access_token(request)
        if path == "/admin/oauth/access_scopes.json" and request.method == "GET":
            return self._access_scopes(request)
        bulk = _BULK_PATH.match(path)
        if bulk and request.method == "GET":
            return self._bulk_file(request, bulk.group("id"), bool(bulk.group("partial")))
        match = _API_PATH.match(path)
        if match is None:
            return Response.json({"errors": "Not Found"}, status=404)
        if request.headers.get("x-shopify-access-token") not in self.tokens:
            return Response.json(
                {"errors": _BAD_TOKEN},
                status=401,
            )
        version, rest = match.group("version"), match.group("rest")
        if rest == "graphql.json":
            if request.method != "POST":
                return Response.json({"errors": "Not Found"}, status=404)
            return self._graphql(request)
        return self._rest(request, version, rest)

    # ------------------------------------------------------------------ GraphQL

    def _throttle_status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": float(self.gql_bucket.size),
            "currentlyAvailable": int(self.gql_bucket.available()),
            "restoreRate": float(self.gql_bucket.rate),
        }

    def _graphql(self, request: Request) -> Response:
        self.stats["graphql"] += 1
        try:
            body = request.json() or {}
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return Response.json(
                {"errors": {"query": "Required parameter missing or invalid"}}, status=400
            )
        try:
            prepared = self.executor.prepare(query)
            operation = prepared.operation(body.get("operationName"))
            variables = self.executor.variables(operation, body.get("variables"))
            requested = self.executor.requested_cost(prepared, operation, variables)
        except QueryError as exc:
            return Response.json({"errors": getattr(exc, "all", None) or [exc.as_json()]})
        except GraphQLError as exc:
            return Response.json({"errors": [{"message": exc.message}]})
        if requested > self.max_query_cost:
            return Response.json(
                {
                    "errors": [
                        {
                            "message": (
                                f"Query cost is {requested}, which exceeds the single query "
                                f"max cost limit ({self.max_query_cost}). Use bulk operations "
                                "for larger reads."
                            ),
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": self.max_query_cost,
                                "documentation": RATE_DOC,
                            },
                        }
                    ]
                }
            )
        bucket = self.gql_bucket
        with bucket.lock:
            if requested > bucket.available():
                self.stats["throttled"] += 1
                return Response.json(
                    {
                        "errors": [
                            {
                                "message": "Throttled",
                                "extensions": {"code": "THROTTLED", "documentation": RATE_DOC},
                            }
                        ],
                        "extensions": {
                            "cost": {
                                "requestedQueryCost": requested,
                                "actualQueryCost": None,
                                "throttleStatus": self._throttle_status(),
                            }
                        },
                    },
                    status=self.throttle_status,
                )
            bucket.take(requested)
        errors: list[dict[str, Any]] = []
        try:
            data, actual = self.executor.execute(
                prepared, operation, variables, self._root(request, operation)
            )
        except QueryError as exc:
            data, actual = None, requested
            errors.append(exc.as_json())
        actual = min(actual, requested)
        with bucket.lock:
            bucket.give(requested - actual)
            status = self._throttle_status()
        out: dict[str, Any] = {}
        if errors:
            out["errors"] = errors
        out["data"] = data
        out["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": status,
            }
        }
        return Response.json(out)

    def _renderer(self, resource: str) -> Callable[[Any], dict[str, Any]]:
        renderers: dict[str, Callable[..., dict[str, Any]]] = {
            "customers": render.customer_graphql,
            "orders": render.order_graphql,
            "products": render.product_graphql,
        }
        fn = renderers[resource]
        if resource == "customers":
            return lambda record: self._with_metafields(fn(record, self.state), record.id)
        return lambda record: fn(record, self.state)

    def _root(self, request: Request, operation: OperationDefinitionNode) -> dict[str, Any]:
        state = self.state

        def single(resource: str) -> Callable[[dict[str, Any]], Any]:
            def resolve(args: dict[str, Any]) -> Any:
                found = state.records(resource).get(parse_gid(args["id"]))
                if found is None or not self._visible(resource, found):
                    return None
                return self._renderer(resource)(found)

            return resolve

        def count(resource: str) -> Callable[[dict[str, Any]], Any]:
            def resolve(args: dict[str, Any]) -> Any:
                matches = search_filter(args.get("query"))
                rows = self._window(resource, state.ordered(resource))
                n = sum(1 for r in rows if matches(r)) if matches else len(rows)
                limit = args.get("limit", 10000)
                if limit is not None and n > limit:
                    return {"count": limit, "precision": "AT_LEAST"}
                return {"count": n, "precision": "EXACT"}

            return resolve

        if operation.operation.value == "mutation":
            return {
                "bulkOperationRunQuery": lambda args: self._bulk_run(request, args),
                "bulkOperationCancel": self._bulk_cancel,
                "discountCodeBasicCreate": self._discount_create,
                "tagsAdd": lambda args: self._tags(args, add=True),
                "tagsRemove": lambda args: self._tags(args, add=False),
                "metafieldsSet": self._metafields_set,
            }
        return {
            "shop": lambda args: {
                "__typename": "Shop",
                "id": gid("Shop", "1"),
                "name": state.shop.split(".", 1)[0],
                "email": f"owner@{state.shop}",
                "myshopifyDomain": state.shop,
                "currencyCode": state.currency,
                "ianaTimezone": "UTC",
            },
            "customers": lambda args: self._page("customers", args),
            "orders": lambda args: self._page("orders", args),
            "products": lambda args: self._page("products", args),
            "customer": single("customers"),
            "order": single("orders"),
            "product": single("products"),
            "node": lambda args: self._node(args["id"]),
            "nodes": lambda args: [self._node(i) for i in args["ids"]],
            "currentBulkOperation": lambda args: (
                self._render_op(self.bulk_ops[max(self.bulk_ops, key=int)])
                if self.bulk_ops
                else None
            ),
            "ordersCount": count("orders"),
            "customersCount": count("customers"),
            "productsCount": count("products"),
            "codeDiscountNodeByCode": self._discount_by_code,
            "events": lambda args: deletion_events(dict(state.deleted), args),
        }

    def _visible(self, resource: str, record: Any) -> bool:
        """Without ``read_all_orders`` Shopify shows only orders created in the last 60 days,
        silently (https://shopify.dev/docs/api/usage/access-scopes, ``read_all_orders``)."""
        if resource != "orders" or "read_all_orders" in self.scopes.split(","):
            return True
        return bool(record.created_at >= self.state.clock() - ORDER_WINDOW)

    def _window(self, resource: str, rows: list[Any]) -> list[Any]:
        if resource != "orders" or "read_all_orders" in self.scopes.split(","):
            return rows
        return [r for r in rows if self._visible(resource, r)]

    def _node(self, node_id: str) -> Any:
        kind = node_id.split("/")[-2] if node_id.startswith("gid://") else ""
        if kind == "BulkOperation":
            op = self.bulk_ops.get(parse_gid(node_id))
            return self._render_op(op) if op else None
        resource = {"Order": "orders", "Customer": "customers", "Product": "products"}.get(kind)
        if resource is None:
            return None
        found = self.state.records(resource).get(parse_gid(node_id))
        if found is None or not self._visible(resource, found):
            return None
        return self._renderer(resource)(found)

    def _rows(
        self, resource: str, sort_key: str | None, query: str | None
    ) -> tuple[list[Any], str]:
        by = _SORTS.get(sort_key or "ID", "id")
        rows = self._window(resource, self.state.ordered(resource, by))
        matches = search_filter(query)
        if matches is not None:
            rows = [r for r in rows if matches(r)]
        return rows, by

    def _page(self, resource: str, args: dict[str, Any]) -> Connection:
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            raise QueryError("you must provide one of first or last", "BAD_REQUEST")
        for name in ("first", "last"):
            value = args.get(name)
            if value is not None and not 0 <= value <= MAX_PAGE:
                raise QueryError(
                    f"The {name} argument must be between 0 and {MAX_PAGE}", "BAD_REQUEST"
                )
        rows, by = self._rows(resource, args.get("sortKey"), args.get("query"))
        if args.get("reverse"):
            rows = rows[::-1]
        keys = (
            [_sort_key(r, by) for r in rows] if (args.get("after") or args.get("before")) else None
        )
        start, end = 0, len(rows)
        reverse = bool(args.get("reverse"))
        if keys is not None:
            if reverse:
                keys = [_Reversed(k) for k in keys]  # type: ignore[misc]
            if args.get("after"):
                key = _decode_key(args["after"], by)
                start = bisect_right(keys, _Reversed(key) if reverse else key)
            if args.get("before"):
                key = _decode_key(args["before"], by)
                end = bisect_left(keys, _Reversed(key) if reverse else key)
        if first is not None:
            end = min(end, start + first)
        if last is not None:
            start = max(start, end - last)
        items = rows[start:end]
        renderer = self._renderer(resource)
        return Connection(
            items=[_Lazy(renderer, r) for r in items],
            cursors=[_encode_key(_sort_key(r, by)) for r in items],
            has_next=end < len(rows),
            has_previous=start > 0,
        )

    # ------------------------------------------------------------------ bulk

    # ------------------------------------------------------------------ write side

    def _with_metafields(self, node: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """A rendered customer whose ``metafield(namespace:, key:)`` also finds the
        metafields set through ``metafieldsSet``."""
        built_in = node.get("metafield")

        def metafield(args: Mapping[str, Any]) -> dict[str, Any] | None:
            found = self.metafields.get(
                (customer_id, args.get("namespace") or "", args.get("key") or "")
            )
            if found is not None:
                return found
            return built_in(args) if callable(built_in) else None

        node["metafield"] = metafield
        return node

    def _discount_by_code(self, args: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            found = self.discounts.get(str(args["code"]).lower())
        return found.render(self.state.clock()) if found is not None else None

    def _discount_create(self, args: dict[str, Any]) -> dict[str, Any]:
        """``discountCodeBasicCreate``: a code must be unique in the shop (``TAKEN``), name
        customers that exist, and end after it starts."""
        data = args["basicCodeDiscount"]
        code = str(data.get("code") or "").strip()

        def refuse(field: str, message: str, code_: str) -> dict[str, Any]:
            self.writes[f"discount_{code_.lower()}"] += 1
            return {
                "codeDiscountNode": None,
                "userErrors": [
                    {"field": ["basicCodeDiscount", field], "message": message, "code": code_}
                ],
            }

        if not code or len(code) > 255:
            return refuse("code", "Code is too short (minimum is 1 character)", "TOO_SHORT")
        selection = data.get("context") or data.get("customerSelection") or {}
        customers = [parse_gid(c) for c in (selection.get("customers") or {}).get("add") or ()]
        with self.state.lock:
            missing = [c for c in customers if c not in self.state.customers]
        if missing:
            return refuse("context", f"Customer does not exist: {missing[0]}", "INVALID")
        try:
            starts = _parse_when(str(data.get("startsAt") or render.fmt_time(self.state.clock())))
            ends = _parse_when(data["endsAt"]) if data.get("endsAt") else None
        except (ValueError, TypeError):
            return refuse("startsAt", "is invalid", "INVALID")
        if ends is not None and ends <= starts:
            return refuse("endsAt", "Ends at needs to be after starts_at", "INVALID")
        amount = ((data.get("customerGets") or {}).get("value") or {}).get("discountAmount") or {}
        with self._lock:
            if code.lower() in self.discounts:
                return refuse("code", "Code must be unique. Please try a different code.", "TAKEN")
            discount = DiscountCode(
                id=str(next(self._ids)),
                code=code,
                title=str(data.get("title") or code),
                starts_at=starts,
                ends_at=ends,
                customer_ids=tuple(customers),
                amount=str(amount.get("amount")) if amount.get("amount") is not None else None,
                usage_limit=data.get("usageLimit"),
                once_per_customer=bool(data.get("appliesOncePerCustomer")),
            )
            self.discounts[code.lower()] = discount
            self.writes["discount_created"] += 1
        return {"codeDiscountNode": discount.render(self.state.clock()), "userErrors": []}

    def _tags(self, args: dict[str, Any], *, add: bool) -> dict[str, Any]:
        node_id = str(args["id"])
        if not node_id.startswith("gid://shopify/Customer/"):
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Invalid id"}]}
        customer_id = parse_gid(node_id)
        tags = [t.strip() for t in args["tags"] for t in t.split(",") if t.strip()]
        with self.state.lock:
            customer = self.state.customers.get(customer_id)
            if customer is None:
                return {
                    "node": None,
                    "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
                }
            old = set(customer.tags)
            new = (old | set(tags)) if add else (old - set(tags))
            if new != old:
                customer = self.state.update_customer(customer_id, tags=tuple(sorted(new)))
        self.writes["tags_added" if add else "tags_removed"] += 1
        return {"node": self._renderer("customers")(customer), "userErrors": []}

    def _metafields_set(self, args: dict[str, Any]) -> dict[str, Any]:
        """``metafieldsSet``: all or nothing, at most 25 per call, customers only here."""
        items = list(args["metafields"])
        if len(items) > 25:
            return {
                "metafields": None,
                "userErrors": [
                    {
                        "field": ["metafields"],
                        "message": "Exceeded the maximum metafields input limit of 25.",
                        "code": "LESS_THAN_OR_EQUAL_TO",
                    }
                ],
            }
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            owner = str(item["ownerId"])
            if not owner.startswith("gid://shopify/Customer/") or (
                parse_gid(owner) not in self.state.customers
            ):
                errors.append(
                    {
                        "field": ["metafields", str(i), "ownerId"],
                        "message": "Owner does not exist.",
                        "code": "INVALID",
                    }
                )
            integer = str(item["value"]).lstrip("-").isdigit()
            if item.get("type") == "number_integer" and not integer:
                errors.append(
                    {
                        "field": ["metafields", str(i), "value"],
                        "message": "Value must be an integer.",
                        "code": "INVALID_VALUE",
                    }
                )
        if errors:
            return {"metafields": None, "userErrors": errors}
        out = []
        with self._lock:
            for item in items:
                customer_id = parse_gid(item["ownerId"])
                namespace = item.get("namespace") or "$app"
                key = (customer_id, namespace, item["key"])
                old = self.metafields.get(key)
                field_ = {
                    "__typename": "Metafield",
                    "id": old["id"] if old else gid("Metafield", str(next(self._ids))),
                    "namespace": namespace,
                    "key": item["key"],
                    "value": str(item["value"]),
                    "type": item.get("type") or (old or {}).get("type") or "single_line_text_field",
                }
                self.metafields[key] = field_
                out.append(field_)
            self.writes["metafields_set"] += len(items)
        return {"metafields": out, "userErrors": []}

    def _bulk_run(self, request: Request, args: dict[str, Any]) -> dict[str, Any]:
        def user_error(
            message: str, code: str | None = None, fld: list[str] | None = None
        ) -> dict[str, Any]:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": fld, "message": message, "code": code}],
            }

        version = _API_PATH.match(request.path)
        api_version = version.group("version") if version else self.api_version
        with self._lock:
            running = [
                op
                for op in self.bulk_ops.values()
                if op.status in ("CREATED", "RUNNING", "CANCELING")
            ]
            if len(running) >= bulk_emu.concurrency_limit(api_version):
                return user_error(
                    "A bulk query operation for this app and shop is already in progress: "
                    f"{gid('BulkOperation', running[0].id)}.",
                    "OPERATION_IN_PROGRESS",
                )
            query = args["query"]
            try:
                prepared = self.executor.prepare(query)
                operation = prepared.operation(None)
            except QueryError as exc:
                return user_error(f"Invalid bulk query: {exc.message}", "INVALID", ["query"])
            roots = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
            if (
                operation.operation.value != "query"
                or len(roots) != 1
                or roots[0].name.value not in _ROOTS
            ):
                return user_error(
                    "Bulk queries must select exactly one top-level connection field "
                    "(customers, orders or products).",
                    "INVALID",
                    ["query"],
                )
            depth = _connection_depth(self.executor, roots[0])
            if depth > 3:
                return user_error(
                    "Bulk queries cannot nest connections more than two levels deep.",
                    "INVALID",
                    ["query"],
                )
            group = args.get("groupObjects")
            op = BulkOperation(
                id=str(next(self._ids)),
                query=query,
                resource=roots[0].name.value,
                created_at=self.state.clock(),
                grouped=bulk_emu.default_grouping(api_version) if group is None else bool(group),
            )
            self.bulk_ops[op.id] = op
            self.stats["bulk"] += 1
        worker = threading.Thread(
            target=self._bulk_work,
            args=(op, prepared, roots[0], request.base_url),
            daemon=True,
            name=f"shopify-bulk-{op.id}",
        )
        worker.start()
        return {"bulkOperation": self._render_op(op), "userErrors": []}

    def _render_op(self, op: BulkOperation) -> dict[str, Any]:
        """The operation with freshly signed URLs (valid ``bulk_url_ttl`` from now)."""
        expires = self._clock() + self.bulk_url_ttl

        def signed(suffix: str) -> str:
            path = f"/_emulator/bulk/{op.id}{suffix}.jsonl"
            return bulk_emu.sign_url(op.url or "", path, secret=self.api_secret, expires=expires)

        return op.render(
            signed("") if op.status == "COMPLETED" and op.data is not None else None,
            signed(".partial") if op.partial is not None else None,
        )

    def _bulk_work(self, op: BulkOperation, prepared: Any, root: FieldNode, base_url: str) -> None:
        from graphql.execution.values import get_argument_values

        try:
            op.status = "RUNNING"
            resource, type_name = _ROOTS[root.name.value]
            fdef = self.executor.schema.query_type.fields[root.name.value]  # type: ignore[union-attr]
            args = get_argument_values(fdef, root, {})
            rows, _ = self._rows(resource, args.get("sortKey"), args.get("query"))
            selection = _node_selection(self.executor, root)
            renderer = self._renderer(resource)
            chunks: list[list[str]] = []
            plans: dict[Any, Any] = {}  # one operation walks one selection: resolve it once
            for record in rows:
                if op.cancel.is_set():
                    op.status = "CANCELED"
                    return
                if self.bulk_fail_after is not None and op.root_count >= self.bulk_fail_after:
                    op.partial = bulk_emu.arrange(chunks, grouped=op.grouped, seed=int(op.id))
                    raise RuntimeError("the operation failed part way (bulk_fail_after)")
                lines = self.executor.bulk_lines(
                    renderer(record), selection, type_name, prepared.fragments, plans
                )
                op.root_count += 1
                op.object_count += len(lines)
                chunks.append(
                    [
                        json.dumps(line, separators=(",", ":"), default=str).replace("/", "\\/")
                        + "\n"
                        for line in lines
                    ]
                )
            if self.bulk_delay:
                time.sleep(self.bulk_delay)
            op.data = bulk_emu.arrange(chunks, grouped=op.grouped, seed=int(op.id))
            op.url = base_url
            op.completed_at = self.state.clock()
            op.status = "COMPLETED"
        except Exception as exc:  # the operation fails as Shopify's would, not the server
            op.status = "FAILED"
            op.error = repr(exc)
            op.url = base_url
            op.completed_at = self.state.clock()
        self.state.emit("bulk_operation.finished", "shop", op.id)

    def _bulk_cancel(self, args: dict[str, Any]) -> dict[str, Any]:
        op = self.bulk_ops.get(parse_gid(args["id"]))
        if op is None:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
            }
        if op.status in ("CREATED", "RUNNING"):
            op.cancel.set()
            op.status = "CANCELING"
        return {"bulkOperation": op.render(), "userErrors": []}

    def _bulk_file(self, request: Request, op_id: str, partial: bool) -> Response:
        op = self.bulk_ops.get(op_id)
        data = None if op is None else (op.partial if partial else op.data)
        if op is None or data is None:
            return Response(404, {"Content-Type": "text/plain"}, b"NoSuchKey")
        valid = bulk_emu.url_valid(
            request.path, request.query, secret=self.api_secret, now=self._clock()
        )
        if not valid:
            body = bulk_emu.EXPIRED_BODY if valid is False else b"SignatureDoesNotMatch"
            return Response(403, {"Content-Type": "application/xml"}, body)
        return Response(200, {"Content-Type": "application/jsonl"}, data)

    # ------------------------------------------------------------------ REST

    def _rest(self, request: Request, version: str, rest: str) -> Response:
        bucket = self.rest_bucket
        with bucket.lock:
            used = bucket.size - bucket.available()
            if used + 1 > bucket.size:
                self.stats["rest_429"] += 1
                return self.rate_limited(round(1.0 / bucket.rate, 1))
            bucket.take(1)
            used = round(bucket.size - bucket.available())
        self.stats["rest"] += 1
        headers = {
            "X-Shopify-Shop-Api-Call-Limit": f"{used}/{int(bucket.size)}",
            "X-Request-Id": str(uuid.uuid4()),
        }
        if request.method != "GET":
            return Response.json({"errors": "Not Found"}, status=404, headers=headers)
        state = self.state
        if rest == "shop.json":
            return Response.json(
                {
                    "shop": {
                        "id": 1,
                        "name": state.shop.split(".", 1)[0],
                        "email": f"owner@{state.shop}",
                        "domain": state.shop,
                        "myshopify_domain": state.shop,
                        "currency": state.currency,
                        "iana_timezone": "UTC",
                        "plan_name": "basic",
                    }
                },
                headers=headers,
            )
        if rest == "events.json":
            return self._events(request, headers)
        parts = rest[: -len(".json")].split("/") if rest.endswith(".json") else []
        renderers: dict[str, Callable[..., dict[str, Any]]] = {
            "customers": render.customer_rest,
            "orders": render.order_rest,
            "products": render.product_rest,
        }
        if len(parts) == 1 and parts[0] in renderers:
            return self._rest_list(request, version, parts[0], headers)
        if len(parts) == 2 and parts[0] in renderers:
            if parts[1] == "count":
                rows, _ = self._rest_rows(parts[0], request.query)
                return Response.json({"count": len(rows)}, headers=headers)
            found = state.records(parts[0]).get(parts[1])
            if found is not None:
                singular = parts[0][:-1]
                return Response.json({singular: renderers[parts[0]](found, state)}, headers=headers)
        return Response.json({"errors": "Not Found"}, status=404, headers=headers)

    def _events(self, request: Request, headers: dict[str, str]) -> Response:
        """``GET events.json``: only the deletion events (``verb=destroy``), the one kind a
        sync needs, filtered by ``filter`` (Order, Product), ``created_at_min`` and paged
        with ``since_id`` and ``limit`` in id order, as Shopify pages events."""
        params = request.query
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            return Response.json(
                {"errors": {"limit": f"must be between 1 and {MAX_PAGE}"}},
                status=400,
                headers=headers,
            )
        subjects = {"orders": "Order", "products": "Product", "customers": "Customer"}
        with self.state.lock:
            deleted = sorted(self.state.deleted.items(), key=lambda item: (item[1], item[0]))
        wanted = {s.strip() for s in params.get("filter", "").split(",") if s.strip()}
        since_id = int(params.get("since_id") or 0)
        low = _parse_when(params["created_at_min"]) if params.get("created_at_min") else None
        events = []
        for number, ((resource, record_id), at) in enumerate(deleted, start=1):
            subject = subjects.get(resource)
            if subject is None or (wanted and subject not in wanted) or number <= since_id:
                continue
            if params.get("verb", "destroy") != "destroy" or (low is not None and at < low):
                continue
            events.append(
                {
                    "id": number,
                    "subject_id": int(record_id),
                    "subject_type": subject,
                    "verb": "destroy",
                    "arguments": [],
                    "body": None,
                    "message": f"{subject} {record_id} was deleted.",
                    "author": "Shopify",
                    "description": f"{subject} {record_id} was deleted.",
                    "path": f"/admin/{resource}/{record_id}",
                    "created_at": at.isoformat(),
                }
            )
            if len(events) == limit:
                break
        return Response.json({"events": events}, headers=headers)

    def _rest_rows(self, resource: str, params: Mapping[str, str]) -> tuple[list[Any], str]:
        order = params.get("order", "id asc").split()
        by = order[0] if order and order[0] in ("id", "updated_at", "created_at") else "id"
        rows = self._window(resource, self.state.ordered(resource, by))
        tests: list[Callable[[Any], bool]] = []
        for name in ("updated_at", "created_at"):
            if params.get(f"{name}_min"):
                low = _parse_when(params[f"{name}_min"])
                tests.append(_compared(operator.attrgetter(name), operator.ge, low))
            if params.get(f"{name}_max"):
                high = _parse_when(params[f"{name}_max"])
                tests.append(_compared(operator.attrgetter(name), operator.le, high))
        if params.get("since_id"):
            since = int(params["since_id"])
            tests.append(lambda r: int(r.id) > since)
        if resource == "orders":
            status = params.get("status", "open")
            if status == "open":
                tests.append(lambda r: r.closed_at is None and r.cancelled_at is None)
            elif status == "closed":
                tests.append(lambda r: r.closed_at is not None)
            elif status == "cancelled":
                tests.append(lambda r: r.cancelled_at is not None)
        if tests:
            rows = [r for r in rows if all(t(r) for t in tests)]
        if len(order) > 1 and order[1].lower() == "desc":
            rows = rows[::-1]
        return rows, by

    def _rest_list(
        self, request: Request, version: str, resource: str, headers: dict[str, str]
    ) -> Response:
        params = dict(request.query)
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            return Response.json(
                {"errors": {"limit": f"must be between 1 and {MAX_PAGE}"}},
                status=400,
                headers=headers,
            )
        if "page" in params:
            return Response.json(
                {"errors": {"page": "page cannot be passed."}}, status=400, headers=headers
            )
        token = params.get("page_info")
        direction, after = "next", None
        if token:
            extra = set(params) - {"page_info", "limit", "fields"}
            if extra:
                return Response.json(
                    {"errors": {"page_info": f"cannot be passed with {', '.join(sorted(extra))}"}},
                    status=400,
                    headers=headers,
                )
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                filters, direction, after = decoded["f"], decoded["d"], decoded["k"]
            except (ValueError, KeyError, TypeError):
                return Response.json(
                    {"errors": {"page_info": "Invalid value."}}, status=400, headers=headers
                )
        else:
            filters = {k: v for k, v in params.items() if k not in ("limit", "fields", "page_info")}
        rows, _ = self._rest_rows(resource, filters)
        ids = [r.id for r in rows]
        position = ids.index(after) if after in ids else -1
        if after is None:
            start, end = 0, min(len(rows), limit)
        elif direction == "next":
            start = position + 1
            end = min(len(rows), start + limit)
        else:
            end = max(position, 0)
            start = max(0, end - limit)
        items = rows[start:end]
        renderers: dict[str, Callable[..., dict[str, Any]]] = {
            "customers": render.customer_rest,
            "orders": render.order_rest,
            "products": render.product_rest,
        }
        renderer = renderers[resource]
        rendered = [renderer(r, self.state) for r in items]
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        if fields:
            rendered = [{k: v for k, v in r.items() if k in fields} for r in rendered]
        links = []
        base = f"{request.base_url}/admin/api/{version}/{resource}.json"

        def link(direction: str, key: str) -> str:
            page = base64.urlsafe_b64encode(
                json.dumps({"f": filters, "d": direction, "k": key}).encode()
            )
            query = urlencode({"limit": limit, "page_info": page.decode().rstrip("=")})
            return f"<{base}?{query}>"

        if items and start > 0:
            links.append(f'{link("prev", items[0].id)}; rel="previous"')
        if items and end < len(rows):
            links.append(f'{link("next", items[-1].id)}; rel="next"')
        if links:
            headers = {**headers, "Link": ", ".join(links)}
        return Response.json({resource: rendered}, headers=headers)

    # ------------------------------------------------------------------ OAuth

    def callback_hmac(self, params: Mapping[str, str]) -> str:
        """The ``hmac`` Shopify puts on an OAuth callback: hex HMAC-SHA256 of the sorted
        ``key=value`` pairs (all but ``hmac``) joined by ``&``."""
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
        return hmac.new(self.api_secret.encode(), message.encode(), hashlib.sha256).hexdigest()

    def _authorize(self, request: Request) -> Response:
        params = request.query
        if params.get("client_id") != self.api_key or not params.get("redirect_uri"):
            return Response.json({"errors": "Invalid client_id or redirect_uri"}, status=400)
        code = secrets.token_hex(16)
        self.codes.add(code)
        callback = {
            "code": code,
            "host": base64.b64encode(f"{self.state.shop}/admin".encode()).decode(),
            "shop": self.state.shop,
            "timestamp": str(int(time.time())),
        }
        if params.get("state"):
            callback["state"] = params["state"]
        callback["hmac"] = self.callback_hmac(callback)
        return Response(302, {"Location": f"{params['redirect_uri']}?{urlencode(callback)}"}, b"")

    def _access_scopes(self, request: Request) -> Response:
        """``GET /admin/oauth/access_scopes.json``: the scopes the token was granted."""
        if request.headers.get("x-shopify-access-token") not in self.tokens:
            return Response.json({"errors": _BAD_TOKEN}, status=401)
        handles = [s for s in self.scopes.split(",") if s]
        return Response.json({"access_scopes": [{"handle": h} for h in handles]})

    def _access_token(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            body = request.json() or {}
        else:
            body = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
            body.update(request.query)
        if body.get("client_id") != self.api_key or body.get("client_secret") != self.api_secret:
            return Response.json(
                {"error": "invalid_client", "error_description": "Client credentials are invalid"},
                status=400,
            )
        code = body.get("code")
        if code not in self.codes:
            return Response.json(
                {
                    "error": "invalid_request",
                    "error_description": "The authorization code was not found or was already used",
                },
                status=400,
            )
        self.codes.discard(code)
        token = f"shpat_{secrets.token_hex(16)}"
        self.tokens.add(token)
        return Response.json({"access_token": token, "scope": self.scopes})

    # ------------------------------------------------------------------ webhooks

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        if subscription.topic not in _TOPICS.get(event.topic, ()):
            return None
        payload = self.webhook_payload(subscription.topic, event)
        if payload is None:
            return None
        body = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": subscription.topic,
            "X-Shopify-Hmac-Sha256": sign(subscription.secret or self.api_secret, body),
            "X-Shopify-Shop-Domain": self.state.shop,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Triggered-At": event.at.isoformat().replace("+00:00", "Z"),
            "X-Shopify-Event-Id": str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL,
                    f"{self.state.shop}/{event.topic}/{event.record_id}/{event.at.isoformat()}",
                )
            ),
        }
        return Delivery(headers=headers, body=body, id=webhook_id)

    def webhook_payload(self, topic: str, event: Event) -> dict[str, Any] | None:
        """The REST-shaped body Shopify posts for ``topic``."""
        state, record = self.state, event.record
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
                metafield_namespaces=self.webhook_metafield_namespaces,
            )
            for key in WEBHOOK_DROPPED:  # since 2025-01 (see ._emu_topics)
                body.pop(key, None)
            return body
        if topic in FACT_TOPICS:
            return self.customer_facts.payload(topic, event)
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
        if topic == "bulk_operations/finish":
            op = self.bulk_ops.get(event.record_id)
            if op is None:
                return None
            shown = op.render()
            return bulk_emu.finish_payload(
                shown["id"], op.status, shown["errorCode"], shown["createdAt"], shown["completedAt"]
            )
        return None


class _Lazy(dict):  # type: ignore[type-arg]
    """A record rendered only when the executor first reads it."""

    def __init__(self, renderer: Callable[[Any], dict[str, Any]], record: Any) -> None:
        super().__init__()
        self._renderer, self._record, self._done = renderer, record, False

    def _load(self) -> None:
        if not self._done:
            self.update(self._renderer(self._record))
            self._done = True

    def get(self, key: Any, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)


class _Reversed:
    """Inverts ordering, for bisecting a list sorted descending."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.key == other.key


def _node_selection(executor: Executor, root: FieldNode) -> Any:
    """The node selection of a root connection (``edges { node { … } }`` or ``nodes { … }``)."""
    for sel in root.selection_set.selections if root.selection_set else ():
        if isinstance(sel, FieldNode) and sel.name.value == "nodes":
            return sel.selection_set
        if isinstance(sel, FieldNode) and sel.name.value == "edges":
            for inner in sel.selection_set.selections if sel.selection_set else ():
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    return inner.selection_set
    return None


def _connection_depth(executor: Executor, node: FieldNode, parent: Any = None) -> int:
    """How many connections deep a selection goes (the root counts as one)."""
    schema = executor.schema
    parent = parent or schema.query_type
    fdef = parent.fields.get(node.name.value)
    if fdef is None:
        return 0
    named = get_named_type(fdef.type)
    own = 1 if named.name.endswith("Connection") else 0
    deepest = 0
    for sel in node.selection_set.selections if node.selection_set else ():
        if isinstance(sel, FieldNode) and hasattr(named, "fields"):
            if own and sel.name.value in ("edges", "nodes"):
                target = schema.get_type(named.name[: -len("Connection")])
                inner_sels = list(sel.selection_set.selections) if sel.selection_set else []
                if sel.name.value == "edges":
                    inner_sels = [
                        s2
                        for s in inner_sels
                        if isinstance(s, FieldNode) and s.name.value == "node"
                        for s2 in (s.selection_set.selections if s.selection_set else ())
                    ]
                for s in inner_sels:
                    if isinstance(s, FieldNode):
                        deepest = max(deepest, _connection_depth(executor, s, target))
            elif sel.name.value in named.fields:
                deepest = max(deepest, _connection_depth(executor, sel, named))
    return own + deepest
