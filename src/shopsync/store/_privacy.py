"""The store's SQL for what destructive webhooks leave behind: tombstones and shop activity.

A tombstone keeps a deleted or redacted record out of the store whatever a late delivery or
a later sync page says. Both platforms sign only the body of a delivery, and a deletion body
is nothing but an id, so a deletion can be replayed under another resource's topic and a
tombstone can be wrong; it must never block an honest re-sync for good. An operator lists
and lifts them here (``shopsync tombstones list|lift``); the next full sync then brings back
whatever the platform still has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from shopsync.store import _rows
from shopsync.store.schema import sync_cursors, tombstones, webhook_deliveries

__all__ = ["Tombstone", "last_activity", "lift_tombstones", "list_tombstones"]

RESOURCES = ("customers", "orders", "products")


@dataclass(frozen=True)
class Tombstone:
    """A record the store keeps out: ``reason`` is ``deleted`` or ``redacted``."""

    resource: str
    record_id: str
    reason: str
    at: dt.datetime


def list_tombstones(conn: Connection, shop_id: int, resource: str | None = None) -> list[Tombstone]:
    query = select(tombstones).where(tombstones.c.shop_id == shop_id)
    if resource is not None:
        query = query.where(tombstones.c.resource == resource)
    rows = conn.execute(query.order_by(tombstones.c.resource, tombstones.c.id))
    return [
        Tombstone(r.resource, r.id, r.reason, _rows.from_micros(r.at))  # type: ignore[arg-type]
        for r in rows
    ]


def lift_tombstones(
    conn: Connection,
    shop_id: int,
    resource: str | None = None,
    ids: Iterable[str] | None = None,
) -> int:
    """Remove tombstones (all of the shop, of one resource, or these ids of it)."""
    if resource is not None and resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}: one of {', '.join(RESOURCES)}")
    where = [tombstones.c.shop_id == shop_id]
    if resource is not None:
        where.append(tombstones.c.resource == resource)
    if ids is not None:
        wanted = sorted({str(i) for i in ids})
        if not wanted:
            return 0
        where.append(tombstones.c.id.in_(wanted))
    return int(conn.execute(tombstones.delete().where(*where)).rowcount)


def last_activity(conn: Connection, shop_id: int) -> dt.datetime | None:
    """The last sign that the shop is installed: a sync checkpoint or a delivery received."""
    synced = conn.execute(
        select(func.max(sync_cursors.c.updated_at)).where(sync_cursors.c.shop_id == shop_id)
    ).scalar()
    delivered = conn.execute(
        select(func.max(webhook_deliveries.c.received_at)).where(
            webhook_deliveries.c.shop_id == shop_id
        )
    ).scalar()
    known = [v for v in (synced, delivered) if v is not None]
    return _rows.from_micros(max(known)) if known else None
