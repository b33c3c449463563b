"""The Shopify read path: GraphQL Admin API pages, paced by the cost bucket, and bulk
operations for big backfills.

Pacing: every answer carries ``extensions.cost.throttleStatus``. The adapter keeps the last
one, refills it at ``restoreRate`` with the clock, and before each request waits
``(requested - available) / restoreRate`` seconds if the bucket cannot hold the request, so
``THROTTLED`` is rare; when it happens anyway it becomes a :class:`RateLimitedError` with that
wait as ``retry_after`` and the one retry policy of :mod:`shopsync.http` handles it.

Page size: Shopify refuses a query whose *requested* cost exceeds 1000 points. Since 2025-07
a connection costs ``2 + multiplier(first) x node`` with a multiplier logarithmic in
``first`` (:mod:`._cost`), so the adapter learns each query's node cost from the
``requestedQueryCost`` Shopify reports and takes the largest page that fits: 22 orders
(992 points requested) or 250 customers (62 points). A schema or pricing change on Shopify's
side adjusts the page size instead of failing (``MAX_COST_EXCEEDED`` shrinks it).

Read path: a full read of orders or customers (and an incremental read of orders) counts
the records first and estimates how long paging would take: the points the records would
cost (learned from ``actualQueryCost`` per record, or :data:`_ACTUAL_PRIOR` before any page)
beyond what the bucket holds now, divided by the restore rate, plus one request time per
page. When that exceeds a bulk operation's fixed overhead
(:data:`BULK_OVERHEAD_SECONDS`: start, poll, download), it reads through one bulk operation
(:meth:`ShopifyAdapter.backfill_orders`, :meth:`ShopifyAdapter.backfill_customers`). On the
standard plan (2000-point bucket, 100 points/s) at the measured 12 points an order that is
past about 225 orders; customers at 0.25 points each page up to tens of thousands. The
arithmetic is in docs/adapters/shopify.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import SecretStr

from shopsync.adapter import (
    CustomerFieldWriter,
    Deletion,
    DeletionReader,
    DiscountWriter,
    Page,
    Resource,
    TagWriter,
    WebhookEvent,
    WebhookParser,
)
from shopsync.adapter_kit import PageLoop, RawPage, RequestCounter
from shopsync.errors import (
    ConfigurationError,
    InvalidRecordError,
    PlatformError,
    RateLimitedError,
    ResponseError,
    TransportError,
)
from shopsync.http import HttpClient, RetryPolicy, decode_json, redact_url
from shopsync.models import Customer, Money, Order, Product
from shopsync_shopify import queries
from shopsync_shopify._bulk import BulkFailedError, BulkReads, record_gid
from shopsync_shopify._cost import connection_multiplier, largest_first
from shopsync_shopify.mapping import (
    PLATFORM,
    customer_from_graphql,
    customer_from_webhook,
    gid,
    order_from_graphql,
    order_from_webhook,
    parse_gid,
    product_from_graphql,
)
from shopsync_shopify.versions import API_VERSION, version_problem
from shopsync_shopify.webhooks import parse_webhook

__all__ = ["API_VERSION", "BULK_OVERHEAD_SECONDS", "BULK_THRESHOLD", "ShopifyAdapter"]

log = logging.getLogger("shopsync.shopify")

BULK_THRESHOLD: Literal["auto"] = "auto"
"""Default read-path choice: by estimated cost (see the module docstring); an int is a fixed
record count above which a read uses bulk, None never uses bulk."""
BULK_OVERHEAD_SECONDS = 20.0
"""What a bulk operation costs before its first record whatever its size: creating it, the
polls until COMPLETED (small operations take several seconds on Shopify), the download."""
REQUEST_SECONDS = 0.3
"""One paged request's round trip and server time, for the estimate (a 90-order page)."""
MAX_QUERY_COST = 1000
MAX_PAGE = 250
ORDER_WINDOW = dt.timedelta(days=60)
"""What Shopify shows of a shop's orders to a token without ``read_all_orders``."""
_START_SIZE = {"customers": 100, "orders": 20, "products": 50}
"""First page sizes, chosen to fit the cap under the 2025-07 pricing before any answer."""
_NODE_PRIOR = {"customers": 6.0, "orders": 165.0, "products": 16.0}
"""Requested cost of one node of each page query under Shopify's published rules, for the
read-path estimate before Shopify has priced the query (then its answer replaces it)."""
_ACTUAL_PRIOR = {"customers": 0.25, "orders": 12.0, "products": 0.7}
"""Actual points per record before a page was read: measured on the emulator's realistic shop
(``benchmarks/shopify_read.py``: 11.8 points an order at 22 a page); replaced by what
Shopify charges once a page has been read."""
_CHILD_FIELDS = {
    "LineItem": "lineItems",
    "RefundLineItem": "refundLineItems",
    "FulfillmentLineItem": "fulfillmentLineItems",
}
R = TypeVar("R", Customer, Order, Product)


