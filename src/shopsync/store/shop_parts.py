"""What a whole-shop plan in customer partitions reads once for the whole shop (issue 18,
item 4.2): every customer id with rows, and the order figures a whole read would give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import text

from shopsync.store.facts import order_facts
from shopsync.store.read import _top_currency, table_names

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["OrderFigures", "customer_universe", "order_figures"]

_WITH_CUSTOMERS = (
    "customers",
    "orders",
    "checkouts",
    "browse_events",
    "loyalty_inputs",
    "loyalty_ledger",
)


def customer_universe(store: Store, shop_id: int) -> list[str]:
    """Every customer id the shop's rows name (customers, their orders, checkouts and browse
    events: a customer deleted on the platform keeps its orders; the loyalty inputs and
    ledger: the whole derivation gives notices to every customer they name), sorted."""
    have = table_names(store)
    selects = [
        f"SELECT {'id' if t == 'customers' else 'customer_id'} AS cid FROM {t} WHERE shop_id = :sid"
        for t in _WITH_CUSTOMERS
        if t in have
    ]
    sql = f"SELECT DISTINCT cid FROM ({' UNION '.join(selects)}) u WHERE cid IS NOT NULL"
    with store.engine.connect() as conn:
        found = [str(r[0]) for r in conn.execute(text(sql), {"sid": shop_id})]
    return sorted(found)


@dataclass(frozen=True)
class OrderFigures:
    """The shop's figures a whole read takes from every order: the main currency of the
    orders placed by ``at`` and of all, the real orders placed later, and whether a customer
    order was placed by then."""

    currency: str | None
    overall: str | None
    future: int
    placed: bool


def order_figures(store: Store, shop_id: int, at: int) -> OrderFigures:
    """:class:`OrderFigures` from one read of the order facts (the snapshot and the writes
    since, as the whole read takes them)."""
    every = order_facts(
        store, shop_id, {"orders": ["currency", "created_at", "test", "customer_id"]}
    ).orders.lazy()
    real = every.filter(pl.col("test") == 0)
    placed = real.filter(pl.col("created_at") <= at)
    future = real.filter(pl.col("created_at") > at).select(pl.len()).collect().item()
    buyers = placed.filter(pl.col("customer_id").is_not_null()).select(pl.len()).collect().item()
    return OrderFigures(
        _top_currency(placed.select("currency").collect()),
        _top_currency(real.select("currency").collect()),
        int(future),
        int(buyers) > 0,
    )
