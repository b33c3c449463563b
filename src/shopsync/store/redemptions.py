"""What a redemption may spend, read inside the transaction that records it.

The check and the record share one write transaction under the shop's points lock (the
SQLite write lock, a PostgreSQL advisory lock), so two redemptions of one customer, in two
threads or two processes, see each other: the second one counts the first even before the
ledger has its entry. A sync writes its entries under the same lock (:func:`lock_points`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    literal,
    null,
    select,
    union_all,
)

from shopsync.store._engine import exclusive
from shopsync.store.schema import loyalty_inputs, loyalty_ledger, tombstones

__all__ = [
    "latest_redemption",
    "lock_customer",
    "lock_points",
    "moved_generations",
    "moved_generations_query",
    "removed_customers",
    "spendable",
]


def lock_customer(conn: Connection, shop_id: int, customer_id: str) -> None:
    """Hold this customer's points until the transaction ends: the shop's points lock, the
    one a :func:`shopsync.loyalty.update_ledger` writing entries holds (see :func:`lock_points`)."""
    lock_points(conn, shop_id)


def lock_points(conn: Connection, shop_id: int, seen: list[Any] | None = None) -> bool:
    """Hold the shop's points until the transaction ends; False if the shop's loyalty inputs
    are no longer ``seen`` (:func:`shopsync.store._ledger_mark.inputs_version`).

    A sync derives entries from inputs it read before it writes; a redemption committed in
    between (it was activity, and spent points) was missing from a derivation that wrote
    an expiry of the same points: they were spent twice. A sync writes under this lock
    after checking that the inputs did not move, and derives again if they did; a
    redemption checks and records under it, so it sees the sync's entries.
    """
    exclusive(conn, f"loyalty:{shop_id}")
    if seen is None:
        return True
    query = select(func.count(), func.max(loyalty_inputs.c.id)).where(
        loyalty_inputs.c.shop_id == shop_id
    )
    return [None if v is None else int(v) for v in conn.execute(query).one()] == seen


def removed_customers(conn: Connection, shop_id: int) -> set[str]:
    """Customers deleted or erased (tombstoned): a sync writes them no entries. Read under
    :func:`lock_points`, which a deletion and an erasure of a customer take as well, so one
    committed while the sync derived (from customers it read before) is seen here."""
    query = select(tombstones.c.id).where(
        tombstones.c.shop_id == shop_id, tombstones.c.resource == "customers"
    )
    return set(conn.execute(query).scalars())


def latest_redemption(conn: Connection, shop_id: int, customer_id: str) -> int | None:
    """When the customer's latest recorded redemption took effect (micros), or None."""
    return conn.execute(
        select(func.max(loyalty_inputs.c.occurred_at)).where(
            loyalty_inputs.c.shop_id == shop_id,
            loyalty_inputs.c.customer_id == customer_id,
            loyalty_inputs.c.kind == "redeem",
        )
    ).scalar()


def spendable(
    conn: Connection, shop_id: int, customer_id: str, at: int, ledger_key: Callable[[str], str]
) -> int:
    """The most the customer can spend at ``at``: the approved balance, never going below
    zero at ``at`` or at any later entry already in the ledger (a sync run further ahead may
    have recorded approvals and expiries past ``at``), less the recorded redemptions whose
    ledger entry (named ``ledger_key(input key)``) the next sync has yet to write.

    One statement reads both the ledger and the recorded redemptions. PostgreSQL reads
    committed data afresh at each statement, and a first redemption's follow-up sync writes
    its ledger entry without this customer's lock: read in two statements, the entry could
    land between them and be counted by neither, so the points would be spent twice.
    """
    ledger_rows = select(
        literal("ledger").label("source"),
        loyalty_ledger.c.effective_at.label("at"),
        loyalty_ledger.c.id.label("id"),
        loyalty_ledger.c.approved.label("approved"),
        loyalty_ledger.c.source_key.label("key"),
        null().cast(loyalty_inputs.c.data.type).label("data"),
    ).where(loyalty_ledger.c.shop_id == shop_id, loyalty_ledger.c.customer_id == customer_id)
    redemptions = select(
        literal("input").label("source"),
        loyalty_inputs.c.occurred_at,
        literal(0).label("id"),
        literal(0).label("approved"),
        loyalty_inputs.c.key,
        loyalty_inputs.c.data,
    ).where(
        loyalty_inputs.c.shop_id == shop_id,
        loyalty_inputs.c.customer_id == customer_id,
        loyalty_inputs.c.kind == "redeem",
    )
    both = union_all(ledger_rows, redemptions).subquery()
    rows = conn.execute(select(both).order_by(both.c.at, both.c.id)).all()
    written = {r.key for r in rows if r.source == "ledger"}
    balance = 0
    lowest: int | None = None  # set once the entries pass ``at``
    for row in rows:
        if row.source != "ledger":
            continue
        if row.at > at and lowest is None:
            lowest = balance  # the balance at ``at`` itself
        balance += int(row.approved)
        if lowest is not None:
            lowest = min(lowest, balance)
    unledgered = sum(
        int(r.data["points"])
        for r in rows
        if r.source == "input" and ledger_key(r.key) not in written
    )
    return (balance if lowest is None else lowest) - unledgered