class ShopifyAdapter(
    BulkReads, DeletionReader, WebhookParser, DiscountWriter, TagWriter, CustomerFieldWriter
):
    """Reads one Shopify shop through the GraphQL Admin API.

    ``shop`` is the ``*.myshopify.com`` domain; ``base_url`` overrides ``https://{shop}`` (the
    emulator); ``page_size`` caps a page (the cost cap may make it smaller);
    ``bulk_threshold`` chooses the read path: ``"auto"`` by estimated cost against
    ``bulk_overhead`` seconds, an int as a fixed record count, ``None`` never bulk.
    """

    platform = PLATFORM
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "customer_id"
    """A code is limited to customers by id (``context.customers``)."""
    access_needed: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "sync": ("read_customers", "read_orders", "read_all_orders", "read_products"),
        "apply": ("write_customers", "write_discounts"),
    }
    """Access scopes per use: sync reads, apply writes tags, metafields and discount codes
    (``read_all_orders`` lifts the 60-day limit on orders)."""
    access_hint: ClassVar[str] = (
        "grant the missing scopes to the app (a custom app: Settings > Apps and sales "
        "channels > Develop apps > Configuration > Admin API access scopes; a Partner app: "
        "the access_scopes of shopify.app.toml), then reinstall or approve the app so the "
        "token carries them; a public app must also request read_all_orders from Shopify"
    )

    def __init__(
        self,
        *,
        shop: str,
        access_token: SecretStr | str,
        api_version: str = API_VERSION,
        base_url: str | None = None,
        timeout: float = 30.0,
        page_size: int | None = None,
        bulk_threshold: int | Literal["auto"] | None = BULK_THRESHOLD,
        bulk_overhead: float = BULK_OVERHEAD_SECONDS,
        bulk_poll_interval: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not shop:
            raise ConfigurationError("shopify: shop is required (e.g. 'acme.myshopify.com')")
        if page_size is not None and not 1 <= page_size <= MAX_PAGE:
            raise ConfigurationError(f"shopify: page_size must be between 1 and {MAX_PAGE}")
        self.shop = shop
        self._token = (
            access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        )
        self.api_version = api_version
        self.base_url = (base_url or f"https://{shop}").rstrip("/")
        self.endpoint = f"{self.base_url}/admin/api/{api_version}/graphql.json"
        self.page_size = page_size
        if not (
            bulk_threshold is None or bulk_threshold == "auto" or isinstance(bulk_threshold, int)
        ):
            raise ConfigurationError('shopify: bulk_threshold is "auto", a record count or None')
        self.bulk_threshold = bulk_threshold
        self.bulk_overhead = bulk_overhead
        self.bulk_poll_interval = bulk_poll_interval
        self.http = HttpClient(
            PLATFORM, timeout=timeout, policy=retry_policy or RetryPolicy(), sleep=sleep
        )
        self._sleep = sleep
        self._counter = RequestCounter(self.http.stats)
        """HTTP stats already reported in a page (see :meth:`_page_stats`)."""
        self._clock = clock
        self._bucket: tuple[float, float, float, float] | None = None
        """(maximum, available, restore rate, clock time) from the last throttleStatus."""
        self._per_node: dict[str, float] = {}
        """Requested cost of one node of a page query, learned from Shopify's answers."""
        self._cap: dict[str, int] = {}
        """Page sizes Shopify refused as too costly, per resource (a pricing we mis-model)."""
        self._per_record: dict[str, float] = {}
        """Actual points per record read by paging, as Shopify charged them."""
        self._granted: frozenset[str] | None = None
        self.read_path: dict[str, str] = {}
        """Per resource, how the last read went: ``"paging"`` or ``"bulk"``."""
        self._currency: str | None = None
        self.counters = {"throttled": 0, "paced_seconds": 0, "queries": 0, "actual_cost": 0}

    def __repr__(self) -> str:
        return f"ShopifyAdapter(shop={self.shop!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ShopifyAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _available(self) -> float | None:
        if self._bucket is None:
            return None
        maximum, available, rate, at = self._bucket
        return min(maximum, available + (self._clock() - at) * rate)

    def _pace(self, requested: float) -> None:
        """Wait until the bucket (as last reported, refilled since) can hold ``requested``."""
        available = self._available()
        if available is None or self._bucket is None or requested <= available:
            return
        wait = (requested - available) / self._bucket[2]
        self.counters["paced_seconds"] += wait  # type: ignore[assignment]
        self.http.stats.throttle_waits += 1
        self.http.stats.throttle_seconds += wait
        self._sleep(wait)

    def _note_cost(self, cost: Mapping[str, Any] | None) -> None:
        status = (cost or {}).get("throttleStatus")
        if status:
            self._bucket = (
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                self._clock(),
            )

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, *, requested: float = 0
    ) -> dict[str, Any]:
        """Run one query under pacing and the retry policy; returns ``data`` and the cost
        extension (``{"data": ..., "cost": ...}``)."""

        def once() -> dict[str, Any]:
            self._pace(requested)
            self.counters["queries"] += 1
            response = self.http.send_once(
                "POST",
                self.endpoint,
                json={"query": query, "variables": dict(variables or {})},
                headers={"X-Shopify-Access-Token": self._token.get_secret_value()},
            )
            body = decode_json(response, where=f"POST {self.endpoint}", platform=PLATFORM)
            if not isinstance(body, dict):
                raise ResponseError(
                    "GraphQL answer is not an object",
                    status=response.status_code,
                    platform=PLATFORM,
                )
            cost = (body.get("extensions") or {}).get("cost")
            self._note_cost(cost)
            errors = body.get("errors")
            if errors:
                items: list[Any] = (
                    errors if isinstance(errors, list) else [{"message": str(errors)}]
                )
                codes = {
                    ((e.get("extensions") or {}).get("code")) for e in items if isinstance(e, dict)
                }
                if "THROTTLED" in codes:
                    self.counters["throttled"] += 1
                    wait = None
                    status = (cost or {}).get("throttleStatus") or {}
                    if cost and status.get("restoreRate"):
                        need = float(cost.get("requestedQueryCost") or requested)
                        wait = max(
                            0.0,
                            (need - float(status["currentlyAvailable"]))
                            / float(status["restoreRate"]),
                        )
                    raise RateLimitedError(
                        "GraphQL query THROTTLED", retry_after=wait, status=200, platform=PLATFORM
                    )
                message = "; ".join(str(e.get("message")) for e in items if isinstance(e, dict))
                error = PlatformError(f"GraphQL error: {message}", status=200, platform=PLATFORM)
                error.codes = codes  # type: ignore[attr-defined]
                error.body = body  # type: ignore[attr-defined]
                raise error
            if cost and cost.get("actualQueryCost") is not None:
                self.counters["actual_cost"] += int(cost["actualQueryCost"])
            return {"data": body.get("data") or {}, "cost": cost or {}}

        return self.http.call(once)

    # ------------------------------------------------------------------ paging

    def _size(self, resource: str) -> int:
        cap = min(self.page_size or MAX_PAGE, self._cap.get(resource, MAX_PAGE))
        node = self._per_node.get(resource)
        if node is None:
            return min(cap, _START_SIZE[resource])
        return largest_first(node, MAX_QUERY_COST, cap)

    def _learn(self, resource: str, first: int, cost: Mapping[str, Any], records: int) -> None:
        requested = cost.get("requestedQueryCost")
        if requested and first:
            self._per_node[resource] = max(
                1.0, (float(requested) - 2) / connection_multiplier(first)
            )
        actual = cost.get("actualQueryCost")
        if actual is not None and records:
            seen = float(actual) / records
            before = self._per_record.get(resource)
            self._per_record[resource] = seen if before is None else (before + seen) / 2

    def _refused(self, resource: str, first: int, cost: float) -> None:
        """``MAX_COST_EXCEEDED`` at ``first``: relearn the node cost and never ask this many
        again, so even a pricing unlike ours converges (geometrically, not one by one)."""
        self._per_node[resource] = (cost - 2) / connection_multiplier(first)
        shrunk = int(first * (MAX_QUERY_COST - 2) / max(cost - 2, 1.0))
        self._cap[resource] = max(1, min(first - 1, shrunk))

    def paging_seconds(self, resource: str, records: int) -> float:
        """Estimated seconds to page through ``records``: the points beyond what the bucket
        holds now, at the restore rate, plus a request time per page."""
        node = self._per_node.get(resource, _NODE_PRIOR[resource])
        cap = min(self.page_size or MAX_PAGE, self._cap.get(resource, MAX_PAGE))
        first = largest_first(node, MAX_QUERY_COST, cap)
        requested = 2 + connection_multiplier(first) * node
        per_record = self._per_record.get(resource, _ACTUAL_PRIOR[resource])
        bucket = self._bucket or (2000.0, 2000.0, 100.0, self._clock())  # the standard plan
        available = self._available()
        if available is None:
            available = bucket[1]
        pages = -(-records // first)
        beyond = max(0.0, records * per_record - max(0.0, available - requested))
        return beyond / bucket[2] + pages * REQUEST_SECONDS

    def _use_bulk(self, resource: str, records: int) -> bool:
        threshold = self.bulk_threshold
        if threshold is None:
            return False
        if threshold == "auto":
            return self.paging_seconds(resource, records) > self.bulk_overhead
        return records > threshold

    def _read(
        self,
        resource: str,
        fields: str,
        mapper: Callable[[Mapping[str, Any]], R],
        updated_since: dt.datetime | None,
        cursor: str | None,
        complete: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Iterator[Page[R]]:
        loop: PageLoop[R] = PageLoop(
            resource, mapper, prepare=complete, record_id=record_gid, stats=self._page_stats
        )
        return loop.run(self._raw_pages(resource, fields, updated_since, cursor))

    def _raw_pages(
        self, resource: str, fields: str, updated_since: dt.datetime | None, cursor: str | None
    ) -> Iterator[RawPage]:
        """The page queries of a read, sized to the cost cap (see the module docstring)."""
        query = queries.page_query(resource, fields)
        search = None
        if updated_since is not None:
            since = updated_since.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
            search = f"updated_at:>='{since}'"
        after = cursor
        while True:
            first = self._size(resource)
            # Until Shopify has priced this query once, assume the worst a query may cost.
            per_node = self._per_node.get(resource)
            estimate = (
                MAX_QUERY_COST if per_node is None else 2 + connection_multiplier(first) * per_node
            )
            try:
                result = self.graphql(
                    query, {"first": first, "after": after, "query": search}, requested=estimate
                )
            except PlatformError as exc:
                cost = _max_cost(exc)
                if cost is None or first == 1:
                    raise
                self._refused(resource, first, cost)
                continue
            connection = result["data"][resource]
            self._learn(resource, first, result["cost"], len(connection["edges"]))
            info = connection["pageInfo"]
            after = info.get("endCursor") or after
            nodes = [edge["node"] for edge in connection["edges"]]
            yield RawPage(nodes, cursor=after, last=not info.get("hasNextPage"))

    def _start_read(self) -> None:
        """A read's stats start here: requests sent before (a check, a write-back, the
        previous read's trailing queries) are not counted in its pages."""
        self._counter.restart()

    def _page_stats(self) -> dict[str, int]:
        """Requests, retries and throttle waits since the last page was reported. Counting
        from the previous page rather than from this page's own query keeps in the sync
        report the count query that chose the read path and a bulk operation's creation,
        polls and download (a 429 or 5xx on those was retried but reported as 0 retries)."""
        return self._counter()

    def read_customers(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Customer]]:
        """Customers updated at or after ``updated_since``; a full read that paging would make
        wait longer than a bulk operation takes goes through :meth:`backfill_customers`."""
        self._start_read()
        full = updated_since is None and cursor is None and self.bulk_threshold is not None
        if full and self._use_bulk(
            "customers", self._count(queries.CUSTOMERS_COUNT, "customersCount")
        ):
            try:
                pages = self.backfill_customers()
            except BulkFailedError as exc:
                log.warning("reading customers by paging instead: %s", exc)
            else:
                self.read_path["customers"] = "bulk"
                return pages
        self.read_path["customers"] = "paging"
        return self._read(
            "customers",
            queries.CUSTOMER_FIELDS,
            lambda node: customer_from_graphql(node, shop=self.shop),
            updated_since,
            cursor,
        )

    def read_products(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Product]]:
        self._start_read()
        currency = self.currency()
        return self._read(
            "products",
            queries.PRODUCT_FIELDS,
            lambda node: product_from_graphql(node, shop=self.shop, currency=currency),
            updated_since,
            cursor,
        )

    def read_orders(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        """Orders updated at or after ``updated_since``; a read that paging would make wait
        longer than a bulk operation takes goes through :meth:`backfill_orders`."""
        self._start_read()
        counted = cursor is None and self.bulk_threshold is not None
        if counted and self._use_bulk("orders", self.count_orders(updated_since)):
            try:
                pages = self.backfill_orders(updated_since)
            except BulkFailedError as exc:
                log.warning("reading orders by paging instead: %s", exc)
            else:
                self.read_path["orders"] = "bulk"
                return pages
        self.read_path["orders"] = "paging"
        return self._read(
            "orders",
            queries.ORDER_FIELDS,
            lambda node: order_from_graphql(node, shop=self.shop),
            updated_since,
            cursor,
            complete=self._complete_order,
        )

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
        """Orders and products deleted since then, from the GraphQL ``events`` query
        (``action:destroy``; a GraphQL-only app has no REST Events API). Shopify keeps no
        such event for customers: their deletion reaches shopsync only through the
        ``customers/delete`` and ``customers/redact`` webhooks."""
        kinds: dict[str, Resource] = {"ORDER": "orders", "PRODUCT": "products"}
        for subject, kind in kinds.items():
            search = f"subject_type:{subject} AND action:destroy"
            if updated_since is not None:
                search += f" AND created_at:>='{_iso(updated_since)}'"
            after: str | None = None
            while True:
                data = self.graphql(
                    queries.DELETIONS,
                    {"first": MAX_PAGE, "after": after, "query": search},
                    requested=2 + connection_multiplier(MAX_PAGE),
                )["data"]
                connection = data.get("events") if isinstance(data, dict) else None
                if not isinstance(connection, dict):
                    raise ResponseError("events answer has no connection", platform=PLATFORM)
                for event in connection.get("nodes") or ():
                    if not event or event.get("action") != "destroy":
                        continue
                    yield Deletion(
                        kind, parse_gid(event["subjectId"]), _parse_time(event["createdAt"])
                    )
                info = connection.get("pageInfo") or {}
                if not info.get("hasNextPage"):
                    break
                after = info.get("endCursor")

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """A verified delivery, mapped (see :func:`shopsync_shopify.webhooks.parse_webhook`)."""
        return parse_webhook(headers, raw_body, secret)

    @staticmethod
    def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
        """Map a quarantined record again: a GraphQL node (its id is a GID) or a webhook
        payload (REST-shaped). Products need the shop currency and are re-read by a sync."""
        try:
            node = json.loads(raw)
        except ValueError:
            raise InvalidRecordError("quarantined payload is not JSON", raw=raw) from None
        if not isinstance(node, dict):
            raise InvalidRecordError("quarantined payload is not an object", raw=raw)
        graphql = str(node.get("id", "")).startswith("gid://")
        if resource == "orders":
            return (
                order_from_graphql(node, shop=shop)
                if graphql
                else order_from_webhook(node, shop=shop)
            )
        if resource == "customers":
            return (
                customer_from_graphql(node, shop=shop)
                if graphql
                else customer_from_webhook(node, shop=shop)
            )
        raise InvalidRecordError(
            f"{resource} are re-read by a sync (shopsync sync shopify --full -r {resource})",
            raw=raw,
        )

    def count_orders(self, updated_since: dt.datetime | None = None) -> int:
        return self._count(queries.ORDERS_COUNT, "ordersCount", updated_since)

    def _count(self, query: str, root: str, updated_since: dt.datetime | None = None) -> int:
        search = None
        if updated_since is not None:
            search = f"updated_at:>='{updated_since.astimezone(dt.timezone.utc).isoformat()}'"
        data = self.graphql(query, {"query": search}, requested=1)["data"]
        return int(data[root]["count"])

    def order_window(self) -> dt.datetime | None:
        """The creation time before which Shopify hides orders from this token: 60 days
        ago without ``read_all_orders`` (silently: the API answers as if there were no
        older orders; https://shopify.dev/docs/api/usage/access-scopes), else None."""
        if self._granted is None:
            try:
                self._granted = self.granted_access()
            except (PlatformError, TransportError) as exc:  # say nothing rather than guess
                log.info("could not read the granted scopes: %s", exc)
                return None
        if "read_all_orders" in self._granted:
            return None
        return dt.datetime.now(dt.timezone.utc) - ORDER_WINDOW

    def read_limits(self) -> list[str]:
        """What this token cannot see, one sentence each naming the fix (sync report)."""
        since = self.order_window()
        if since is None:
            return []
        return [
            f"orders: Shopify shows this app only the last 60 days (since {since:%Y-%m-%d}) "
            "because the token lacks read_all_orders; older orders were not read. "
            + self.access_notes(frozenset())[0].split(": ", 1)[1]
        ]

    def config_problems(self) -> list[str]:
        """What in this adapter's settings stops it working right today (``shopsync check``):
        an API version Shopify no longer supports, or one that is not a stable version."""
        problem = version_problem(self.api_version, dt.datetime.now(dt.timezone.utc))
        return [problem] if problem else []

    def access_notes(self, granted: frozenset[str]) -> list[str]:
        """What the granted scopes mean beyond a missing name (``shopsync check``)."""
        if "read_all_orders" in granted:
            return []
        return [
            "without read_all_orders Shopify returns only the orders of the last 60 days, "
            "silently: a custom app adds it under Admin API access scopes; a public app must "
            "first request it from Shopify (Partner Dashboard > the app > API access > "
            "Access requests: read_all_orders), then ask for it at install"
        ]

    def granted_access(self) -> frozenset[str]:
        """The scopes the token holds (``GET /admin/oauth/access_scopes.json``, one cheap
        authenticated read); a ``write_`` scope implies its ``read_`` one, as on Shopify."""
        url = f"{self.base_url}/admin/oauth/access_scopes.json"
        body = self.http.json(
            "GET", url, headers={"X-Shopify-Access-Token": self._token.get_secret_value()}
        )
        rows = body.get("access_scopes") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise ResponseError(f"no access_scopes in GET {redact_url(url)}", platform=PLATFORM)
        handles = {str(r["handle"]) for r in rows if isinstance(r, dict) and r.get("handle")}
        implied = {"read_" + h[len("write_") :] for h in handles if h.startswith("write_")}
        return frozenset(handles | implied)

    def currency(self) -> str:
        if self._currency is None:
            self._currency = str(
                self.graphql(queries.SHOP, requested=1)["data"]["shop"]["currencyCode"]
            )
        return self._currency

    def _complete_order(self, node: dict[str, Any]) -> dict[str, Any]:
        """Fetch what a page's nested limits cut off (long orders are rare; pay for them only)."""
        lines = node.get("lineItems") or {}
        info = lines.get("pageInfo") or {}
        if info.get("hasNextPage"):
            items = list(lines.get("nodes") or ())
            after = info.get("endCursor")
            while True:
                data = self.graphql(
                    queries.ORDER_LINES, {"id": node["id"], "after": after}, requested=800
                )["data"]
                more = data["order"]["lineItems"]
                items.extend(more["nodes"])
                if not more["pageInfo"]["hasNextPage"]:
                    break
                after = more["pageInfo"]["endCursor"]
            node = {**node, "lineItems": {"nodes": items}}
        for key, query in (
            ("refunds", queries.ORDER_REFUNDS),
            ("fulfillments", queries.ORDER_FULFILLMENTS),
        ):
            children = node.get(key) or []
            child_conn = "refundLineItems" if key == "refunds" else "fulfillmentLineItems"
            overflow = len(children) >= queries.NESTED_LIMIT or any(
                ((c.get(child_conn) or {}).get("pageInfo") or {}).get("hasNextPage")
                for c in children
            )
            if overflow:
                data = self.graphql(query, {"id": node["id"], "nested": 20}, requested=900)["data"]
                fetched = data["order"][key]
                truncated = len(fetched) >= 10 or any(
                    ((c.get(child_conn) or {}).get("pageInfo") or {}).get("hasNextPage")
                    for c in fetched
                )
                if truncated:
                    raise InvalidRecordError(
                        f"more {key} than a paged read fetches; read it with backfill_orders()",
                        raw=node,
                        path=key,
                    )
                node = {**node, key: fetched}
        if node.get("edited") is True and "currentTotalPriceSet" not in node:
            node = self._current_figures(node)
        return node

    def _current_figures(self, node: dict[str, Any]) -> dict[str, Any]:
        """An edited order's ``current*`` totals and its refunds with their tax, which a page
        leaves out (``queries.CURRENT``: edited orders are few, their 8 points a node are
        not); :func:`._order_facts.after_edits` stores the order after edits from them."""
        data = self.graphql(queries.ORDER_CURRENT, {"id": node["id"], "nested": 20}, requested=250)
        fetched = data["data"]["order"]
        refunds = fetched.get("refunds") or []
        if len(refunds) >= 10 or any(
            ((r.get("refundLineItems") or {}).get("pageInfo") or {}).get("hasNextPage")
            for r in refunds
        ):
            raise InvalidRecordError(
                "more refunds than a paged read fetches; read it with backfill_orders()",
                raw=node,
                path="refunds",
            )
        return {**node, **fetched}

    # ------------------------------------------------------------------ write side

    def find_discount_code(self, code: str) -> dict[str, Any] | None:
        """The code discount with this code (``{"id", "code", "ends_at", "status"}``), or None."""
        node = self.graphql(queries.DISCOUNT_BY_CODE, {"code": code}, requested=2)["data"].get(
            "codeDiscountNodeByCode"
        )
        if not node:
            return None
        found = node.get("codeDiscount") or {}
        return {
            "id": node["id"],
            "code": code,
            "ends_at": found.get("endsAt"),
            "status": found.get("status"),
        }

    def create_discount_code(
        self,
        code: str,
        *,
        customer: Customer,
        amount: Money | None = None,
        percent: int | None = None,
        starts_at: dt.datetime,
        expires_at: dt.datetime,
        title: str = "",
    ) -> dict[str, Any]:
        """A single-use code only this customer can use, until ``expires_at``: ``amount`` off
        the order, or ``percent`` off (:class:`shopsync.adapter.DiscountWriter`).

        Looked up by code first, so a retry after a crash finds the code instead of making a
        second one; ``created`` in the answer says which happened. A ``TAKEN`` answer (another
        writer was quicker) is resolved the same way.
        """
        if (amount is None) == (percent is None):
            raise ConfigurationError("create_discount_code needs an amount or a percent")
        found = self.find_discount_code(code)
        if found is not None:
            return {**found, "created": False}
        value: dict[str, Any] = (
            {"percentage": percent / 100}
            if percent is not None
            else {"discountAmount": {"amount": str(amount.amount), "appliesOnEachItem": False}}  # type: ignore[union-attr]
        )
        variables = {
            "input": {
                "title": title[:255] or code,
                "code": code,
                "startsAt": _iso(starts_at),
                "endsAt": _iso(expires_at),
                "context": {"customers": {"add": [gid("Customer", customer.id)]}},
                "customerGets": {"value": value, "items": {"all": True}},
                "usageLimit": 1,
                "appliesOncePerCustomer": True,
            }
        }
        payload = self.graphql(queries.DISCOUNT_CREATE, variables, requested=10)["data"][
            "discountCodeBasicCreate"
        ]
        errors = payload.get("userErrors") or []
        if any(e.get("code") == "TAKEN" for e in errors):
            again = self.find_discount_code(code)
            if again is not None:
                return {**again, "created": False}
        _raise_user_errors("discountCodeBasicCreate", errors)
        node = payload["codeDiscountNode"]
        return {"id": node["id"], "code": code, "ends_at": _iso(expires_at), "created": True}

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Add tags to a customer (tags already there stay; adding twice changes nothing)."""
        payload = self.graphql(
            queries.TAGS_ADD,
            {"id": gid("Customer", customer_id), "tags": list(tags)},
            requested=10,
        )["data"]["tagsAdd"]
        _raise_user_errors("tagsAdd", payload.get("userErrors"))

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        payload = self.graphql(
            queries.TAGS_REMOVE,
            {"id": gid("Customer", customer_id), "tags": list(tags)},
            requested=10,
        )["data"]["tagsRemove"]
        _raise_user_errors("tagsRemove", payload.get("userErrors"))

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        """Set metafields ``{namespace}.{key}`` on a customer in one ``metafieldsSet`` (an
        upsert: setting the same value again changes nothing); an int is a
        ``number_integer``, text a ``single_line_text_field``."""
        owner = gid("Customer", customer_id)
        metafields = [
            {
                "ownerId": owner,
                "namespace": namespace,
                "key": key,
                "value": str(value),
                "type": "number_integer" if isinstance(value, int) else "single_line_text_field",
            }
            for key, value in values.items()
        ]
        payload = self.graphql(queries.METAFIELDS_SET, {"metafields": metafields}, requested=10)[
            "data"
        ]["metafieldsSet"]
        _raise_user_errors("metafieldsSet", payload.get("userErrors"))


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _raise_user_errors(mutation: str, errors: Any) -> None:
    """A mutation's ``userErrors`` as a non-retryable :class:`PlatformError` (the request was
    understood and refused: sending it again gets the same answer)."""
    if not errors:
        return
    message = "; ".join(
        f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}"
        for e in errors
        if isinstance(e, dict)
    )
    error = PlatformError(f"{mutation} refused: {message}", status=200, platform=PLATFORM)
    error.codes = {e.get("code") for e in errors if isinstance(e, dict)}  # type: ignore[attr-defined]
    raise error


def _max_cost(exc: PlatformError) -> float | None:
    if "MAX_COST_EXCEEDED" not in getattr(exc, "codes", set()):
        return None
    for error in (getattr(exc, "body", None) or {}).get("errors") or ():
        cost = (error.get("extensions") or {}).get("cost")
        if cost is not None:
            return float(cost)
    return None


def _parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ResponseError(f"event time without offset: {value!r}", platform=PLATFORM)
    return moment.astimezone(dt.timezone.utc)
