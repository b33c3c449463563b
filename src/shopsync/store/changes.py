"""Changed customers: what webhook intake leaves for a worker to plan and apply.

Planning and delivering inside a webhook request holds the platform's delivery open (Shopify
gives a receiver 5 seconds, https://shopify.dev/docs/apps/build/webhooks/subscribe/https, then
retries 8 times over 4 hours, https://shopify.dev/changelog/updates-to-webhook-retry-mechanism)
and races the nightly apply. So intake only writes the change and notes the
customer here, in the same transaction, and a separate loop or cron step drains the list.

Exact: a note is written with the change or not at all, so a crash never keeps one without
the other (a platform retry of a delivery already applied is a duplicate and would note
nothing). A worker reads a batch, plans and applies it, then clears each note only if its
``seq`` is unchanged: a customer changed again meanwhile stays listed for the next pass. Each
write of a note takes the next value of one sequence for the whole store (revision 0026), so
a ``seq`` read names that write alone: never a note removed since and written again. A
crash before clearing re-plans the batch, which the outbox turns into no repeated message.
A cleared note stays as a *handled* note (:func:`clear_changes`), off the workers' list,
until an incremental plan consumes it.

Every write path of the store notes the customers it changed, in its own transaction
(issue 19): an upsert (:func:`before_write` / :func:`note_written`, which compare the stored
versions before and after the write, so an overlap re-read that changes nothing notes
nothing and a moved order notes both owners), a deletion (:func:`note_deletion`), a consent
or tag change, a loyalty input. The helpers sit beside the writes rather than inside them:
they read the rows a write leaves, whatever way it writes them (INSERT or COPY).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, select, update

from shopsync._instants import instant
from shopsync.store import _rows
from shopsync.store.schema import (
    NOTE_SEQUENCE,
    changed_customers,
    customers,
    loyalty_due,
    orders,
    program_due,
    shops,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shopsync.store import Store

__all__ = [
    "Change",
    "before_write",
    "changed",
    "clear_changes",
    "mark_changed",
    "note",
    "note_deletion",
    "note_written",
    "noted_at",
]

_CHUNK = 500


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
    return note(conn, store.shop_id(platform, shop, conn), ids, at)


_SQLITE_NOTE = (
    "INSERT INTO changed_customers (shop_id, customer_id, seq, changed_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (shop_id, customer_id) DO UPDATE"
    " SET seq = excluded.seq, changed_at = excluded.changed_at"
)
"""What :func:`note`'s statement is on SQLite, for one ``executemany`` of plain tuples."""

_SQLITE_TAKE = "UPDATE note_counter SET value = value + ? WHERE id = 1"
"""SQLite: take the next ``?`` values of the note sequence (:data:`.schema.note_counter`)."""


def note(
    conn: Connection, shop_id: int, customer_ids: Iterable[str | None], at: dt.datetime
) -> int:
    """Note the customers of shop ``shop_id`` as changed, inside the caller's transaction.

    Each write of a note takes the next value of the store's note sequence as its ``seq``
    (revision 0026): a worker or a settle that matches the ``seq`` it read never takes a
    note written since for it, even one removed and written again in the same microsecond.
    A customer's note is written once per transaction, however many of its writes note them
    (a delivery's upsert, then its own note of every customer it names). A change dated
    before 1970 (an ``apply`` given such a ``now``) is noted at the epoch: a negative moment
    marks a note handled (:func:`clear_changes`)."""
    ids = _not_noted(conn, shop_id, customer_ids)
    if not ids:
        return 0
    if conn.dialect.name == "sqlite":  # plain tuples: SQLAlchemy's parameter work per row
        # cost more than the insert (a bulk backfill notes a customer an order, issue 20)
        micros = _stamp(at)
        first = _take(conn, len(ids))
        rows = [(shop_id, c, first + n, micros) for n, c in enumerate(ids)]
        conn.exec_driver_sql(_SQLITE_NOTE, rows)
    else:  # PostgreSQL, one statement: an executemany is a round trip per customer (issue 20)
        conn.exec_driver_sql(_PG_NOTE, _pg_params(shop_id, ids, at))
    return len(ids)


def _take(conn: Connection, count: int) -> int:
    """SQLite: the first of ``count`` new values of the note sequence. The counter's row is
    written in the caller's transaction under SQLite's one writer: no other transaction
    takes a value until it ends, and one it rolls back was seen by no reader."""
    if conn.dialect.update_returning:  # one round trip, not two
        taken = conn.exec_driver_sql(_SQLITE_TAKE + " RETURNING value", (count,)).scalar_one()
    else:
        conn.exec_driver_sql(_SQLITE_TAKE, (count,))
        taken = conn.exec_driver_sql("SELECT value FROM note_counter WHERE id = 1").scalar_one()
    return int(taken) - count + 1