_MOVED = "adjust:moved:"
"""The prefix of the keys a moved order's points are reversed under
(:func:`shopsync.loyalty.update_ledger`, which spells it in lower-case ASCII)."""


def moved_generations(
    conn: Connection, shop_id: int, customer_id: str | None = None
) -> dict[tuple[str, str], int]:
    """How many times each (customer, order) had its points reversed because the order
    left the customer (moved, trashed). An order that comes back earns again under keys of
    the next generation, so the ledger's unique keys do not swallow the new entries.
    ``customer_id``: that customer's alone (a one-customer plan: not every moved entry of
    the shop on each webhook)."""
    if customer_id is None:
        rows = conn.execute(moved_generations_query(shop_id, conn.dialect.name)).all()
    else:  # a webhook's re-plan: the statement built once
        mine = {"sid": shop_id, "cid": customer_id}
        rows = conn.execute(_moved_of_one(conn.dialect.name), mine).all()
    return {(str(c), str(o)): int(n) for c, o, n in rows}


@functools.cache
def _moved_of_one(dialect: str) -> Select[Any]:
    """:func:`moved_generations_query` of the customer ``:cid`` of the shop ``:sid``."""
    return moved_generations_query(bindparam("sid"), dialect, bindparam("cid"))


def moved_generations_query(
    shop_id: int | BindParameter[Any],
    dialect: str,
    customer_id: str | BindParameter[Any] | None = None,
) -> Select[Any]:
    """:func:`moved_generations`' statement on the ``dialect`` (``sqlite``, ``postgresql``).

    On SQLite the prefix is a range of keys, which the unique (shop, key) index serves:
    ``LIKE`` is case-insensitive there, so it scanned every entry of the shop (14 s of a plan
    at 10M orders), and matched keys the writer never spells. The range is exact in SQLite's
    byte order. PostgreSQL compares text in the database's collation, where a range of
    punctuated keys need not be the prefix, so it keeps ``LIKE``, which it turns into an
    index range itself where the collation allows (``C``)."""
    ledger = loyalty_ledger
    key = ledger.c.source_key
    mine = [] if customer_id is None else [ledger.c.customer_id == customer_id]
    if dialect == "sqlite" and mine:
        # one customer: through the (shop, customer) index, their few entries; a prefix the
        # key index cannot serve keeps SQLite from ranging over every moved entry instead
        moved = func.substr(key, 1, len(_MOVED)) == _MOVED
    elif dialect == "sqlite":
        after = _MOVED[:-1] + chr(ord(_MOVED[-1]) + 1)  # the first key past the prefix
        moved = and_(key >= _MOVED, key < after)
    else:
        moved = key.like(f"{_MOVED}%")
    return (
        select(ledger.c.customer_id, ledger.c.order_id, func.count())
        .where(ledger.c.shop_id == shop_id, *mine, ledger.c.order_id.is_not(None), moved)
        .group_by(ledger.c.customer_id, ledger.c.order_id)
    )
