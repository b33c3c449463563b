"""What the loyalty derivation reads beside the frames a plan already holds.

A whole-shop plan reads the shop once (:func:`shopsync.frames.load`) and derives the loyalty
ledger from those frames (:func:`shopsync.core.loyalty_shop.tables_of`). The frames are cut
at ``as_of`` and carry what the programs need; the ledger also needs the earning amounts of
each order, the refunds' ids (they name claw-backs), every customer's contact columns and
the orders placed after ``as_of`` (they decide when the ledger next changes).
:func:`loyalty_extras` reads exactly the part of those the frames lack, so when the read
model carries a column, it is not read twice.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import polars as pl

from shopsync.store.read import (
    I64,
    LOYALTY_ORDERS,
    LOYALTY_REFUNDS,
    REAL_ORDERS_SQL,
    TEXT,
    Column,
    read_table,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["loyalty_extras"]

_AMOUNTS = {"subtotal", "total_shipping", "total_tax"}

_CUSTOMERS = [
    Column("id", TEXT),
    Column("birthday", TEXT),
    Column("updated_at", I64),
    Column("email", TEXT),
]


def loyalty_extras(
    store: Store,
    shop_id: int,
    at: int,
    *,
    amounts: Collection[str],
    order_columns: Collection[str],
    refund_columns: Collection[str],
) -> dict[str, pl.DataFrame]:
    """The loyalty rows the frames of the shop as of ``at`` (micros) lack.

    ``amounts`` names the order amounts the earn rule counts; ``*_columns`` are the columns
    the frames already hold. Returns ``later_orders`` (real orders with a customer placed
    after ``at``) and ``customers`` (every customer, not only those created by ``at``: the
    ledger is the whole shop's; four narrow columns) always, and ``amounts`` (order id and
    amounts) and ``refunds`` (with ids) when the frames lack them.
    """
    engine = store.engine
    shop = f"shop_id = {int(shop_id)}"
    real = f"{shop} AND customer_id IS NOT NULL AND {REAL_ORDERS_SQL}"
    found = {
        "later_orders": read_table(
            engine,
            "orders",
            [c for c in LOYALTY_ORDERS if c.name not in _AMOUNTS or c.name in amounts],
            f"{real} AND created_at > {int(at)}",
        )
    }
    missing = [name for name in amounts if name not in order_columns]
    if missing:
        found["amounts"] = read_table(
            engine,
            "orders",
            [Column("id", TEXT), *[Column(name, I64) for name in missing]],
            f"{real} AND created_at <= {int(at)}",
        )
    if not {c.name for c in LOYALTY_REFUNDS} <= set(refund_columns):
        found["refunds"] = read_table(engine, "refunds", LOYALTY_REFUNDS, shop)
    found["customers"] = read_table(engine, "customers", _CUSTOMERS, shop)
    return found
