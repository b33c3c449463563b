"""What a whole-shop plan in customer partitions reads once for the whole shop (issue 18,
item 4.2): every customer id a program or the loyalty derivation can plan for, and the order
figures a whole read would give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from shopsync.store._columnar import Column, read_table
from shopsync.store.facts import TEXT, order_facts
from shopsync.store.read import _top_currency, table_names

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["OrderFigures", "customer_universe", "order_figures"]

_WITH_CUSTOMERS = ("customers", "checkouts", "browse_events", "loyalty_inputs")


def customer_universe(store: Store, shop_id: int, buyers: pl.Series) -> list[str]:
    """Every customer id the shop's rows name, sorted: the customers, ``buyers`` (those of
    the orders: a customer deleted on the platform keeps its orders), those of checkouts and
    browse events, and of the loyalty inputs. The loyalty derivation derives the customers
    with a row alone (a ledger's entries of a customer without one make no notice), so the
    ledger's millions of entries are not scanned. Read in columns: no Python row each."""
    have = table_names(store)
    found = [buyers.cast(pl.String).rename("cid")]
    for table in _WITH_CUSTOMERS:
        if table in have:
            column = Column("cid", TEXT, "id" if table == "customers" else "customer_id")
            read = read_table(store.engine, table, [column], f"shop_id = {int(shop_id)}")
            found.append(read.get_column("cid"))
    every: list[str] = pl.concat(found).drop_nulls().unique().sort().to_list()
    return every


@dataclass(frozen=True)
class OrderFigures:
    """The shop's figures a whole read takes from every order: the main currency of the
    orders placed by ``at`` and of all, and the real orders placed later."""

    currency: str | None
    overall: str | None
    future: int


def order_figures(store: Store, shop_id: int, at: int) -> tuple[OrderFigures, pl.Series]:
    """:class:`OrderFigures` and the orders' customers (unique), from one read of the order
    facts (the snapshot and the writes since, as the whole read takes them)."""
    every = order_facts(
        store, shop_id, {"orders": ["currency", "created_at", "test", "customer_id"]}
    ).orders
    buyers = every.get_column("customer_id").unique()
    every = every.drop("customer_id")
    real = every.lazy().filter(pl.col("test") == 0)
    placed = real.filter(pl.col("created_at") <= at)
    future = real.filter(pl.col("created_at") > at).select(pl.len()).collect().item()
    figures = OrderFigures(
        _top_currency(placed.select("currency").collect()),
        _top_currency(real.select("currency").collect()),
        int(future),
    )
    return figures, buyers
