"""What a redemption may spend, read inside the transaction that records it.

The check and the record share one write transaction under a per-customer lock (the SQLite
write lock, a PostgreSQL advisory lock), so two redemptions of one customer, in two threads
or two processes, see each other: the second one counts the first even before the ledger
has its entry.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from shopsync.store._engine import exclusive
from shopsync.store.schema import loyalty_inputs, loyalty_ledger

__all__ = [
    "latest_redemption",
    "lock_customer",
    "moved_generations",
    "spendable",
    "unledgered_redemptions",
]


def lock_customer(conn: Connection, shop_id: int, customer_id: str) -> None:
    """Hold this customer's points until the transaction ends."""
    exclusive(conn, f"loyalty:{shop_id}:{customer_id}")


def latest_redemption(conn: Connection, shop_id: int, customer_id: str) -> int | None:
    """When the customer's latest recorded redemption took effect (micros), or None."""
    return conn.execute(
        select(func.max(loyalty_inputs.c.occurred_at)).where(
            loyalty_inputs.c.shop_id == shop_id,
            loyalty_inputs.c.customer_id == customer_id,
            loyalty_inputs.c.kind == "redeem",
        )
    ).scalar()


def spendable(conn: Connection, shop_id: int, customer_id: str, at: int) -> int:
    """The most the customer can spend at ``at`` without the approved balance going below
    zero at ``at`` or at any later entry already in the ledger (a sync run further ahead may
    have recorded approvals and expiries past ``at``)."""
    rows = conn.execute(
        select(loyalty_ledger.c.effective_at, loyalty_ledger.c.approved)
        .where(loyalty_ledger.c.shop_id == shop_id, loyalty_ledger.c.customer_id == customer_id)
        .order_by(loyalty_ledger.c.effective_at, loyalty_ledger.c.id)
    ).all()
    balance = 0
    lowest: int | None = None  # set once the entries pass ``at``
    for effective_at, approved in rows:
        if effective_at > at and lowest is None:
            lowest = balance  # the balance at ``at`` itself
        balance += int(approved)
        if lowest is not None:
            lowest = min(lowest, balance)
    return balance if lowest is None else lowest


def unledgered_redemptions(
    conn: Connection, shop_id: int, customer_id: str, ledger_key: object
) -> int:
    """Points of recorded redemptions whose ledger entry is not written yet (the next sync
    writes it); ``ledger_key(input_key)`` names that entry."""
    inputs = conn.execute(
        select(loyalty_inputs.c.key, loyalty_inputs.c.data).where(
            loyalty_inputs.c.shop_id == shop_id,
            loyalty_inputs.c.customer_id == customer_id,
            loyalty_inputs.c.kind == "redeem",
        )
    ).all()
    if not inputs:
        return 0
    keys = {ledger_key(r.key): int(r.data["points"]) for r in inputs}  # type: ignore[operator]
    written = set(
        conn.execute(
            select(loyalty_ledger.c.source_key).where(
                loyalty_ledger.c.shop_id == shop_id,
                loyalty_ledger.c.source_key.in_(list(keys)),
            )
        ).scalars()
    )
    return sum(points for key, points in keys.items() if key not in written)


def moved_generations(conn: Connection, shop_id: int) -> dict[tuple[str, str], int]:
    """How many times each (customer, order) had its points reversed because the order
    left the customer (moved, trashed). An order that comes back earns again under keys of
    the next generation, so the ledger's unique keys do not swallow the new entries."""
    ledger = loyalty_ledger
    rows = conn.execute(
        select(ledger.c.customer_id, ledger.c.order_id, func.count())
        .where(
            ledger.c.shop_id == shop_id,
            ledger.c.order_id.is_not(None),
            ledger.c.source_key.like("adjust:moved:%"),
        )
        .group_by(ledger.c.customer_id, ledger.c.order_id)
    ).all()
    return {(str(c), str(o)): int(n) for c, o, n in rows}
