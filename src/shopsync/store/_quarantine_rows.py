"""The quarantine's rows: records a platform sent that could not be stored, with the reason.

The bodies of :meth:`Store.quarantine <shopsync.store.Store.quarantine>` and the methods
beside it. A record is keyed by its id, or by a hash of its payload when it has none, so
seeing it again updates one row rather than adding another.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, update

from shopsync.adapter import Rejected
from shopsync.store import _rows
from shopsync.store.schema import quarantine, shops

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["QuarantinedRecord", "add", "listed", "resolve"]


@dataclass(frozen=True)
class QuarantinedRecord:
    id: int
    platform: str
    shop: str
    resource: str
    record_id: str | None
    raw: str
    reason: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    times_seen: int
    resolved_at: dt.datetime | None


def _now_micros() -> int:
    return _rows.to_micros(dt.datetime.now(dt.timezone.utc))


def add(
    store: Store, platform: str, shop: str, rejected: Iterable[Rejected], conn: Connection | None
) -> int:
    """:meth:`Store.quarantine <shopsync.store.Store.quarantine>`."""
    count = 0
    now = _now_micros()
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c)
        store._writing(c, shop_id)
        for item in rejected:
            key = item.record_id or "sha256:" + hashlib.sha256(item.raw.encode()).hexdigest()[:32]
            where = (
                quarantine.c.shop_id == shop_id,
                quarantine.c.resource == item.resource,
                quarantine.c.record_key == key,
            )
            changed = c.execute(
                update(quarantine)
                .where(*where)
                .values(
                    raw=item.raw,
                    reason=item.reason,
                    last_seen=now,
                    times_seen=quarantine.c.times_seen + 1,
                    resolved_at=None,
                )
            )
            if not changed.rowcount:
                c.execute(
                    quarantine.insert().values(
                        shop_id=shop_id,
                        resource=item.resource,
                        record_key=key,
                        record_id=item.record_id,
                        raw=item.raw,
                        reason=item.reason,
                        first_seen=now,
                        last_seen=now,
                        times_seen=1,
                    )
                )
            count += 1
    return count


def listed(store: Store, include_resolved: bool) -> list[QuarantinedRecord]:
    """:meth:`Store.quarantined <shopsync.store.Store.quarantined>`."""
    query = select(quarantine, shops.c.platform, shops.c.shop).join(
        shops, shops.c.shop_id == quarantine.c.shop_id
    )
    if not include_resolved:
        query = query.where(quarantine.c.resolved_at.is_(None))
    with store.engine.connect() as conn:
        return [
            QuarantinedRecord(
                id=r.id,
                platform=r.platform,
                shop=r.shop,
                resource=r.resource,
                record_id=r.record_id,
                raw=r.raw,
                reason=r.reason,
                first_seen=_rows.from_micros(r.first_seen),  # type: ignore[arg-type]
                last_seen=_rows.from_micros(r.last_seen),  # type: ignore[arg-type]
                times_seen=r.times_seen,
                resolved_at=_rows.from_micros(r.resolved_at),
            )
            for r in conn.execute(query.order_by(quarantine.c.id))
        ]


def resolve(store: Store, quarantine_id: int, conn: Connection | None) -> None:
    """:meth:`Store.resolve_quarantined <shopsync.store.Store.resolve_quarantined>`."""
    with store._conn(conn) as c:
        c.execute(
            update(quarantine)
            .where(quarantine.c.id == quarantine_id)
            .values(resolved_at=_now_micros())
        )
