"""Write-back through the GraphQL Admin API: code discounts, customer tags and metafields.

``discountCodeBasicCreate`` refuses a code the shop already has (``TAKEN``), customers that
do not exist and an end before the start
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/discountCodeBasicCreate);
``tagsAdd``/``tagsRemove`` take a list or comma-separated tags
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/tagsAdd);
``metafieldsSet`` is all or nothing, at most 25 per call
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsSet).
Every outcome is counted in the emulator's ``writes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shopsync_shopify import _render as render
from shopsync_shopify._emu_query import parse_when
from shopsync_shopify.mapping import gid, parse_gid

if TYPE_CHECKING:
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = ["DiscountCode", "Mutations"]


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


class Mutations:
    """The write-back mutations' resolvers over one emulator's shop state."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def with_metafields(self, node: dict[str, Any], customer_id: str) -> dict[str, Any]:
        """A rendered customer whose ``metafield(namespace:, key:)`` also finds the
        metafields set through ``metafieldsSet``."""
        built_in = node.get("metafield")

        def metafield(args: Mapping[str, Any]) -> dict[str, Any] | None:
            found = self.emu.metafields.get(
                (customer_id, args.get("namespace") or "", args.get("key") or "")
            )
            if found is not None:
                return found
            return built_in(args) if callable(built_in) else None

        node["metafield"] = metafield
        return node

    def discount_by_code(self, args: dict[str, Any]) -> dict[str, Any] | None:
        with self.emu._lock:
            found = self.emu.discounts.get(str(args["code"]).lower())
        return found.render(self.emu.state.clock()) if found is not None else None

    def discount_create(self, args: dict[str, Any]) -> dict[str, Any]:
        """``discountCodeBasicCreate``: a code must be unique in the shop (``TAKEN``), name
        customers that exist, and end after it starts."""
        data = args["basicCodeDiscount"]
        code = str(data.get("code") or "").strip()

        def refuse(field: str, message: str, code_: str) -> dict[str, Any]:
            self.emu.writes[f"discount_{code_.lower()}"] += 1
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
        with self.emu.state.lock:
            missing = [c for c in customers if c not in self.emu.state.customers]
        if missing:
            return refuse("context", f"Customer does not exist: {missing[0]}", "INVALID")
        try:
            starts = parse_when(
                str(data.get("startsAt") or render.fmt_time(self.emu.state.clock()))
            )
            ends = parse_when(data["endsAt"]) if data.get("endsAt") else None
        except (ValueError, TypeError):
            return refuse("startsAt", "is invalid", "INVALID")
        if ends is not None and ends <= starts:
            return refuse("endsAt", "Ends at needs to be after starts_at", "INVALID")
        amount = ((data.get("customerGets") or {}).get("value") or {}).get("discountAmount") or {}
        with self.emu._lock:
            if code.lower() in self.emu.discounts:
                return refuse("code", "Code must be unique. Please try a different code.", "TAKEN")
            discount = DiscountCode(
                id=str(next(self.emu._ids)),
                code=code,
                title=str(data.get("title") or code),
                starts_at=starts,
                ends_at=ends,
                customer_ids=tuple(customers),
                amount=str(amount.get("amount")) if amount.get("amount") is not None else None,
                usage_limit=data.get("usageLimit"),
                once_per_customer=bool(data.get("appliesOncePerCustomer")),
            )
            self.emu.discounts[code.lower()] = discount
            self.emu.writes["discount_created"] += 1
        return {"codeDiscountNode": discount.render(self.emu.state.clock()), "userErrors": []}

    def tags(self, args: dict[str, Any], *, add: bool) -> dict[str, Any]:
        node_id = str(args["id"])
        if not node_id.startswith("gid://shopify/Customer/"):
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Invalid id"}]}
        customer_id = parse_gid(node_id)
        tags = [t.strip() for t in args["tags"] for t in t.split(",") if t.strip()]
        with self.emu.state.lock:
            customer = self.emu.state.customers.get(customer_id)
            if customer is None:
                return {
                    "node": None,
                    "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
                }
            old = set(customer.tags)
            new = (old | set(tags)) if add else (old - set(tags))
            if new != old:
                customer = self.emu.state.update_customer(customer_id, tags=tuple(sorted(new)))
        self.emu.writes["tags_added" if add else "tags_removed"] += 1
        return {"node": self.emu.graphql.renderer("customers")(customer), "userErrors": []}

    def metafields_set(self, args: dict[str, Any]) -> dict[str, Any]:
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
                parse_gid(owner) not in self.emu.state.customers
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
        with self.emu._lock:
            for item in items:
                customer_id = parse_gid(item["ownerId"])
                namespace = item.get("namespace") or "$app"
                key = (customer_id, namespace, item["key"])
                old = self.emu.metafields.get(key)
                field_ = {
                    "__typename": "Metafield",
                    "id": old["id"] if old else gid("Metafield", str(next(self.emu._ids))),
                    "namespace": namespace,
                    "key": item["key"],
                    "value": str(item["value"]),
                    "type": item.get("type") or (old or {}).get("type") or "single_line_text_field",
                }
                self.emu.metafields[key] = field_
                out.append(field_)
            self.emu.writes["metafields_set"] += len(items)
        return {"metafields": out, "userErrors": []}
