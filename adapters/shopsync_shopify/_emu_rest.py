"""The REST Admin API subset of the emulated shop: ``shop``, ``events``, ``customers``,
``orders`` and ``products``, each ``.json``.

Lists page with ``Link``-header cursors exactly as ShopifyAPI parses them (``page_info``
carries the filters; nothing else may come with it, ``page`` is refused), ``limit`` 1-250
(https://shopify.dev/docs/api/usage/pagination-rest). Every call, known path or not, takes
one from the 40-call bucket that leaks 2 per second and is told in
``X-Shopify-Shop-Api-Call-Limit``; a full bucket answers 429 with ``Retry-After``
(https://shopify.dev/docs/api/usage/rate-limits#rest-admin-api-rate-limits).
"""

from __future__ import annotations

import base64
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shopsync.testing.routes import Handler
from shopsync.testing.server import Request, Response
from shopsync_shopify import _render as render
from shopsync_shopify._emu_graphql import MAX_PAGE
from shopsync_shopify._emu_query import compared, parse_when

if TYPE_CHECKING:
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = ["RestApi", "RestHandler"]

RestHandler = Callable[[Request, Mapping[str, str], dict[str, str]], Response]
"""A REST handler: the request, the route's placeholders and the call-limit headers."""

_REST_LIMIT_MESSAGE = (
    "Exceeded 2 calls per second for api client. "
    "Reduce request rates to resume uninterrupted service."
)
_RENDERERS: dict[str, Callable[..., dict[str, Any]]] = {
    "customers": render.customer_rest,
    "orders": render.order_rest,
    "products": render.product_rest,
}


class RestApi:
    """The REST handlers over one emulator's shop state."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def rate_limited(self, retry_after: float) -> Response:
        size = int(self.emu.rest_bucket.size)
        return Response.json(
            {"errors": _REST_LIMIT_MESSAGE},
            status=429,
            headers={
                "Retry-After": f"{retry_after:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": f"{size}/{size}",
            },
        )

    def metered(self, handler: RestHandler) -> Handler:
        """``handler`` behind the REST bucket: a call it cannot hold is a 429."""

        def call(request: Request, params: Mapping[str, str]) -> Response:
            bucket = self.emu.rest_bucket
            with bucket.lock:
                used = bucket.size - bucket.available()
                if used + 1 > bucket.size:
                    self.emu.stats["rest_429"] += 1
                    return self.rate_limited(round(1.0 / bucket.rate, 1))
                bucket.take(1)
                used = round(bucket.size - bucket.available())
            self.emu.stats["rest"] += 1
            headers = {
                "X-Shopify-Shop-Api-Call-Limit": f"{used}/{int(bucket.size)}",
                "X-Request-Id": str(uuid.uuid4()),
            }
            return handler(request, params, headers)

        return call

    @staticmethod
    def not_found(request: Request, params: Mapping[str, str], headers: dict[str, str]) -> Response:
        return Response.json({"errors": "Not Found"}, status=404, headers=headers)

    def shop(
        self, request: Request, params: Mapping[str, str], headers: dict[str, str]
    ) -> Response:
        state = self.emu.state
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

    def collection(
        self, request: Request, params: Mapping[str, str], headers: dict[str, str]
    ) -> Response:
        """``GET <resource>.json``."""
        return self._list(request, params["version"], params["resource"], headers)

    def count(
        self, request: Request, params: Mapping[str, str], headers: dict[str, str]
    ) -> Response:
        """``GET <resource>/count.json``, with the list's filters."""
        rows, _ = self._rows(params["resource"], request.query)
        return Response.json({"count": len(rows)}, headers=headers)

    def one(self, request: Request, params: Mapping[str, str], headers: dict[str, str]) -> Response:
        """``GET <resource>/<id>.json``."""
        resource = params["resource"]
        found = self.emu.state.records(resource).get(params["id"])
        if found is None:
            return self.not_found(request, params, headers)
        singular = resource[:-1]
        return Response.json(
            {singular: _RENDERERS[resource](found, self.emu.state)}, headers=headers
        )

    def events(
        self, request: Request, params: Mapping[str, str], headers: dict[str, str]
    ) -> Response:
        """``GET events.json``: only the deletion events (``verb=destroy``), the one kind a
        sync needs, filtered by ``filter`` (Order, Product), ``created_at_min`` and paged
        with ``since_id`` and ``limit`` in id order, as Shopify pages events."""
        query = request.query
        try:
            limit = int(query.get("limit", 50))
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_PAGE:
            return Response.json(
                {"errors": {"limit": f"must be between 1 and {MAX_PAGE}"}},
                status=400,
                headers=headers,
            )
        subjects = {"orders": "Order", "products": "Product", "customers": "Customer"}
        with self.emu.state.lock:
            deleted = sorted(self.emu.state.deleted.items(), key=lambda item: (item[1], item[0]))
        wanted = {s.strip() for s in query.get("filter", "").split(",") if s.strip()}
        since_id = int(query.get("since_id") or 0)
        low = parse_when(query["created_at_min"]) if query.get("created_at_min") else None
        events = []
        for number, ((resource, record_id), at) in enumerate(deleted, start=1):
            subject = subjects.get(resource)
            if subject is None or (wanted and subject not in wanted) or number <= since_id:
                continue
            if query.get("verb", "destroy") != "destroy" or (low is not None and at < low):
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

    def _rows(self, resource: str, params: Mapping[str, str]) -> tuple[list[Any], str]:
        order = params.get("order", "id asc").split()
        by = order[0] if order and order[0] in ("id", "updated_at", "created_at") else "id"
        rows = self.emu.window(resource, self.emu.state.ordered(resource, by))
        tests: list[Callable[[Any], bool]] = []
        for name in ("updated_at", "created_at"):
            if params.get(f"{name}_min"):
                low = parse_when(params[f"{name}_min"])
                tests.append(compared(operator.attrgetter(name), operator.ge, low))
            if params.get(f"{name}_max"):
                high = parse_when(params[f"{name}_max"])
                tests.append(compared(operator.attrgetter(name), operator.le, high))
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

    def _list(
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
        rows, _ = self._rows(resource, filters)
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
        rendered = [renderer(r, self.emu.state) for r in items]
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
