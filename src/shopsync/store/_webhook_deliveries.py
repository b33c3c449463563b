"""The webhook deliveries a store has seen, so that a platform's retry is applied once.

The bodies of :meth:`Store.record_delivery <shopsync.store.Store.record_delivery>` and
:meth:`Store.prune_deliveries <shopsync.store.Store.prune_deliveries>`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from shopsync.store import _rows
from shopsync.store.schema import webhook_deliveries

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["prune", "record"]


def record(
    store: Store, platform: str, shop: str, delivery_id: str, topic: str, conn: Connection | None
) -> bool:
    """:meth:`Store.record_delivery <shopsync.store.Store.record_delivery>`."""
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c)
        store._writing(c, shop_id)
        seen = c.execute(
            select(webhook_deliveries.c.delivery_id).where(
                webhook_deliveries.c.shop_id == shop_id,
                webhook_deliveries.c.delivery_id == delivery_id,
            )
        ).first()
        if seen is not None:
            return False
        c.execute(
            webhook_deliveries.insert().values(
                shop_id=shop_id,
                delivery_id=delivery_id,
                topic=topic,
                received_at=_rows.to_micros(dt.datetime.now(dt.timezone.utc)),
            )
        )
        return True


def prune(store: Store, older_than: dt.datetime) -> int:
    """:meth:`Store.prune_deliveries <shopsync.store.Store.prune_deliveries>`."""
    with store.transaction() as c:
        deleted = c.execute(
            webhook_deliveries.delete().where(
                webhook_deliveries.c.received_at < _rows.to_micros(older_than)
            )
        )
        return int(deleted.rowcount)
