"""Shopify's GraphQL connection pricing, shared by the adapter (page sizing, read-path
choice) and the emulator (charging).

Since 2025-07 a connection is charged 2 points plus its node cost times a multiplier that
grows with the logarithm of ``first`` (requested cost) or of the nodes returned (actual
cost), instead of times ``first`` itself (https://shopify.dev/docs/apps/build/apis/
graphql-admin/rate-limits). Shopify publishes figures, not the formula; this multiplier is
the simplest one that reproduces both: ``customers(first: 200) { id updatedAt }`` costs
2 + 10 x 1 = 12 points and an order's ``lineItems(first: 10)`` with an 8-object line costs
1 + 2 + 5 x 8 = 43. The adapter only uses it to size pages between two answers; the page
size itself is learned from the ``requestedQueryCost`` Shopify reports.
"""

from __future__ import annotations

import math

__all__ = ["connection_multiplier", "largest_first"]


def connection_multiplier(size: int) -> int:
    """How many nodes' worth a connection of ``size`` nodes is charged: ``log2(size)``
    rounded, plus 2, never more than ``size`` (1 -> 1, 10 -> 5, 90 -> 8, 200 -> 10)."""
    if size <= 0:
        return 0
    return min(size, math.floor(math.log2(size) + 0.5) + 2)


def largest_first(node_cost: float, budget: float, cap: int) -> int:
    """The largest page (at most ``cap``) whose requested cost ``2 + multiplier x node``
    stays within ``budget``; at least 1."""
    for size in range(cap, 0, -1):
        if 2 + connection_multiplier(size) * node_cost <= budget:
            return size
    return 1
