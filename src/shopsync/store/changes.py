"""Changed customers: what webhook intake leaves for a worker to plan and apply.

Planning and delivering inside a webhook request holds the platform's delivery open (Shopify
gives a receiver 5 seconds, https://shopify.dev/docs/apps/build/webhooks/subscribe/https, then
retries 8 times over 4 hours, https://shopify.dev/changelog/updates-to-webhook-retry-mechanism)
and races the nightly apply. So intake only writes the change and notes the
customer here, in the same transaction, and a separate loop or cron step drains the list.

Exact: a note is written with the change or not at all, so a crash never keeps one without
the other (a platform retry of a delivery already applied is a duplicate and would note
nothing). A worker reads a batch, plans and applies it, then clears each note only if its
``seq`` is unchanged: a customer changed again meanwhile stays listed for the next pass. A
crash before clearing re-plans the batch, which the outbox turns into no repeated message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store import _rows
from shopsync.store.schema import changed_customers, shops

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shopsync.store import Store

__all__ = ["Change", "changed", "clear_changes", "mark_changed"]


@dataclass(frozen=True)
class Change:
    """One customer whose data changed since they were last planned."""

    platform: str
    shop: str
    customer_id: str
    seq: int
    changed_at: dt.datetime


def mark_changed(
    store: Store,
    conn: Connection,
    platform: str,
    shop: str,
    customer_ids: Iterable[str],
    at: dt.datetime,
) -> int:
    """Note the customers as changed, inside the caller's transaction ``conn``."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    shop_id = store.shop_id(platform, shop, conn)
    micros = _rows.to_micros(at)
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(changed_customers)
    statement = insert.on_conflict_do_update(
        index_elements=[changed_customers.c.shop_id, changed_customers.c.customer_id],
        set_={"seq": changed_customers.c.seq + 1, "changed_at": insert.excluded.changed_at},
    )
    rows = [{"shop_id": shop_id, "customer_id": c, "seq": 1, "changed_at": micros} for c in ids]
    conn.execute(statement, rows)
    return len(ids)


def changed(store: Store, *, limit: int = 1000) -> list[Change]:
    """The oldest ``limit`` notes, oldest first."""
    query = (
        select(
            shops.c.platform,
            shops.c.shop,
            changed_customers.c.customer_id,
            changed_customers.c.seq,
            changed_customers.c.changed_at,
        )
        .join(shops, shops.c.shop_id == changed_customers.c.shop_id)
        .order_by(changed_customers.c.changed_at, changed_customers.c.customer_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [
            Change(r.platform, r.shop, r.customer_id, int(r.seq), _rows.from_micros(r.changed_at))  # type: ignore[arg-type]
            for r in conn.execute(query)
        ]


def clear_changes(store: Store, done: Iterable[Change]) -> int:
    """Remove the notes a worker handled, unless the customer changed again since it read
    them (their ``seq`` moved on); returns how many were removed."""
    removed = 0
    with store.transaction() as conn:
        for change in done:
            shop_id = store.shop_id(change.platform, change.shop, conn, create=False)
            result = conn.execute(
                delete(changed_customers).where(
                    and_(
                        changed_customers.c.shop_id == shop_id,
                        changed_customers.c.customer_id == change.customer_id,
                        changed_customers.c.seq == change.seq,
                    )
                )
            )
            removed += int(result.rowcount)
    return removed
