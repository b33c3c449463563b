"""Every path into a JSON payload, and a copy with one path set: the hostile-value tests of
the fast row mappers (tests/shopify/test_fast_orders.py, tests/woocommerce/test_fast_orders.py)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

__all__ = ["paths", "set_at"]


def paths(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and index path into ``obj``, parents before children."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*path, key)
            yield from paths(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*path, i)
            yield from paths(value, (*path, i))


def set_at(record: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``record`` with ``value`` at ``path``."""
    out = copy.deepcopy(record)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out
