"""The toy adapter of docs/adapters/writing.md: reads, deletions, webhooks and write-back of
the made-up "toyshop" platform (:mod:`tests.toy_adapter.emulator`), in a few hundred lines.

Every capability is declared by subclassing its protocol; :func:`shopsync.connect` checks
each declared member is there, and the contract suite checks each one behaves.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from shopsync.adapter import (
    CheckoutReader,
    CustomerFieldWriter,
    Deletion,
    DeletionReader,
    DiscountWriter,
    Page,
    Rejected,
    TagWriter,
    WebhookEvent,
    WebhookParser,
)
from shopsync.checkouts import Checkout
from shopsync.errors import (
    ConfigurationError,
    NotFoundError,
    PlatformError,
    SignatureError,
    WebhookError,
)
from shopsync.http import HttpClient, RetryPolicy
from shopsync.models import Customer, Money, Order, Product

PLATFORM = "toyshop"
M = TypeVar("M", Customer, Order, Product, Checkout)
_MODELS: dict[str, type[BaseModel]] = {
    "customers": Customer,
    "orders": Order,
    "products": Product,
    "checkouts": Checkout,
}


def map_record(resource: str, raw: Any) -> Customer | Order | Product | Checkout:
    """The toy platform speaks shopsync's JSON: mapping is validation. A real adapter maps
    field by field here, raising InvalidRecordError (reason, raw, path) on what it cannot."""
    model = _MODELS[resource]
    return model.model_validate(raw)  # type: ignore[return-value]


class ToyAdapter(
    DeletionReader, WebhookParser, DiscountWriter, TagWriter, CustomerFieldWriter, CheckoutReader
):
    """Reads and writes one toyshop shop: ``shopsync.connect("toyshop", shop=..., token=...)``."""

    platform = PLATFORM
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "customer_id"
    page_size = 50

    def __init__(
        self,
        *,
        shop: str,
        token: str | SecretStr,
        base_url: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if not shop:
            raise ConfigurationError("toyshop: shop is required")
        self.shop = shop
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.base_url = (base_url or f"https://{shop}.toyshop.example").rstrip("/")
        self.http = HttpClient(PLATFORM, policy=retry_policy or RetryPolicy())

    def __repr__(self) -> str:
        return f"ToyAdapter(shop={self.shop!r})"  # never the token

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        return self.http.json(method, f"{self.base_url}/api/{path}", headers=headers, **kwargs)

    # ------------------------------------------------------------------ reading

    def _read(self, resource: str, model: type[M], since: dt.datetime | None) -> Iterator[Page[M]]:
        """Keyset pages in (updated_at, id) order: every page's high water is a safe
        checkpoint, and a record saved during the read comes again at the end."""
        params: dict[str, str] = {"limit": str(self.page_size)}
        if since is not None:
            params["updated_min"] = since.astimezone(dt.timezone.utc).isoformat()
        high_water: dt.datetime | None = None
        while True:
            before = self.http.stats.as_dict()
            body = self._call("GET", resource, params=params)
            records: list[M] = []
            rejected: list[Rejected] = []
            for raw in body["items"]:
                try:
                    record = map_record(resource, raw)
                except ValidationError as exc:
                    reason = str(exc.errors()[0]["msg"]) if exc.errors() else str(exc)
                    rejected.append(Rejected(resource, str(raw.get("id")), json.dumps(raw), reason))
                    continue
                assert isinstance(record, model)
                records.append(record)
                high_water = max(high_water or record.updated_at, record.updated_at)
            after = self.http.stats.as_dict()
            cursor = body["next"] or (_cursor(body["items"][-1]) if body["items"] else "end")
            yield Page(
                records,
                rejected,
                cursor=cursor,
                high_water=high_water,
                stats={k: after[k] - before[k] for k in after},
            )
            if not body["next"]:
                return
            params["after"] = body["next"]

    def read_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Customer]]:
        return self._read("customers", Customer, updated_since)

    def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Order]]:
        return self._read("orders", Order, updated_since)

    def read_products(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Product]]:
        return self._read("products", Product, updated_since)

    def read_checkouts(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Checkout]]:
        return self._read("checkouts", Checkout, updated_since)

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
        params = {"since": updated_since.isoformat()} if updated_since else {}
        for item in self._call("GET", "deletions", params=params)["items"]:
            if item["resource"] in _MODELS:
                at = dt.datetime.fromisoformat(item["deleted_at"]).astimezone(dt.timezone.utc)
                yield Deletion(item["resource"], str(item["id"]), at)

    # ------------------------------------------------------------------ webhooks

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """Verify ``x-toy-signature`` before reading anything, then map the body."""
        given = headers.get("x-toy-signature", "")
        expected = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise SignatureError("missing or wrong X-Toy-Signature")
        try:
            doc = json.loads(raw_body)
            topic, resource = headers["x-toy-topic"], doc["resource"]
        except (ValueError, KeyError) as exc:
            raise WebhookError(f"not a toyshop delivery: {exc}") from None
        event = WebhookEvent(
            topic=topic, shop=doc["shop"], delivery_id=headers.get("x-toy-delivery")
        )
        if topic.endswith(".deleted"):
            at = dt.datetime.fromisoformat(doc["deleted_at"]).astimezone(dt.timezone.utc)
            return _replace(event, deleted=[Deletion(resource, str(doc["id"]), at)])
        try:
            record = map_record(resource, doc["record"])
        except (ValidationError, KeyError) as exc:
            raw = json.dumps(doc.get("record"))
            rejected = Rejected(resource, str((doc.get("record") or {}).get("id")), raw, str(exc))
            return _replace(event, rejected=[rejected])
        return _replace(event, records=[record])

    # ------------------------------------------------------------------ write-back

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self._call("POST", f"customers/{customer_id}/tags", json={"add": list(tags)})

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self._call("POST", f"customers/{customer_id}/tags", json={"remove": list(tags)})

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        body = {"values": {k: str(v) for k, v in values.items()}}
        self._call("PUT", f"customers/{customer_id}/fields/{namespace}", json=body)

    def _find_discount(self, code: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._call("GET", f"discounts/{code.lower()}")
        except NotFoundError:
            return None
        return found

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
        """Looked up first, so a retry after a crash finds the code made before; a 409 (a
        concurrent writer made it) is resolved the same way."""
        if (amount is None) == (percent is None):
            raise ConfigurationError("create_discount_code needs an amount or a percent")
        found = self._find_discount(code)
        if found is not None:
            return {**found, "created": False}
        body = {
            "code": code,
            "customer_id": customer.id,
            "amount": str(amount.amount) if amount is not None else None,
            "percent": percent,
            "usage_limit": 1,
            "starts_at": starts_at.isoformat(),
            "expires_at": expires_at.isoformat(),
            "title": title,
        }
        try:
            made: dict[str, Any] = self._call("POST", "discounts", json=body)
        except PlatformError as exc:
            again = self._find_discount(code) if exc.status == 409 else None
            if again is None:
                raise
            return {**again, "created": False}
        return {**made, "created": True}


def _cursor(raw: Mapping[str, Any]) -> str:
    return f"{raw.get('updated_at')}|{raw.get('id')}"


def _replace(event: WebhookEvent, **changes: Any) -> WebhookEvent:
    return dataclasses.replace(event, **changes)
