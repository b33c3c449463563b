"""A set of customers' rows (an incremental plan's read, issue 19).

:func:`read_customers` is :func:`shopsync.store.read.read_shop` for many customers at once:
the same columns and the same "as of" cuts, each table looked up by its customer index for
the ids, which travel as one bound JSON array (no statement grows with the set, and no
parameter limit is reached: :mod:`._idset`). The order facts of a set large beside the shop
come from the columnar snapshot instead (:func:`.facts_set.customer_facts`): one filtered
scan of it costs about what the indexed read of one customer in :data:`SCAN_PER_CUSTOMER`
of its orders does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import text

from shopsync.store._columnar import as_bulk_read
from shopsync.store._idset import id_array, set_sql
from shopsync.store.facts import Facts
from shopsync.store.facts_set import customer_facts, snapshot_orders
from shopsync.store.read import (
    _SHOP_FACTS,
    REAL_ORDERS_SQL,
    ShopRead,
    _customer_select,
    _Facts,
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

__all__ = ["SCAN_PER_CUSTOMER", "read_customers"]

SCAN_PER_CUSTOMER = 2_000
"""The snapshot is scanned for a set when it holds at most this many orders a customer of the
set. Measured at 100k customers / 1M orders (SQLite): 3,708 customers (94k orders) read in
1.67 s through the indexes, in 0.09 s from the snapshot (1 s at 10M orders, scaled), so about
1 customer in 5,000 orders breaks even; this leaves small sets to the indexes."""


class _SetReader(_Reader):
    """One-customer selects, with the customer test a test of the set."""

    def __init__(self, store: Store, shop_id: int, ids: Collection[str]) -> None:
        super().__init__(store, shop_id, None)
        self.ids = id_array(ids)
        self.inside = f"IN ({set_sql(self.dialect)})"

    def read(
        self,
        table: str,
        columns: list[Any],
        where: str,
        by_customer: str,
        **instants: int,
    ) -> pl.DataFrame:
        """``by_customer`` names one customer as ``= :cid``: here, any of the set."""
        who = by_customer.replace("= :cid", self.inside)
        query = _customer_select(table, tuple(columns), where, who)
        params = {"sid": self.shop_id, "ids": self.ids, **instants}
        with self.store.engine.connect() as conn:
            result = conn.execute(query, params)
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
    currency = main_currency(store, shop_id, at) if find_currency else None
    facts = _snapshot_facts(store, shop_id, ids, more)
    if facts is not None:
        rest = (window_days, catalogue, advocates, False)
        read = _shop_read(r, _Facts(store, shop_id, catalogue, facts=facts), at, *rest, more=more)
        read.currency = currency
        return read
    orders = r.read(
        "orders",
        _orders_columns(r.dialect, more["orders"]),
        f"customer_id IS NOT NULL AND created_at <= :at AND {REAL_ORDERS_SQL}",
        "customer_id = :cid",
        at=int(at),
    )
    later = (
        "SELECT count(*) FROM orders WHERE shop_id = :sid AND created_at > :at"
        f" AND {REAL_ORDERS_SQL} AND customer_id IN ({set_sql(r.dialect)})"
    )
    with store.engine.connect() as conn:
        future = conn.execute(text(later), {"sid": shop_id, "at": at, "ids": r.ids}).scalar_one()
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


def _snapshot_facts(
    store: Store, shop_id: int, ids: Collection[str], more: Mapping[str, Sequence[str]]
) -> Facts | None:
    """The set's order facts from the snapshot when it is cheaper than the indexes, else None."""
    held = snapshot_orders(store, shop_id)
    if held is None or len(ids) * SCAN_PER_CUSTOMER < held:
        return None
    wanted = {t: [*names, *more.get(t, ())] for t, names in _SHOP_FACTS.items()}
    return customer_facts(store, shop_id, ids, wanted)
