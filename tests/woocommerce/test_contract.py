"""The adapter contract (shopsync.testing.contract), run against the WooCommerce emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, emulate
from shopsync.testing.contract import AdapterContract


class TestWooCommerceContract(AdapterContract):
    @pytest.fixture
    def emulated(self) -> Iterator[EmulatedShop]:
        with emulate("woocommerce", seed=5, customers=40, orders=250, products=15) as shop:
            yield shop

    def adapter_settings(self, shop: EmulatedShop) -> dict[str, Any]:
        return {**shop.settings, "retry_policy": RetryPolicy(initial_wait=0.01, max_wait=0.05)}
