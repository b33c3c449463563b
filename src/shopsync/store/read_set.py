"""A set of customers' rows, read through the indexes (an incremental plan's read, issue 19).

:func:`read_customers` is :func:`shopsync.store.read.read_shop` for many customers at once:
the same columns and the same "as of" cuts, each table looked up by its customer index for
the ids, which travel as one bound JSON array (no statement grows with the set, and no
parameter limit is reached: :mod:`._idset`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import text

from shopsync.store._columnar import as_bulk_read
from shopsync.store._idset import id_array, set_sql
from shopsync.store.read import (
    REAL_ORDERS_SQL,
    ShopRead,
    _more_columns,
    _orders_columns,
    _Reader,
    _shop_read,
    frame_of_rows,
    products,
)
from shopsync.store.shop_figures import main_currency

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["read_customers"]


class _SetReader(_Reader):
    """One-customer selects, with the customer test a test of the set."""

    def __init__(self, store: Store, shop_id: int, ids: Collection[str]) -> None:
        super().__init__(store, shop_id, None)
        self.ids = id_array(ids)
        self.inside = f"IN ({set_sql(self.dialect)})"

    def read(self, table: str, columns: list[Any], where: str, by_customer: str) -> pl.DataFrame:
        """``by_customer`` names one customer as ``= :cid``: here, any of the set."""
        who = by_customer.replace("= :cid", self.inside)
        cols = ", ".join(f"{c.sql} AS {c.name}" for c in columns)
        literal = where.replace(":", "\\:")  # colons inside literals are not parameters
        sql = f"SELECT {cols} FROM {table} WHERE shop_id = :sid AND {literal} AND {who}"
        params = {"sid": self.shop_id, "ids": self.ids}
        with self.store.engine.connect() as conn:
            result = conn.execute(text(sql), params)
            rows = result.cursor.fetchall()  # plain tuples: no row objects, no processors
        # as the whole shop's read hands them over, so the set's frames agree with it
        return as_bulk_read(frame_of_rows(rows, columns), columns, self.dialect)


def read_customers(
    store: Store,
    shop_id: int,
    at: int,
    ids: Collection[str],
    *,
    window_days: int = 30,
    read_products: bool = True,
    advocates: bool = True,
    find_currency: bool = True,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> ShopRead:
    """The customers ``ids`` of the shop as of ``at`` (micros): :func:`read_shop`'s frames
    restricted to them, but for the catalogue (whole) and the review-request deliveries
    (the shop's, keyed by order). ``find_currency`` reads the shop's main currency by ``at``
    (all its real orders, not the set's)."""
    more = _more_columns(columns or {})
    r = _SetReader(store, shop_id, ids)
    catalogue = products(store, shop_id) if read_products else None
    orders = r.read(
        "orders",
        _orders_columns(r.dialect, more["orders"]),
        f"customer_id IS NOT NULL AND created_at <= {int(at)} AND {REAL_ORDERS_SQL}",
        "customer_id = :cid",
    )
    later = (
        "SELECT count(*) FROM orders WHERE shop_id = :sid AND created_at > :at"
        f" AND {REAL_ORDERS_SQL} AND customer_id IN ({set_sql(r.dialect)})"
    )
    with store.engine.connect() as conn:
        future = conn.execute(text(later), {"sid": shop_id, "at": at, "ids": r.ids}).scalar_one()
    currency = main_currency(store, shop_id, at) if find_currency else None
    read = _shop_read(
        r,
        None,
        at,
        window_days,
        catalogue,
        advocates,
        find_currency,
        orders=orders,
        future=int(future),
        more=more,
    )
    read.currency = currency
    return read
