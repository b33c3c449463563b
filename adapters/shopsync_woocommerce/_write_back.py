"""The write-back of :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter`: coupons as
discount codes, and customer tags and fields kept in the customer's ``meta_data``
(WooCommerce has no customer tags)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from shopsync.adapter_kit import create_once
from shopsync.errors import ConfigurationError, ResponseError
from shopsync.models import Customer, Money
from shopsync_woocommerce._transport import RestTransport, wc_time
from shopsync_woocommerce.mapping import META, PLATFORM

__all__ = ["WriteBack"]


def _coupon_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row.get("id"),
        "code": row.get("code"),
        "ends_at": row.get("date_expires_gmt"),
        "email_restrictions": row.get("email_restrictions"),
    }


class WriteBack(RestTransport):
    """Coupons, tags and customer fields (a part of the adapter)."""

    def find_coupon(self, code: str) -> dict[str, Any] | None:
        """The coupon with this code (WooCommerce keeps codes lower-cased), or None."""
        rows, _ = self._list("coupons", {"code": code, "per_page": "10"})
        for row in rows:
            if isinstance(row, dict) and str(row.get("code", "")).lower() == code.lower():
                return row
        return None

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
        """A coupon usable once, by this customer's email only, until ``expires_at``:
        ``amount`` off the cart (``fixed_cart``) or ``percent`` off (``percent``); ``title``
        is its description. A coupon starts when it is made (it has no start date).

        Looked up by code first, so a retry after a crash finds the coupon instead of making
        a second one (``created`` in the answer says which happened); an "already exists"
        refusal is resolved the same way.
        """
        if (amount is None) == (percent is None):
            raise ConfigurationError("create_discount_code needs an amount or a percent")
        if not customer.email:
            raise ConfigurationError(
                f"customer {customer.id} has no email address to limit the coupon to"
            )
        found = self.find_coupon(code)
        if found is not None:
            return {**_coupon_summary(found), "created": False}

        def create() -> dict[str, Any]:
            data = {
                "code": code,
                "discount_type": "fixed_cart" if amount is not None else "percent",
                "amount": str(amount.rounded().amount) if amount is not None else str(percent),
                "individual_use": True,
                "usage_limit": 1,
                "usage_limit_per_user": 1,
                "email_restrictions": [customer.email],
                "date_expires_gmt": wc_time(expires_at),
                "description": title,
            }
            created = self._send("POST", "coupons", data)
            if not isinstance(created, dict) or "id" not in created:
                raise ResponseError("POST coupons answered without a coupon id", platform=PLATFORM)
            return _coupon_summary(created)

        def find() -> dict[str, Any] | None:
            found = self.find_coupon(code)
            return None if found is None else _coupon_summary(found)

        return create_once(
            find,
            create,
            taken=lambda exc: (
                getattr(exc, "code", None) == "woocommerce_rest_coupon_code_already_exists"
            ),
        )

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        """The customer record as WooCommerce renders it (meta_data included)."""
        body, _ = self._get(f"customers/{customer_id}", {})
        if not isinstance(body, dict):
            raise ResponseError(f"customers/{customer_id} is not an object", platform=PLATFORM)
        return body

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        """Set meta_data ``_{namespace}_{key}`` on a customer (WooCommerce updates a key in
        place, so setting the same value again changes nothing); values are kept as text."""
        self._set_meta(customer_id, {f"_{namespace}_{k}": str(v) for k, v in values.items()})

    def _set_meta(self, customer_id: str, values: Mapping[str, Any]) -> None:
        meta = [{"key": key, "value": value} for key, value in values.items()]
        self._send("PUT", f"customers/{customer_id}", {"meta_data": meta})

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Add tags to the ``_shopsync_tags`` meta (WooCommerce has no customer tags)."""
        self._change_tags(customer_id, add=tags, remove=())

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self._change_tags(customer_id, add=(), remove=tags)

    def _change_tags(self, customer_id: str, *, add: Sequence[str], remove: Sequence[str]) -> None:
        current: list[str] = []
        for item in self.get_customer(customer_id).get("meta_data") or ():
            if isinstance(item, dict) and item.get("key") == META["tags"]:
                value = item.get("value")
                current = (
                    [str(v) for v in value]
                    if isinstance(value, list)
                    else [v.strip() for v in str(value or "").split(",") if v.strip()]
                )
        wanted = sorted((set(current) | set(add)) - set(remove))
        if wanted != sorted(current):
            self._set_meta(customer_id, {META["tags"]: wanted})
