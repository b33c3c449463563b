"""Where the last sync of each resource of a shop stopped: its cursor and high-water mark.

The bodies of :meth:`Store.get_cursor <shopsync.store.Store.get_cursor>` and
:meth:`Store.set_cursor <shopsync.store.Store.set_cursor>`; a sync writes its checkpoint in
the transaction of the page it read, so neither lands without the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from shopsync.store import _rows
from shopsync.store.schema import sync_cursors

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["Cursor", "get", "put"]


@dataclass(frozen=True)
class Cursor:
    """Where the last sync of one resource of one shop stopped."""

    cursor: str | None
    high_water: dt.datetime | None
    state: dict[str, Any]
    updated_at: dt.datetime


def get(
    store: Store, platform: str, shop: str, resource: str, conn: Connection | None
) -> Cursor | None:
    """:meth:`Store.get_cursor <shopsync.store.Store.get_cursor>`."""
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c, create=False)
        row = c.execute(
            select(sync_cursors).where(
                sync_cursors.c.shop_id == shop_id, sync_cursors.c.resource == resource
            )
        ).first()
    if row is None:
        return None
    return Cursor(
        cursor=row.cursor,
        high_water=_rows.from_micros(row.high_water),
        state=dict(row.state),
        updated_at=_rows.from_micros(row.updated_at),  # type: ignore[arg-type]
    )


def put(
    store: Store,
    platform: str,
    shop: str,
    resource: str,
    checkpoint: tuple[str | None, dt.datetime | None, dict[str, Any] | None],
    conn: Connection | None,
) -> None:
    """:meth:`Store.set_cursor <shopsync.store.Store.set_cursor>` of ``checkpoint``, the
    cursor, high-water mark and state."""
    cursor, high_water, state = checkpoint
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c)
        store._writing(c, shop_id)
        values = {
            "cursor": cursor,
            "high_water": _rows.opt_micros(high_water),
            "state": state or {},
            "updated_at": _rows.to_micros(dt.datetime.now(dt.timezone.utc)),
        }
        changed = c.execute(
            update(sync_cursors)
            .where(sync_cursors.c.shop_id == shop_id, sync_cursors.c.resource == resource)
            .values(**values)
        )
        if not changed.rowcount:
            c.execute(sync_cursors.insert().values(shop_id=shop_id, resource=resource, **values))
