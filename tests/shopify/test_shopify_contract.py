"""The adapter contract (shopsync.testing.contract), run against the Shopify emulator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, emulate
from shopsync.testing.contract import AdapterContract, WrittenDiscount


class TestShopifyContract(AdapterContract):
    webhook_topics: ClassVar[Mapping[str, str]] = {
        "order.updated": "orders/updated",
        "order.deleted": "orders/delete",
    }

    @pytest.fixture
    def emulated(self) -> Iterator[EmulatedShop]:
        # The Plus plan's bucket: the suite reads the shop many times, and the standard
        # plan's 100 points/s would make it wait for the bucket, not test anything more.
        with emulate("shopify", seed=5, customers=30, orders=120, products=12, plan="plus") as shop:
            yield shop

    def adapter_settings(self, shop: EmulatedShop) -> dict[str, Any]:
        return {**shop.settings, "retry_policy": RetryPolicy(initial_wait=0.01, max_wait=0.05)}

    def customer_fields(
        self, shop: EmulatedShop, customer_id: str, namespace: str
    ) -> Mapping[str, str]:
        """Metafields ``{namespace}.{key}`` as ``metafieldsSet`` left them."""
        emulator: Any = shop.emulator
        return {
            key: str(field["value"])
            for (owner, ns, key), field in emulator.metafields.items()
            if (owner, ns) == (customer_id, namespace)
        }

    def discount(self, shop: EmulatedShop, code: str) -> WrittenDiscount | None:
        """The emulator keeps a fixed amount, not a percentage (percent stays None)."""
        emulator: Any = shop.emulator
        found = emulator.discounts.get(code.lower())
        if found is None:
            return None
        return WrittenDiscount(
            code=found.code,
            customer=found.customer_ids[0] if len(found.customer_ids) == 1 else "",
            usage_limit=found.usage_limit,
            expires_at=found.ends_at,
            amount=Decimal(found.amount) if found.amount is not None else None,
        )
