"""The public API is pinned: changing it must be a deliberate act."""

from __future__ import annotations

import shopsync

PUBLIC = {
    "Adapter",
    "Customer",
    "Money",
    "Order",
    "Page",
    "Plan",
    "Policy",
    "Product",
    "Rejected",
    "ShopSyncError",
    "Store",
    "SyncResult",
    "__version__",
    "apply",
    "available_adapters",
    "clv",
    "connect",
    "errors",
    "loyalty",
    "metrics",
    "models",
    "outbox",
    "plan",
    "plan_customer",
    "quarantine",
    "reviews",
    "sinks",
    "sync",
    "webhooks",
}


def test_all_is_pinned() -> None:
    assert set(shopsync.__all__) == PUBLIC


def test_every_name_in_all_exists() -> None:
    for name in shopsync.__all__:
        assert hasattr(shopsync, name), name


def test_sync_is_the_function() -> None:
    assert callable(shopsync.sync)
    assert shopsync.sync.__module__ == "shopsync.sync"
