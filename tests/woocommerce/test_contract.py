"""The adapter contract (shopsync.testing.contract), run against the WooCommerce emulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, emulate
from shopsync.testing.contract import AdapterContract, WrittenDiscount


class TestWooCommerceContract(AdapterContract):
    webhook_topics: ClassVar[Mapping[str, str]] = {
        "order.updated": "order.updated",
        "order.deleted": "order.deleted",
    }

    @pytest.fixture
    def emulated(self) -> Iterator[EmulatedShop]:
        with emulate("woocommerce", seed=5, customers=40, orders=250, products=15) as shop:
            yield shop

    def adapter_settings(self, shop: EmulatedShop) -> dict[str, Any]:
        return {**shop.settings, "retry_policy": RetryPolicy(initial_wait=0.01, max_wait=0.05)}

    def customer_fields(
        self, shop: EmulatedShop, customer_id: str, namespace: str
    ) -> Mapping[str, str]:
        """Meta ``_{namespace}_{key}`` as ``PUT /customers/<id>`` left it."""
        emulator: Any = shop.emulator
        prefix = f"_{namespace}_"
        meta = emulator.customer_meta.get(customer_id, {})
        return {k[len(prefix) :]: str(v) for k, v in meta.items() if k.startswith(prefix)}

    def discount(self, shop: EmulatedShop, code: str) -> WrittenDiscount | None:
        emulator: Any = shop.emulator
        for body in emulator.coupons.values():
            if body["code"] == code.lower():
                expires = body.get("date_expires_gmt")
                percent = body["discount_type"] == "percent"
                return WrittenDiscount(
                    code=body["code"],
                    customer=(body.get("email_restrictions") or [""])[0],
                    usage_limit=body.get("usage_limit"),
                    expires_at=dt.datetime.fromisoformat(expires).replace(tzinfo=dt.timezone.utc)
                    if expires
                    else None,
                    amount=None if percent else Decimal(body["amount"]),
                    percent=Decimal(body["amount"]) if percent else None,
                )
        return None
