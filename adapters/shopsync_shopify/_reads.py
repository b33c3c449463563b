"""What :class:`~shopsync_shopify.adapter.ShopifyAdapter` reads: customers, orders and
products (by paging or one bulk operation, see :mod:`._paging`), what an order's page cut
off, deletions, counts and the shop currency."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

from shopsync.adapter import Deletion, Page, Resource
from shopsync.errors import InvalidRecordError, ResponseError
from shopsync.models import Customer, Order, Product
from shopsync_shopify import queries
from shopsync_shopify._bulk import BulkFailedError, BulkReads
from shopsync_shopify._checkouts import CheckoutTap
from shopsync_shopify._cost import connection_multiplier
from shopsync_shopify._paging import MAX_PAGE, CostPaging, R
from shopsync_shopify._transport import iso
from shopsync_shopify.mapping import (
    PLATFORM,
    customer_from_graphql,
    order_from_graphql,
    parse_gid,
    product_from_graphql,
)

__all__ = ["ShopifyReads"]

log = logging.getLogger("shopsync.shopify")


class ShopifyReads(CostPaging, BulkReads):
    """The read capability of the adapter (a part of it: ``__init__`` is the adapter's)."""

    read_path: dict[str, str]
    _currency: str | None

    def _bulk_if_cheaper(
        self,
        resource: str,
        counted: bool,
        count: Callable[[], int],
        backfill: Callable[[], Iterator[Page[R]]],
    ) -> Iterator[Page[R]] | None:
        """The pages of one bulk operation when the read is ``counted`` and paging its
        ``count()`` records would wait longer than the operation takes; None (read by
        paging) otherwise, or when the operation failed every attempt."""
        if counted and self._use_bulk(resource, count()):
            try:
                pages = backfill()
            except BulkFailedError as exc:
                log.warning("reading %s by paging instead: %s", resource, exc)
            else:
                self.read_path[resource] = "bulk"
                return pages
        self.read_path[resource] = "paging"
        return None

    def read_customers(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Customer]]:
        """Customers updated at or after ``updated_since``; a full read that paging would make
        wait longer than a bulk operation takes goes through :meth:`backfill_customers`."""
        self._start_read()
        full = updated_since is None and cursor is None and self.bulk_threshold is not None
        bulk = self._bulk_if_cheaper(
            "customers",
            full,
            lambda: self._count(queries.CUSTOMERS_COUNT, "customersCount"),
            self.backfill_customers,
        )
        if bulk is not None:
            return bulk
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
        bulk = self._bulk_if_cheaper(
            "orders",
            counted,
            lambda: self.count_orders(updated_since),
            lambda: self.backfill_orders(updated_since),
        )
        if bulk is not None:
            return bulk
        tap = CheckoutTap()  # the checkouts the orders were placed from (checkoutToken)
        pages = self._read(
            "orders",
            queries.for_version(queries.ORDER_FIELDS, self.api_version),
            tap.mapped(lambda node: order_from_graphql(node, shop=self.shop)),
            updated_since,
            cursor,
            complete=self._complete_order,
        )
        return tap.pages(pages)

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
        """Orders and products deleted since then, from the GraphQL ``events`` query
        (``action:destroy``; a GraphQL-only app has no REST Events API). Shopify keeps no
        such event for customers: their deletion reaches shopsync only through the
        ``customers/delete`` and ``customers/redact`` webhooks."""
        kinds: dict[str, Resource] = {"ORDER": "orders", "PRODUCT": "products"}
        for subject, kind in kinds.items():
            search = f"subject_type:{subject} AND action:destroy"
            if updated_since is not None:
                search += f" AND created_at:>='{iso(updated_since)}'"
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

    def count_orders(self, updated_since: dt.datetime | None = None) -> int:
        return self._count(queries.ORDERS_COUNT, "ordersCount", updated_since)

    def _count(self, query: str, root: str, updated_since: dt.datetime | None = None) -> int:
        search = None
        if updated_since is not None:
            search = f"updated_at:>='{updated_since.astimezone(dt.timezone.utc).isoformat()}'"
        data = self.graphql(query, {"query": search}, requested=1)["data"]
        return int(data[root]["count"])

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


def _parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ResponseError(f"event time without offset: {value!r}", platform=PLATFORM)
    return moment.astimezone(dt.timezone.utc)
