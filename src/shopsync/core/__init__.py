"""The pure core: per-customer features, the policy, and the retention rules.

Features and rules take frames of one shop (read by :mod:`shopsync.frames`), the policy and
``as_of``, and return features, ledger entries or actions. Nothing here reads the store, a
clock or a random number: ``as_of`` is always passed in.

Names are imported lazily: ``import shopsync.core`` loads none of Polars, SciPy or pydantic
until a name is used (tests/test_fast_import.py).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Action",
    "Held",
    "LoyaltyAward",
    "Plan",
    "PointsExpiryWarning",
    "Policy",
    "PolicyError",
    "Replenish",
    "ReviewReminder",
    "ReviewRequest",
    "RewardCode",
    "TierChange",
    "WarrantyNotice",
    "WinBack",
    "plan",
    "plan_customer",
]

_HOME = {
    "Action": "actions",
    "LoyaltyAward": "actions",
    "PointsExpiryWarning": "actions",
    "RewardCode": "actions",
    "TierChange": "actions",
    "Replenish": "actions",
    "ReviewReminder": "actions",
    "ReviewRequest": "actions",
    "WarrantyNotice": "actions",
    "WinBack": "actions",
    "Held": "planner",
    "Plan": "planner",
    # Kept for callers of ``shopsync.core.plan``: the store-facing facade, which reads the
    # store and then calls the pure :func:`shopsync.core.planner.plan_frames`. No module of
    # the core imports it (tests/test_layers.py checks).
    "plan": "shopsync.planning",
    "plan_customer": "shopsync.planning",
    "Policy": "policy",
    "PolicyError": "policy",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        home = _HOME[name]
        module = home if "." in home else f"shopsync.core.{home}"
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'shopsync.core' has no attribute {name!r}")
