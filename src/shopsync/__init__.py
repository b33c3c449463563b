"""shopsync: a normalized local copy of a Shopify or WooCommerce shop, and the retention
programs that run on it (loyalty, review requests, win-back and more).

The public API is what ``__all__`` lists; everything else may change between releases.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopsync import (
        clv,
        errors,
        loyalty,
        metrics,
        models,
        outbox,
        quarantine,
        reviews,
        sinks,
        webhooks,
    )
    from shopsync.adapter import Adapter, Page, Rejected, available_adapters, connect
    from shopsync.core.planner import Plan
    from shopsync.core.policy import Policy
    from shopsync.errors import ShopSyncError
    from shopsync.models import Customer, Money, Order, Product
    from shopsync.outbox import apply
    from shopsync.planning import plan, plan_customer
    from shopsync.store import Store
    from shopsync.sync import SyncResult, sync  # ``shopsync.sync`` is the function

    __version__: str

__all__ = [
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
]

# Names load on first use (PEP 562), so ``import shopsync`` in a webhook handler or a small
# script does not pay for SQLAlchemy, Polars, NumPy or SciPy (tests/test_fast_import.py).
_SUBMODULES = {
    "clv",
    "errors",
    "loyalty",
    "metrics",
    "models",
    "outbox",
    "quarantine",
    "reviews",
    "sinks",
    "webhooks",
}
_HOME = {
    "Adapter": "adapter",
    "Page": "adapter",
    "Rejected": "adapter",
    "available_adapters": "adapter",
    "connect": "adapter",
    "Plan": "core.planner",
    "plan": "planning",
    "plan_customer": "planning",
    "Policy": "core.policy",
    "ShopSyncError": "errors",
    "Customer": "models",
    "Money": "models",
    "Order": "models",
    "Product": "models",
    "apply": "outbox",
    "Store": "store",
    "SyncResult": "sync",
    "sync": "sync",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # pyproject.toml is the one source of the version
        from importlib import metadata

        try:
            found = metadata.version("shopsync")
        except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
            found = "0+unknown"
        globals()[name] = found
        return found
    if name in _SUBMODULES:
        return importlib.import_module(f"shopsync.{name}")
    if name in _HOME:
        value = getattr(importlib.import_module(f"shopsync.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    from shopsync._renamed import old_name

    return old_name("shopsync", name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The import system binds a submodule on its package when it first loads it; for
    ``shopsync.sync``, which is also the name of the function, keep the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "sync" and isinstance(value, types.ModuleType):
            value = value.sync
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
