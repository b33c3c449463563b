"""Paged reads of :class:`~shopsync_shopify.adapter.ShopifyAdapter`: page sizes that fit
Shopify's cost cap, and the estimate that chooses between paging and a bulk operation.

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
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar

from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage, RequestCounter
from shopsync.errors import PlatformError
from shopsync.models import Customer, Order, Product
from shopsync_shopify import queries
from shopsync_shopify._bulk import record_gid
from shopsync_shopify._cost import connection_multiplier, largest_first
from shopsync_shopify._transport import GraphQLTransport, max_cost

__all__ = ["BULK_OVERHEAD_SECONDS", "BULK_THRESHOLD", "MAX_PAGE", "CostPaging"]

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
_START_SIZE = {"customers": 100, "orders": 20, "products": 50}
"""First page sizes, chosen to fit the cap under the 2025-07 pricing before any answer."""
_NODE_PRIOR = {"customers": 6.0, "orders": 165.0, "products": 16.0}
"""Requested cost of one node of each page query under Shopify's published rules, for the
read-path estimate before Shopify has priced the query (then its answer replaces it)."""
_ACTUAL_PRIOR = {"customers": 0.25, "orders": 12.0, "products": 0.7}
"""Actual points per record before a page was read: measured on the emulator's realistic shop
(``benchmarks/shopify_read.py``: 11.8 points an order at 22 a page); replaced by what
Shopify charges once a page has been read."""
R = TypeVar("R", Customer, Order, Product)


class CostPaging(GraphQLTransport):
    """Page sizing, the read-path estimate and the page loop (a part of the adapter)."""

    page_size: int | None
    bulk_threshold: int | Literal["auto"] | None
    bulk_overhead: float
    _counter: RequestCounter
    _per_node: dict[str, float]
    _cap: dict[str, int]
    _per_record: dict[str, float]

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
                cost = max_cost(exc)
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
