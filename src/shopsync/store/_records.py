"""Stored customers, orders and products read back as models.

The bodies of :meth:`Store.get <shopsync.store.Store.get>`, :meth:`Store.iter
<shopsync.store.Store.iter>` and :meth:`Store.count <shopsync.store.Store.count>`: an order
comes back whole, with its line items, refunds and fulfilments.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, Table, bindparam, func, select

from shopsync.models import Customer, Order, Product
from shopsync.store import _rows
from shopsync.store.schema import customers, fulfillments, line_items, orders, products, refunds

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["CHILDREN", "TABLES", "Record", "count", "iterate", "read"]

Record = TypeVar("Record", Customer, Order, Product)
CHILDREN = (line_items, refunds, fulfillments)
"""An order's child rows, written, read and deleted with it."""
TABLES: dict[type[Any], Table] = {Customer: customers, Order: orders, Product: products}


def iterate(
    store: Store, kind: type[Record], platform: str, shop: str, batch: int
) -> Iterator[Record]:
    """:meth:`Store.iter <shopsync.store.Store.iter>`."""
    table = TABLES[kind]
    shop_id = store.shop_id(platform, shop, create=False)
    last: str | None = None
    while True:
        query = (
            select(table.c.id).where(table.c.shop_id == shop_id).order_by(table.c.id).limit(batch)
        )
        if last is not None:
            query = query.where(table.c.id > last)
        with store.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        if not ids:
            return
        yield from read(store, kind, platform, shop, ids)
        last = ids[-1]


def count(store: Store, kind: type[Customer | Order | Product], platform: str, shop: str) -> int:
    """:meth:`Store.count <shopsync.store.Store.count>`."""
    table = TABLES[kind]
    shop_id = store.shop_id(platform, shop, create=False)
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.shop_id == shop_id)
            ).scalar_one()
        )


@functools.cache
def _records_of(kind: type[Any]) -> Select[Any]:
    """The records of ``:ids`` in shop ``:sid``, built once per kind (the outbox reads one
    customer per delivery)."""
    table = TABLES[kind]
    return (
        select(table)
        .where(
            table.c.shop_id == bindparam("sid"), table.c.id.in_(bindparam("ids", expanding=True))
        )
        .order_by(table.c.id)
    )


@functools.cache
def _children_of(child: Table) -> Select[Any]:
    return select(child).where(
        child.c.shop_id == bindparam("sid"), child.c.order_id.in_(bindparam("ids", expanding=True))
    )


def read(
    store: Store, kind: type[Record], platform: str, shop: str, ids: Sequence[str]
) -> Iterator[Record]:
    """The stored records of ``ids`` (those the store holds), in id order."""
    shop_id = store.shop_id(platform, shop, create=False)
    params = {"sid": shop_id, "ids": list(ids)}
    with store.engine.connect() as conn:
        rows = list(conn.execute(_records_of(kind), params))
        if kind is Customer:
            for row in rows:
                yield _rows.customer_from_row(platform, shop, row)  # type: ignore[misc]
            return
        if kind is Product:
            for row in rows:
                yield _rows.product_from_row(platform, shop, row)  # type: ignore[misc]
            return
        children: dict[str, dict[str, list[Any]]] = {}
        for child in CHILDREN:
            grouped: dict[str, list[Any]] = {}
            for row in conn.execute(_children_of(child), params):
                grouped.setdefault(row.order_id, []).append(row)
            children[child.name] = grouped
    for row in rows:
        yield _rows.order_from_rows(  # type: ignore[misc]
            platform,
            shop,
            row,
            children["line_items"].get(row.id, []),
            children["refunds"].get(row.id, []),
            children["fulfillments"].get(row.id, []),
        )
