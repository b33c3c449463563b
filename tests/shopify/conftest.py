"""Shopify test helpers: fast emulated shops and payload fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from shopsync.testing import EmulatedShop, emulate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SHOP = "fixture-shop.myshopify.com"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def shopify_shop() -> Iterator[Callable[..., EmulatedShop]]:
    """A factory of started emulated Shopify shops (the Plus plan's bucket by default, so
    functional tests are not slowed by the standard plan's 100 points/s)."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> EmulatedShop:
            kwargs.setdefault("customers", 30)
            kwargs.setdefault("orders", 80)
            kwargs.setdefault("products", 12)
            kwargs.setdefault("plan", "plus")
            kwargs.setdefault("webhook_backoff", 0.01)
            return stack.enter_context(emulate("shopify", **kwargs))

        yield make
