"""What the crash and fault tests compare: the records a store holds for one shop."""

from __future__ import annotations

from typing import Any

from shopsync.models import Customer, Order, Product
from shopsync.store import Store


def snapshot(store: Store, platform: str, shop: str) -> dict[str, dict[str, Any]]:
    """Every customer, order (with its children) and product, and the open quarantine."""
    return {
        "customers": {c.id: c for c in store.iter(Customer, platform, shop)},
        "orders": {o.id: o for o in store.iter(Order, platform, shop)},
        "products": {p.id: p for p in store.iter(Product, platform, shop)},
        "quarantine": {
            (q.resource, q.record_id): q.reason
            for q in store.quarantined()
            if (q.platform, q.shop) == (platform, shop)
        },
    }


def differences(left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]) -> list[str]:
    """A line per record that is missing on one side or differs."""
    found = []
    for kind in left.keys() | right.keys():
        a, b = left.get(kind, {}), right.get(kind, {})
        found += [f"{kind} {key}: only left" for key in a.keys() - b.keys()]
        found += [f"{kind} {key}: only right" for key in b.keys() - a.keys()]
        found += [
            f"{kind} {key}: differs{_fields(a[key], b[key])}"
            for key in a.keys() & b.keys()
            if a[key] != b[key]
        ]
    return sorted(found)


def _fields(a: Any, b: Any) -> str:
    """The fields two records differ in, with both values (records of one model)."""
    if not (hasattr(a, "model_dump") and hasattr(b, "model_dump")):
        return ""
    left, right = a.model_dump(), b.model_dump()
    names = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
    return " in " + ", ".join(f"{k} ({left.get(k)!r} != {right.get(k)!r})" for k in names)
