"""shopsync: a normalized local copy of a Shopify or WooCommerce shop, and the retention
programs that run on it (loyalty, review requests, win-back and more).

The public API is what ``__all__`` lists; everything else may change between releases.
"""

from __future__ import annotations

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
from shopsync.core.planner import Plan, plan, plan_customer
from shopsync.core.policy import Policy
from shopsync.errors import ShopSyncError
from shopsync.models import Customer, Money, Order, Product
from shopsync.outbox import apply
from shopsync.store import Store
from shopsync.sync import SyncReport, sync  # ``shopsync.sync`` is the function

__version__ = "0.1.0"

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
    "SyncReport",
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
