"""The write-back of :class:`~shopsync_shopify.adapter.ShopifyAdapter`: discount codes,
customer tags and customer metafields, each one GraphQL mutation whose ``userErrors`` are
refusals, not retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from shopsync.adapter_kit import create_once
from shopsync.errors import ConfigurationError, PlatformError
from shopsync.models import Customer, Money
from shopsync_shopify import queries
from shopsync_shopify._transport import GraphQLTransport, iso
from shopsync_shopify.mapping import PLATFORM, gid

__all__ = ["WriteBack"]


class WriteBack(GraphQLTransport):
    """Discount codes, tags and customer fields (a part of the adapter)."""

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

        def create() -> dict[str, Any]:
            value: dict[str, Any] = (
                {"percentage": percent / 100}
                if percent is not None
                else {"discountAmount": {"amount": str(amount.amount), "appliesOnEachItem": False}}  # type: ignore[union-attr]
            )
            variables = {
                "input": {
                    "title": title[:255] or code,
                    "code": code,
                    "startsAt": iso(starts_at),
                    "endsAt": iso(expires_at),
                    "context": {"customers": {"add": [gid("Customer", customer.id)]}},
                    "customerGets": {"value": value, "items": {"all": True}},
                    "usageLimit": 1,
                    "appliesOncePerCustomer": True,
                }
            }
            payload = self.graphql(queries.DISCOUNT_CREATE, variables, requested=10)["data"][
                "discountCodeBasicCreate"
            ]
            _raise_user_errors("discountCodeBasicCreate", payload.get("userErrors") or [])
            node = payload["codeDiscountNode"]
            return {"id": node["id"], "code": code, "ends_at": iso(expires_at)}

        return create_once(
            lambda: self.find_discount_code(code),
            create,
            taken=lambda exc: "TAKEN" in getattr(exc, "codes", set()),
        )

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Add tags to a customer (tags already there stay; adding twice changes nothing)."""
        self._tag(queries.TAGS_ADD, "tagsAdd", customer_id, tags)

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self._tag(queries.TAGS_REMOVE, "tagsRemove", customer_id, tags)

    def _tag(self, mutation: str, root: str, customer_id: str, tags: Sequence[str]) -> None:
        payload = self.graphql(
            mutation, {"id": gid("Customer", customer_id), "tags": list(tags)}, requested=10
        )["data"][root]
        _raise_user_errors(root, payload.get("userErrors"))

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
