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
from sqlalchemy import text

from shopsync.store._idset import id_array, set_sql
from shopsync.store.read import (
    I64,
    LOYALTY_ORDERS,
    LOYALTY_REFUNDS,
    REAL_ORDERS_SQL,
    TEXT,
    Column,
    frame_of_rows,
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
    later_of: Collection[str] | None = None,
    customers_of: Collection[str] | None = None,
) -> dict[str, pl.DataFrame]:
    """The loyalty rows the frames of the shop as of ``at`` (micros) lack.

    ``amounts`` names the order amounts the earn rule counts; ``*_columns`` are the columns
    the frames already hold. Returns ``later_orders`` (real orders with a customer placed
    after ``at``) and ``customers`` (every customer, not only those created by ``at``: the
    ledger is the whole shop's; four narrow columns) always, and ``amounts`` (order id and
    amounts) and ``refunds`` (with ids) when the frames lack them. ``later_of``: the later
    orders of these customers only (frames of some customers), read through the customer
    index (the shop's are a scan of every order: 0.2 s at 1M orders, for none at all).
    ``customers_of``: the customers of these ids only (a part of a large shop's).
    """
    engine = store.engine
    shop = f"shop_id = {int(shop_id)}"
    real = f"{shop} AND customer_id IS NOT NULL AND {REAL_ORDERS_SQL}"
    later = [c for c in LOYALTY_ORDERS if c.name not in _AMOUNTS or c.name in amounts]
    if later_of is None:
        found = {
            "later_orders": read_table(
                engine, "orders", later, f"{real} AND created_at > {int(at)}"
            )
        }
    else:
        found = {"later_orders": _later_of(store, shop_id, at, later, later_of)}
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
    if customers_of is None:
        found["customers"] = read_table(engine, "customers", _CUSTOMERS, shop)
    else:
        found["customers"] = _customers_of(store, shop, customers_of)
    return found


def _customers_of(store: Store, shop: str, ids: Collection[str]) -> pl.DataFrame:
    """The customers ``ids`` (:data:`_CUSTOMERS`), in no particular order: the derivation
    reads none from it (an e-mail two customers hold names the most recently updated)."""
    return read_table(store.engine, "customers", _CUSTOMERS, shop, among=("id", ids))


def _later_of(
    store: Store, shop_id: int, at: int, columns: list[Column], ids: Collection[str]
) -> pl.DataFrame:
    """``columns`` of the real orders of the customers ``ids`` placed after ``at``."""
    cols = ", ".join(f"{c.sql} AS {c.name}" for c in columns)
    sql = (
        f"SELECT {cols} FROM orders WHERE shop_id = :sid AND customer_id IN "
        f"({set_sql(store.engine.dialect.name)}) AND created_at > :at AND {REAL_ORDERS_SQL}"
    )
    with store.engine.connect() as conn:
        result = conn.execute(text(sql), {"sid": shop_id, "ids": id_array(ids), "at": at})
        rows = result.cursor.fetchall()  # plain tuples: no row objects
    return frame_of_rows(rows, columns)
