"""A tiny emulated platform, "toyshop", for the toy adapter that proves docs/adapters/writing.md.

Its API is made up and small on purpose: records travel as shopsync's own JSON, so the
adapter's mapping is one ``model_validate`` and the page is about everything else (paging,
retries, capabilities, webhooks, write-back). Routes, all under ``/api`` and all requiring
``Authorization: Bearer <token>``:

- ``GET /api/{customers,orders,products}?updated_min=ISO&after=CURSOR&limit=N``: records
  by ``(updated_at, id)``; ``{"items": [...], "next": CURSOR | null}``
- ``GET /api/deletions?since=ISO``: ``{"items": [{"resource", "id", "deleted_at"}]}``
- ``POST /api/customers/{id}/tags`` ``{"add": [...], "remove": [...]}``
- ``PUT /api/customers/{id}/fields/{namespace}`` ``{"values": {key: text}}``
- ``GET /api/discounts/{code}``; ``POST /api/discounts`` (409 when the code is taken)

Webhooks carry ``X-Toy-Topic``, ``X-Toy-Delivery`` and ``X-Toy-Signature`` (base64
HMAC-SHA256 of the body with the subscription's secret); the topics are the neutral ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
from typing import Any, ClassVar

from shopsync.testing import Delivery, Event, Request, Response, ShopState, Subscription

TOKEN = "toy-token"
RESOURCES = ("customers", "orders", "products", "checkouts")


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _cursor(record: Any) -> str:
    return f"{record.updated_at.isoformat()}|{int(record.id):012d}"


class ToyEmulator:
    platform: ClassVar[str] = "toyshop"

    @classmethod
    def default_shop(cls, seed: int) -> str:
        return f"toy-{seed}"

    def __init__(self, state: ShopState, **options: Any) -> None:
        self.state = state
        self.fields: dict[tuple[str, str], dict[str, str]] = {}
        self.discounts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._deliveries = itertools.count(1)

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"shop": self.state.shop, "token": TOKEN, "base_url": base_url}

    def rate_limited(self, retry_after: float) -> Response:
        return Response.json({"error": "slow down"}, 429, {"Retry-After": f"{retry_after:g}"})

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response.json({"error": "unauthorized"}, 401)
        parts = request.path.strip("/").split("/")
        if parts[0] != "api" or len(parts) < 2:
            return Response.json({"error": "no such route"}, 404)
        head, rest = parts[1], parts[2:]
        if request.method == "GET" and head in RESOURCES and not rest:
            return self._list(head, request.query)
        if request.method == "GET" and head == "deletions":
            return self._deletions(request.query)
        if head == "customers" and len(rest) >= 2:
            with self.state.lock:
                if rest[0] not in self.state.customers:
                    return Response.json({"error": "no such customer"}, 404)
            if request.method == "POST" and rest[1] == "tags":
                return self._tags(rest[0], request.json() or {})
            if request.method == "PUT" and rest[1] == "fields" and len(rest) == 3:
                values = (request.json() or {}).get("values") or {}
                with self._lock:
                    held = self.fields.setdefault((rest[0], rest[2]), {})
                    held.update({str(k): str(v) for k, v in values.items()})
                    return Response.json(dict(held))
        if head == "discounts":
            return self._discount(request, rest)
        return Response.json({"error": "no such route"}, 404)

    def _render(self, resource: str, record: Any) -> dict[str, Any]:
        body: dict[str, Any] = record.model_dump(mode="json")
        if self.state.faults.corrupt(resource, record.id):
            body["updated_at"] = "yesterday"
        return body

    def _list(self, resource: str, query: dict[str, str]) -> Response:
        since = dt.datetime.fromisoformat(query["updated_min"]) if "updated_min" in query else None
        after = query.get("after", "")
        limit = min(int(query.get("limit", "50")), 100)
        rows = [
            r
            for r in self.state.ordered(resource, "updated_at")
            if (since is None or r.updated_at >= since) and _cursor(r) > after
        ][: limit + 1]
        page = rows[:limit]
        items = [self._render(resource, r) for r in page]
        nxt = _cursor(page[-1]) if len(rows) > limit else None
        return Response.json({"items": items, "next": nxt})

    def _deletions(self, query: dict[str, str]) -> Response:
        since = dt.datetime.fromisoformat(query["since"]) if "since" in query else None
        with self.state.lock:
            gone = sorted(self.state.deleted.items(), key=lambda kv: kv[1])
        items = [
            {"resource": resource, "id": record_id, "deleted_at": at.isoformat()}
            for (resource, record_id), at in gone
            if since is None or at >= since
        ]
        return Response.json({"items": items})

    def _tags(self, customer_id: str, body: dict[str, Any]) -> Response:
        with self.state.lock:
            old = set(self.state.customers[customer_id].tags)
            new = (old | set(body.get("add") or ())) - set(body.get("remove") or ())
            if new != old:
                self.state.update_customer(customer_id, tags=tuple(sorted(new)))
        return Response.json({"tags": sorted(new)})

    def _discount(self, request: Request, rest: list[str]) -> Response:
        if request.method == "GET" and len(rest) == 1:
            found = self.discounts.get(rest[0].lower())
            return Response.json(found) if found else Response.json({"error": "none"}, 404)
        if request.method != "POST" or rest:
            return Response.json({"error": "no such route"}, 404)
        body = request.json() or {}
        code = str(body.get("code") or "").lower()
        if not code or body.get("customer_id") not in self.state.customers:
            return Response.json({"error": "code and an existing customer_id are required"}, 422)
        with self._lock:
            if code in self.discounts:
                return Response.json({"error": "code_taken"}, 409)
            made = {"id": f"d{len(self.discounts) + 1}", **body, "code": code}
            self.discounts[code] = made
        return Response.json(made, 201)

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        if subscription.topic != event.topic or event.resource not in RESOURCES:
            return None
        payload: dict[str, Any] = {"shop": self.state.shop, "resource": event.resource}
        if event.topic.endswith(".deleted") or event.record is None:
            payload.update(id=event.record_id, deleted_at=event.at.isoformat())
        else:
            payload["record"] = event.record.model_dump(mode="json")
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = f"toy-{next(self._deliveries)}"
        headers = {
            "Content-Type": "application/json",
            "X-Toy-Topic": subscription.topic,
            "X-Toy-Delivery": delivery_id,
            "X-Toy-Signature": sign(subscription.secret or "", body),
        }
        return Delivery(headers, body, delivery_id)
