"""The GraphQL Admin API of the emulated shop: ``POST /admin/api/<version>/graphql.json``.

Cost is computed from the query before it runs (Shopify's rules, see :mod:`._graphql`) and
taken from a per-shop leaky bucket; the difference to the actual cost is refunded, every
answer carries ``extensions.cost.throttleStatus``, a request the bucket cannot hold is
``THROTTLED`` (HTTP 200, ``actualQueryCost: null``) and one above the single-query limit is
``MAX_COST_EXCEEDED`` (https://shopify.dev/api/usage/rate-limits). Connections page with
``first``/``after`` (max 250), ``query:`` filters and ``sortKey`` tie-broken by id.
Mutations are in :mod:`._emu_writes` (write-back) and :mod:`._emu_bulk` (bulk operations).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, OperationDefinitionNode

from shopsync.testing.server import Request, Response
from shopsync_shopify import _render as render
from shopsync_shopify._checkouts import checkout_graphql
from shopsync_shopify._emu_events import deletion_events
from shopsync_shopify._emu_query import (
    Lazy,
    Reversed,
    decode_key,
    encode_key,
    search_filter,
    sort_key,
)
from shopsync_shopify._graphql import Connection, QueryError
from shopsync_shopify.mapping import gid, parse_gid

if TYPE_CHECKING:
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = ["MAX_PAGE", "MAX_QUERY_COST", "RATE_DOC", "GraphQLApi"]

MAX_QUERY_COST = 1000
MAX_PAGE = 250
RATE_DOC = "https://shopify.dev/api/usage/rate-limits"
_SORTS = {
    "ID": "id",
    "CHECKOUT_ID": "id",
    "UPDATED_AT": "updated_at",
    "CREATED_AT": "created_at",
}


class GraphQLApi:
    """The GraphQL handler and resolvers over one emulator's shop state."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def _throttle_status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": float(self.emu.gql_bucket.size),
            "currentlyAvailable": int(self.emu.gql_bucket.available()),
            "restoreRate": float(self.emu.gql_bucket.rate),
        }

    def handle(self, request: Request, params: Mapping[str, str]) -> Response:
        self.emu.stats["graphql"] += 1
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
            prepared = self.emu.executor.prepare(query)
            operation = prepared.operation(body.get("operationName"))
            variables = self.emu.executor.variables(operation, body.get("variables"))
            requested = self.emu.executor.requested_cost(prepared, operation, variables)
        except QueryError as exc:
            return Response.json({"errors": getattr(exc, "all", None) or [exc.as_json()]})
        except GraphQLError as exc:
            return Response.json({"errors": [{"message": exc.message}]})
        if requested > self.emu.max_query_cost:
            return Response.json(
                {
                    "errors": [
                        {
                            "message": (
                                f"Query cost is {requested}, which exceeds the single query "
                                f"max cost limit ({self.emu.max_query_cost}). Use bulk operations "
                                "for larger reads."
                            ),
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": self.emu.max_query_cost,
                                "documentation": RATE_DOC,
                            },
                        }
                    ]
                }
            )
        bucket = self.emu.gql_bucket
        with bucket.lock:
            if requested > bucket.available():
                self.emu.stats["throttled"] += 1
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
                    status=self.emu.throttle_status,
                )
            bucket.take(requested)
        errors: list[dict[str, Any]] = []
        try:
            data, actual = self.emu.executor.execute(
                prepared, operation, variables, self._root(request, params["version"], operation)
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

    def renderer(self, resource: str) -> Callable[[Any], dict[str, Any]]:
        renderers: dict[str, Callable[..., dict[str, Any]]] = {
            "customers": render.customer_graphql,
            "orders": render.order_graphql,
            "products": render.product_graphql,
            "checkouts": checkout_graphql,
        }
        fn = renderers[resource]
        if resource == "customers":
            return lambda record: self.emu.mutations.with_metafields(
                fn(record, self.emu.state), record.id
            )
        return lambda record: fn(record, self.emu.state)

    def _root(
        self, request: Request, version: str, operation: OperationDefinitionNode
    ) -> dict[str, Any]:
        state = self.emu.state

        def single(resource: str) -> Callable[[dict[str, Any]], Any]:
            def resolve(args: dict[str, Any]) -> Any:
                found = state.records(resource).get(parse_gid(args["id"]))
                if found is None or not self.emu.visible(resource, found):
                    return None
                return self.renderer(resource)(found)

            return resolve

        def count(resource: str) -> Callable[[dict[str, Any]], Any]:
            def resolve(args: dict[str, Any]) -> Any:
                matches = search_filter(args.get("query"))
                rows = self.emu.window(resource, state.ordered(resource))
                n = sum(1 for r in rows if matches(r)) if matches else len(rows)
                limit = args.get("limit", 10000)
                if limit is not None and n > limit:
                    return {"count": limit, "precision": "AT_LEAST"}
                return {"count": n, "precision": "EXACT"}

            return resolve

        if operation.operation.value == "mutation":
            return {
                "bulkOperationRunQuery": lambda args: self.emu.bulk.run(request, version, args),
                "bulkOperationCancel": self.emu.bulk.cancel,
                "discountCodeBasicCreate": self.emu.mutations.discount_create,
                "tagsAdd": lambda args: self.emu.mutations.tags(args, add=True),
                "tagsRemove": lambda args: self.emu.mutations.tags(args, add=False),
                "metafieldsSet": self.emu.mutations.metafields_set,
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
                self.emu.bulk.render_op(self.emu.bulk_ops[max(self.emu.bulk_ops, key=int)])
                if self.emu.bulk_ops
                else None
            ),
            "ordersCount": count("orders"),
            "customersCount": count("customers"),
            "productsCount": count("products"),
            "codeDiscountNodeByCode": self.emu.mutations.discount_by_code,
            "events": lambda args: deletion_events(dict(state.deleted), args),
            "abandonedCheckouts": lambda args: self._page("checkouts", args),  # issue 22
        }

    def _node(self, node_id: str) -> Any:
        kind = node_id.split("/")[-2] if node_id.startswith("gid://") else ""
        if kind == "BulkOperation":
            op = self.emu.bulk_ops.get(parse_gid(node_id))
            return self.emu.bulk.render_op(op) if op else None
        resource = {"Order": "orders", "Customer": "customers", "Product": "products"}.get(kind)
        if resource is None:
            return None
        found = self.emu.state.records(resource).get(parse_gid(node_id))
        if found is None or not self.emu.visible(resource, found):
            return None
        return self.renderer(resource)(found)

    def rows(self, resource: str, sort_key: str | None, query: str | None) -> tuple[list[Any], str]:
        by = _SORTS.get(sort_key or "ID", "id")
        rows = self.emu.window(resource, self.emu.state.ordered(resource, by))
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
        rows, by = self.rows(resource, args.get("sortKey"), args.get("query"))
        if args.get("reverse"):
            rows = rows[::-1]
        keys = (
            [sort_key(r, by) for r in rows] if (args.get("after") or args.get("before")) else None
        )
        start, end = 0, len(rows)
        reverse = bool(args.get("reverse"))
        if keys is not None:
            if reverse:
                keys = [Reversed(k) for k in keys]  # type: ignore[misc]
            if args.get("after"):
                key = decode_key(args["after"], by)
                start = bisect_right(keys, Reversed(key) if reverse else key)
            if args.get("before"):
                key = decode_key(args["before"], by)
                end = bisect_left(keys, Reversed(key) if reverse else key)
        if first is not None:
            end = min(end, start + first)
        if last is not None:
            start = max(start, end - last)
        items = rows[start:end]
        renderer = self.renderer(resource)
        return Connection(
            items=[Lazy(renderer, r) for r in items],
            cursors=[encode_key(sort_key(r, by)) for r in items],
            has_next=end < len(rows),
            has_previous=start > 0,
        )
