"""Helpers for syncing emulated shops in tests."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import shopsync
from shopsync.adapter import Adapter
from shopsync.http import RetryPolicy
from shopsync.testing import EmulatedShop, emulate

# Retries as in production, but with waits short enough for a test.
FAST_RETRIES = RetryPolicy(attempts=40, max_elapsed=60, initial_wait=0.01, max_wait=0.05)


def emulated(platform: str, **options: Any) -> AbstractContextManager[EmulatedShop]:
    """An emulated shop; Shopify on the Plus plan's limits, so that paging tests are quick
    (the standard plan's limits are what the benchmarks measure); WooCommerce with consent
    meta in shopsync's own format, since core WooCommerce keeps no consent and marketing tests
    need consented customers, and only that format says every state (redacted, pending) and
    date, so that what a sync stores equals the shop (``consent_plugin=None`` for core)."""
    if platform == "shopify":
        options.setdefault("plan", "plus")
    if platform == "woocommerce":
        options.setdefault("consent_plugin", "shopsync")
    return emulate(platform, **options)


def connect(shop: EmulatedShop, **extra: Any) -> Adapter:
    """An adapter for the emulated shop with fast retries."""
    settings = {**shop.settings, "retry_policy": FAST_RETRIES, **extra}
    return shopsync.connect(shop.platform, **settings)


def platform_view(shop: EmulatedShop) -> dict[str, dict[str, Any]]:
    """The emulator's state as the platform can tell it (what a perfect sync stores)."""
    view = getattr(shop.emulator, "view", lambda record: record)
    state = shop.state
    return {
        "customers": {c.id: view(c) for c in state.customers.values()},
        "orders": {o.id: view(o) for o in state.orders.values()},
        "products": {p.id: view(p) for p in state.products.values()},
        "quarantine": {},
    }
