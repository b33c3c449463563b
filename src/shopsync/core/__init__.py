"""The pure core: per-customer features, the policy, and the retention rules.

Features are computed from the store in a columnar engine; rules take ``(features or
histories, policy, as_of)`` and return ledger entries or actions. Nothing here reads a clock
or draws a random number: ``as_of`` is always passed in.

Names are imported lazily, so ``python -m shopsync.core.policy`` (which renders the policy
reference) runs the module once, as the main one.
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
    "plan": "planner",
    "plan_customer": "planner",
    "Policy": "policy",
    "PolicyError": "policy",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"shopsync.core.{_HOME[name]}"), name)
    raise AttributeError(f"module 'shopsync.core' has no attribute {name!r}")
