"""Orders whose payload carried only a refund summary (``Order.refunds_complete`` False).

A WooCommerce order webhook lists refunds as ``{id, reason, total}``: no date, no refunded
lines. Until the next sync reads the refunds whole, the store keeps what it already held for
the refunds it knows (their dates and lines, and the lines' refunded quantities) and adds the
new ones as the summary has them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from shopsync.store.schema import line_items, refunds

__all__ = ["Held", "held_refunds", "keep_held"]

Held = dict[str, tuple[dict[str, Any], dict[str, int]]]
"""order id -> (refund rows by refund id, refunded quantity units by line id)."""


def held_refunds(conn: Connection, shop_id: int, order_ids: Sequence[str]) -> Held:
    """What the store holds for these orders' refunds, read before their rows are replaced."""
    held: Held = {oid: ({}, {}) for oid in order_ids}
    for start in range(0, len(order_ids), 500):
        chunk = list(order_ids[start : start + 500])
        for r in conn.execute(
            select(refunds.c.order_id, refunds.c.id, refunds.c.created_at, refunds.c.lines).where(
                refunds.c.shop_id == shop_id, refunds.c.order_id.in_(chunk)
            )
        ):
            held[r.order_id][0][r.id] = {"created_at": r.created_at, "lines": r.lines}
        for li in conn.execute(
            select(line_items.c.order_id, line_items.c.id, line_items.c.refunded_quantity).where(
                line_items.c.shop_id == shop_id, line_items.c.order_id.in_(chunk)
            )
        ):
            held[li.order_id][1][li.id] = li.refunded_quantity
    return held


def keep_held(tables: dict[str, list[dict[str, Any]]], held: Held) -> None:
    """Put the held refund dates, lines and refunded quantities back into the new rows."""
    if not held:  # (a first sync's pages: nothing held, no row to look at)
        return
    for row in tables["refunds"]:
        known = held.get(row["order_id"], ({}, {}))[0].get(row["id"])
        if known is not None:
            row["created_at"] = known["created_at"]
            row["lines"] = known["lines"]
    for row in tables["line_items"]:
        quantity = held.get(row["order_id"], ({}, {}))[1].get(row["id"])
        if quantity is not None and quantity > row["refunded_quantity"]:
            row["refunded_quantity"] = min(quantity, row["quantity"])
