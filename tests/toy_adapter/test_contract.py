"""The toy adapter passes the contract suite of shopsync.testing, as the built-in two do:
the walk-through of docs/adapters/writing.md, run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

import shopsync
from shopsync.adapter import capabilities
from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, emulate
from shopsync.testing.contract import AdapterContract, WrittenDiscount
from tests.toy_adapter import registered


class TestToyContract(AdapterContract):
    webhook_topics: ClassVar[Mapping[str, str]] = {
        "order.updated": "order.updated",
        "order.deleted": "order.deleted",
    }

    @pytest.fixture
    def emulated(self) -> Iterator[EmulatedShop]:
        with registered(), emulate("toyshop", seed=3, customers=25, orders=90, products=8) as shop:
            yield shop

    def adapter_settings(self, shop: EmulatedShop) -> dict[str, Any]:
        return {**shop.settings, "retry_policy": RetryPolicy(initial_wait=0.01, max_wait=0.05)}

    def customer_fields(
        self, shop: EmulatedShop, customer_id: str, namespace: str
    ) -> Mapping[str, str]:
        emulator: Any = shop.emulator
        return dict(emulator.fields.get((customer_id, namespace), {}))

    def discount(self, shop: EmulatedShop, code: str) -> WrittenDiscount | None:
        emulator: Any = shop.emulator
        found = emulator.discounts.get(code.lower())
        if found is None:
            return None
        return WrittenDiscount(
            code=found["code"],
            customer=found["customer_id"],
            usage_limit=found["usage_limit"],
            expires_at=dt.datetime.fromisoformat(found["expires_at"]),
            amount=Decimal(found["amount"]) if found["amount"] is not None else None,
            percent=Decimal(found["percent"]) if found["percent"] is not None else None,
        )


def test_the_toy_adapter_declares_every_capability() -> None:
    with registered():
        cls = shopsync.adapter.adapter_class("toyshop")
    assert capabilities(cls) == frozenset(shopsync.adapter.CAPABILITIES)


def test_the_page_walks_through_every_capability_and_this_adapter() -> None:
    """docs/adapters/writing.md names each capability, its protocol and its members, and
    shows this suite's class as it is."""
    from pathlib import Path

    from shopsync.adapter import _METHODS

    page = (Path(__file__).parents[2] / "docs" / "adapters" / "writing.md").read_text()
    for name, protocol in shopsync.adapter.CAPABILITIES.items():
        if name != "read":
            assert f"`{name}`" in page and f"`{protocol.__name__}`" in page, name
        for member in _METHODS[name]:
            assert member in page, member
    assert "class TestToyContract(AdapterContract):" in page
    assert "tests/toy_adapter/" in page
