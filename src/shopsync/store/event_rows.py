"""Browse and cart events as rows: the SQL behind :mod:`shopsync.events` (issue 22).

Writes refuse a shop the store does not serve, skip an event already held (the same
``event_id``: a replay or a retry), and keep at most ``cap`` events per visitor in any
``window`` of receipt time (a flood from one visitor, a script, fills nothing). The count and
the inserts of a visitor run under that visitor's lock (:func:`shopsync.store._engine.exclusive`:
a PostgreSQL transaction advisory lock, the SQLite write transaction): two simultaneous
requests of one visitor both counted before either inserted, and stored twice the cap. Reads give
the core the identified customers' events up to ``as_of``; erasure and export cover them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.core._data import BROWSE
from shopsync.store import _rows
from shopsync.store._engine import exclusive
from shopsync.store._idset import in_set
from shopsync.store.schema import browse_events

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "BROWSE_SCHEMA",
    "EventRow",
    "Recorded",
    "browse_frame",
    "erase_events",
    "export_events",
    "record_events",
]

BROWSE_SCHEMA = BROWSE


@dataclass(frozen=True)
class EventRow:
    """One event as the endpoint parsed it."""

    event_id: str
    visitor_id: str
    customer_id: str | None
    kind: str
    product_id: str | None
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_events` did: stored, already held, or over the visitor's cap."""

    stored: int
    duplicates: int
    capped: int


class UnknownShop(LookupError):
    """The store serves no such shop (the endpoint answers 404)."""


def record_events(
    store: Store,
    platform: str,
    shop: str,
    events: Sequence[EventRow],
    *,
    received_at: dt.datetime,
    cap: int,
    window: dt.timedelta,
) -> Recorded:
    """Store ``events`` of one shop in one transaction (see the module docstring)."""
    from shopsync.store import NO_SHOP

    shop_id = store.shop_id(platform, shop, create=False)
    if shop_id == NO_SHOP:
        raise UnknownShop(shop)
    at = _rows.to_micros(received_at)
    since = _rows.to_micros(received_at - window)
    stored = duplicates = capped = 0
    t = browse_events
    with store.transaction() as conn:
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        counts: dict[str, int] = {}
        identified: set[str | None] = set()
        for visitor in sorted({e.visitor_id for e in events}):  # one order: no deadlock
            exclusive(conn, f"events:{shop_id}:{visitor}")
        for e in events:
            if e.visitor_id not in counts:
                counts[e.visitor_id] = int(
                    conn.execute(
                        select(func.count()).where(
                            t.c.shop_id == shop_id,
                            t.c.visitor_id == e.visitor_id,
                            t.c.received_at > since,
                        )
                    ).scalar_one()
                )
            if counts[e.visitor_id] >= cap:
                capped += 1
                continue
            row = {
                "shop_id": shop_id,
                "event_id": e.event_id,
                "visitor_id": e.visitor_id,
                "customer_id": e.customer_id,
                "kind": e.kind,
                "product_id": e.product_id,
                "occurred_at": _rows.to_micros(min(e.occurred_at, received_at)),
                "received_at": at,
            }
            done = conn.execute(insert(t).values(**row).on_conflict_do_nothing())
            if done.rowcount:
                stored += 1
                counts[e.visitor_id] += 1
                identified.add(e.customer_id)
            else:
                duplicates += 1
        from shopsync.store.changes import note  # a reminder can be due (issue 19)

        note(conn, shop_id, identified, received_at)
    return Recorded(stored, duplicates, capped)


_BROWSE = select(
    browse_events.c.customer_id,
    browse_events.c.product_id,
    browse_events.c.kind,
    browse_events.c.occurred_at,
).where(
    browse_events.c.shop_id == bindparam("sid"),
    browse_events.c.customer_id.is_not(None),
    browse_events.c.occurred_at <= bindparam("at"),
)
_BROWSE_ORDER = (browse_events.c.occurred_at, browse_events.c.id)
_BROWSE_ONE = _BROWSE.where(browse_events.c.customer_id == bindparam("cid"))
_BROWSE_ONE = _BROWSE_ONE.order_by(*_BROWSE_ORDER)  # a webhook's re-plan: built once


def browse_frame(
    store: Store,
    shop_id: int,
    at: int,
    customer_id: str | None = None,
    customer_ids: Collection[str] | None = None,
) -> pl.DataFrame:
    """Identified customers' events up to ``at`` (micros), as the core reads them (of one
    customer, or of ``customer_ids``, when given)."""
    t = browse_events
    params: dict[str, Any] = {"sid": shop_id, "at": at}
    if customer_id is not None and customer_ids is None:  # a webhook's re-plan: built once
        query, params["cid"] = _BROWSE_ONE, customer_id
    else:
        query = _BROWSE
        if customer_id is not None:
            query = query.where(t.c.customer_id == customer_id)
        if customer_ids is not None:
            query = query.where(in_set(t.c.customer_id, customer_ids, store.engine.dialect.name))
        query = query.order_by(*_BROWSE_ORDER)
    with store.engine.connect() as conn:
        rows = conn.execute(query, params).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=BROWSE_SCHEMA, orient="row")


def erase_events(conn: Connection, shop_id: int, customer_id: str) -> int:
    """Delete a customer's events (GDPR erasure)."""
    t = browse_events
    done = conn.execute(t.delete().where(t.c.shop_id == shop_id, t.c.customer_id == customer_id))
    return int(done.rowcount)


def export_events(conn: Connection, shop_id: int, customer_id: str) -> list[dict[str, Any]]:
    """A customer's events as JSON-ready data (GDPR access), oldest first."""
    t = browse_events
    rows = conn.execute(
        select(t.c.event_id, t.c.kind, t.c.product_id, t.c.occurred_at)
        .where(t.c.shop_id == shop_id, t.c.customer_id == customer_id)
        .order_by(t.c.occurred_at, t.c.id)
    )
    return [
        {
            "event_id": r.event_id,
            "kind": r.kind,
            "product_id": r.product_id,
            "occurred_at": _rows.from_micros(r.occurred_at).isoformat(),  # type: ignore[union-attr]
        }
        for r in rows
    ]