def _not_noted(conn: Connection, shop_id: int, customer_ids: Iterable[str | None]) -> list[str]:
    """The customers not yet noted in ``conn``'s transaction, from now on counted noted."""
    transaction = conn.get_transaction()
    held = conn.info.get("shopsync.noted")
    if held is None or held[0] is not transaction or transaction is None:
        held = conn.info["shopsync.noted"] = (transaction, set())
    done: set[tuple[int, str]] = held[1]
    ids = sorted({c for c in customer_ids if c and (shop_id, c) not in done})
    done.update((shop_id, c) for c in ids)
    return ids


_PG_NOTE = (
    "INSERT INTO changed_customers (shop_id, customer_id, seq, changed_at)"
    f" SELECT %(note_shop_id)s::INTEGER, n.id, nextval('{NOTE_SEQUENCE}'), %(note_at)s::BIGINT"
    " FROM unnest(%(note_ids)s::VARCHAR[]) AS n (id)"
    " ON CONFLICT (shop_id, customer_id) DO UPDATE"
    " SET seq = excluded.seq, changed_at = excluded.changed_at"
)
"""What :func:`note`'s statement is on PostgreSQL, as plain text (its ids
``_rows.array_param``, each row's ``seq`` from :data:`.schema.NOTE_SEQUENCE`): SQLAlchemy
composing it each page cost about 0.5 ms of this process's CPU a page of 250 orders (issue
20)."""


def noting(
    conn: Connection, shop_id: int, customer_ids: Iterable[str | None], at: dt.datetime
) -> tuple[str, dict[str, Any]] | None:
    """PostgreSQL: :func:`note`'s statement as plain text and its parameters (named
    ``note_*``), for the caller to send with another (a data-modifying ``WITH``: one round
    trip for both); None when there is nothing left to note."""
    ids = _not_noted(conn, shop_id, customer_ids)
    if not ids:
        return None
    return _PG_NOTE, _pg_params(shop_id, ids, at)


def _pg_params(shop_id: int, ids: list[str], at: dt.datetime) -> dict[str, Any]:
    return {
        "note_shop_id": shop_id,
        "note_ids": _rows.array_param(ids),
        "note_at": _stamp(at),
    }


def _stamp(at: dt.datetime) -> int:
    """A live note's ``changed_at``: never negative (see :func:`note`)."""
    return max(0, _rows.to_micros(at))


