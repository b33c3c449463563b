"""The public API is pinned: changing it must be a deliberate act."""

from __future__ import annotations

import shopsync

PUBLIC = {
    "Adapter",
    "Customer",
    "Money",
    "Order",
    "Page",
    "Product",
    "Rejected",
    "ShopSyncError",
    "Store",
    "__version__",
    "available_adapters",
    "clv",
    "connect",
    "errors",
    "models",
}


def test_all_is_pinned() -> None:
    assert set(shopsync.__all__) == PUBLIC


def test_every_name_in_all_exists() -> None:
    for name in shopsync.__all__:
        assert hasattr(shopsync, name), name