def changed(store: Store, *, limit: int = 1000) -> list[Change]:
    """The oldest ``limit`` notes no worker handled yet, oldest first."""
    query = (
        select(
            shops.c.platform,
            shops.c.shop,
            changed_customers.c.customer_id,
            changed_customers.c.seq,
            changed_customers.c.changed_at,
        )
        .join(shops, shops.c.shop_id == changed_customers.c.shop_id)
        .where(changed_customers.c.changed_at >= 0)  # handled ones: negative (see clear_changes)
        .order_by(changed_customers.c.changed_at, changed_customers.c.customer_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [
            Change(r.platform, r.shop, r.customer_id, int(r.seq), noted_at(int(r.changed_at)))
            for r in conn.execute(query)
        ]


def clear_changes(store: Store, done: Iterable[Change]) -> int:
    """Take the notes a worker handled off :func:`changed`'s list, unless the customer
    changed again since it read them (a new write of the note took another ``seq``, also
    after a settle removed it; or, from an older process, another moment); returns how many
    were taken.

    A note taken stays, marked handled (``seq`` kept, ``changed_at`` stored as -1 - micros:
    :func:`noted_at`), until an incremental plan's settle consumes it (issue 19). An
    incremental plan that read the customer before the change and settles after this writes
    moments derived without it; its settle removes a note only with the ``seq`` it read, so
    the handled note stays and the next incremental plan plans the customer again. A plan
    that read this ``seq`` read the changed rows, and its settle may consume it. A new change
    makes the note the workers' again (a new ``seq``, ``changed_at`` the change's). A sign, not
    a column: no revision, and :func:`changed` reads the ``changed_at`` index from 0 on, past
    the handled notes.

    The worker recorded no moments, so those customers' program and loyalty moments (derived
    before the change) are deleted, not made due, and the shops' moment cover
    (:data:`shopsync.store.schema.moment_cover`) is lowered: the next incremental plan's pass
    over every customer finds them too, as it finds a new one."""
    from shopsync.store import NO_SHOP
    from shopsync.store.incremental import hold_moments, lower_cover

    cleared: dict[int, list[str]] = {}
    with store.transaction() as conn:
        notes = [(store.shop_id(c.platform, c.shop, conn, create=False), c) for c in done]
        for shop_id in sorted({shop_id for shop_id, _ in notes} - {NO_SHOP}):
            hold_moments(conn, shop_id)  # as a settle does: neither waits for the other's rows
        col = changed_customers.c
        for shop_id, change in notes:
            result = conn.execute(
                update(changed_customers)
                .where(
                    and_(
                        col.shop_id == shop_id,
                        col.customer_id == change.customer_id,
                        # the write read, still live (a handled one, negative, is not
                        # taken again); its moment too: an older process left running after
                        # revision 0026 writes seq + 1, a value the sequence hands out next
                        col.seq == change.seq,
                        col.changed_at == _rows.to_micros(change.changed_at),
                    )
                )
                .values(changed_at=-col.changed_at - 1)
            )
            if result.rowcount:
                cleared.setdefault(shop_id, []).append(change.customer_id)
        for shop_id, ids in cleared.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                for table in (loyalty_due, program_due):
                    conn.execute(
                        delete(table).where(
                            table.c.shop_id == shop_id, table.c.customer_id.in_(chunk)
                        )
                    )
        # their moments are gone: the next incremental plan looks at every customer
        lower_cover(conn, cleared)
    return sum(len(ids) for ids in cleared.values())


def noted_at(changed_at: int) -> dt.datetime:
    """When a note's change landed, from its stored ``changed_at``: negative (-1 - micros)
    once a worker handled it (:func:`clear_changes`)."""
    return instant(changed_at if changed_at >= 0 else -1 - changed_at)


# -- the store's write paths ----------------------------------------------------------------

Versions = dict[str, tuple[Any, ...]]
"""record id -> (owner customer id, updated_at, content_hash) as stored."""


def _versions(conn: Connection, shop_id: int, resource: str, ids: list[str]) -> Versions:
    table = customers if resource == "customers" else orders
    owner = table.c.id if resource == "customers" else table.c.customer_id
    found: Versions = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(table.c.id, owner, table.c.updated_at, table.c.content_hash).where(
            table.c.shop_id == shop_id, _rows.among(conn, table.c.id, chunk)
        )
        for row in conn.execute(query):
            found[row[0]] = (row[1], row[2], row[3])
    return found


def before_write(
    conn: Connection, shop_id: int, resource: str, ids: Iterable[str]
) -> tuple[str, list[str], Versions] | None:
    """What the store holds of the records about to be written (customers and orders; other
    resources name no customer): :func:`note_written` compares it with what the write left."""
    if resource not in ("customers", "orders"):
        return None
    wanted = sorted(set(ids))
    return resource, wanted, _versions(conn, shop_id, resource, wanted)


def note_written(
    conn: Connection,
    shop_id: int,
    before: tuple[str, list[str], Versions] | None,
    written: Versions | None = None,
) -> int:
    """Note the customers whose records the write changed: a record new or stored in another
    version; for an order both its owner before and after (a platform can move an order).

    ``written``: the versions the write stored, from a writer that knows them (the order
    upsert, which holds the shop's lock and removed what it replaced): what it left is then
    the stored versions with those put in, not read again."""
    if before is None:
        return 0
    resource, ids, old = before
    new = _versions(conn, shop_id, resource, ids) if written is None else {**old, **written}
    touched: set[str | None] = set()
    for rid, now in new.items():
        was = old.get(rid)
        if was != now:
            touched |= {now[0], was[0] if was else None}
    return note(conn, shop_id, touched, dt.datetime.now(dt.timezone.utc))


def note_deletion(conn: Connection, shop_id: int, resource: str, record_id: str) -> int:
    """Before a record is deleted: note the customer it is, or the customer owning it."""
    if resource not in ("customers", "orders"):
        return 0
    held = _versions(conn, shop_id, resource, [record_id]).get(record_id)
    if held is None:
        return 0
    return note(conn, shop_id, [held[0]], dt.datetime.now(dt.timezone.utc))


def note_keys(conn: Connection, keys: Iterable[tuple[int, str]]) -> int:
    """Note ``(shop_id, customer_id)`` pairs (loyalty inputs name their shop per row)."""
    by_shop: dict[int, set[str]] = {}
    for shop_id, customer_id in keys:
        by_shop.setdefault(int(shop_id), set()).add(customer_id)
    now = dt.datetime.now(dt.timezone.utc)
    return sum(note(conn, shop_id, ids, now) for shop_id, ids in sorted(by_shop.items()))
