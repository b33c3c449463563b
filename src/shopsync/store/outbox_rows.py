"""The outbox and suppression tables as rows: the SQL behind :mod:`shopsync.outbox`.

The outbox decides what to record, claim, settle or cancel; the statements live here (issue 18:
the store owns every byte of SQL). Each write opens its own transaction unless it takes the
caller's connection, as :func:`record_rows` does so that recording a plan commits at once.
Rows carry the table's columns as attributes (and ``platform``, ``shop`` where joined).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shopsync._instants import instant
from shopsync.store import insert_ignoring_duplicates
from shopsync.store._rows import to_micros
from shopsync.store.schema import outbox, shops, suppressions

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shopsync.store import Store

__all__ = [
    "UNCHANGED_PENDING",
    "actions_of_rows",
    "claim_row",
    "done_later",
    "due_rows",
    "existing_rows",
    "key_rows",
    "list_rows",
    "record_rows",
    "requeue_parked",
    "settle_row",
    "suppress",
    "unsubscribed",
]

_CHUNK = 500  # keys per IN (...) clause


_UNSUBSCRIBED = select(suppressions.c.created_at, suppressions.c.source).where(
    suppressions.c.shop_id == bindparam("sid"),
    suppressions.c.customer_id == bindparam("cid"),
    suppressions.c.channel == "email",
)


def unsubscribed(store: Store, shop_id: int, customer_id: str) -> Any | None:
    """The customer's email suppression (``created_at``, ``source``), None when there is none."""
    with store.engine.connect() as conn:
        return conn.execute(_UNSUBSCRIBED, {"sid": shop_id, "cid": customer_id}).first()


def record_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows (a (shop, key, sink) already held is skipped); how many were new."""
    return insert_ignoring_duplicates(conn, outbox, list(rows))


def due_rows(
    store: Store,
    sinks: Iterable[str],
    shop_ids: Iterable[int | None] | None = None,
    *,
    with_actions: bool = True,
) -> list[Any]:
    """The pending rows of these sinks (of these shops only, if given) with their shop, by
    stage then insertion order; without ``action`` and ``result`` unless ``with_actions``
    (a run reads the actions a part at a time: :func:`actions_of_rows`)."""
    columns = [c for c in outbox.c if with_actions or c.name not in ("action", "result")]
    query = (
        select(*columns, shops.c.platform, shops.c.shop)
        .join(shops, shops.c.shop_id == outbox.c.shop_id)
        .where(outbox.c.status == "pending", outbox.c.sink.in_(list(sinks)))
        .order_by(outbox.c.stage, outbox.c.id)
    )
    if shop_ids is not None:
        query = query.where(outbox.c.shop_id.in_([s for s in shop_ids if s is not None]))
    with store.engine.connect() as conn:
        return list(conn.execute(query))


_ACTIONS = select(outbox.c.id, outbox.c.action).where(
    outbox.c.id.in_(bindparam("ids", expanding=True))
)


def actions_of_rows(store: Store, row_ids: Sequence[int]) -> dict[int, Any]:
    """Row id -> the recorded action (JSON) of these rows (a row gone since is left out)."""
    found: dict[int, Any] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(row_ids), _CHUNK):
            chunk = list(row_ids[start : start + _CHUNK])
            found.update((r[0], r[1]) for r in conn.execute(_ACTIONS, {"ids": chunk}))
    return found


def key_rows(store: Store, keys: Sequence[tuple[int, str]]) -> list[Any]:
    """shop_id, idempotency_key, sink, stage, status, reason of every row of these
    ``(shop_id, idempotency_key)`` pairs, searched through the unique (shop, key, sink) index
    (a key alone has no index: each chunk read the whole outbox)."""
    by_shop: dict[int, list[str]] = {}
    for shop_id, key in keys:
        by_shop.setdefault(shop_id, []).append(key)
    out: list[Any] = []
    with store.engine.connect() as conn:
        for shop_id, shop_keys in sorted(by_shop.items()):
            for start in range(0, len(shop_keys), _CHUNK):
                chunk = shop_keys[start : start + _CHUNK]
                out += conn.execute(_KEY_ROWS, {"sid": shop_id, "keys": chunk}).all()
    return out


_KEY_ROWS = select(
    outbox.c.shop_id,
    outbox.c.idempotency_key,
    outbox.c.sink,
    outbox.c.stage,
    outbox.c.status,
    outbox.c.reason,
).where(
    outbox.c.shop_id == bindparam("sid"),
    outbox.c.idempotency_key.in_(bindparam("keys", expanding=True)),
)


UNCHANGED_PENDING = (
    outbox.c.id == bindparam("row_id"),
    outbox.c.status == "pending",
    outbox.c.attempts == bindparam("seen"),
)
"""The row ``row_id`` still pending after the ``seen`` attempts: what a claim or a deferral
changes only if no other run did first."""
_CLAIM = (
    update(outbox)
    .where(*UNCHANGED_PENDING)
    .values(attempts=bindparam("new_attempts"), updated_at=bindparam("at"))
)
_OWNER = (outbox.c.shop_id, outbox.c.customer_id, outbox.c.kind)
_SENT_AFTER_CANCEL = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("row_id"),
        outbox.c.status == "cancelled",
        outbox.c.attempts == bindparam("seen"),  # this run's claim
    )
    .values(status="done", updated_at=bindparam("at"), finished_at=bindparam("finished"))
    .returning(*_OWNER)
)


@functools.lru_cache(maxsize=32)
def _settle(columns: tuple[str, ...]) -> Any:
    """The settling update of a pending row for these columns, built once (a run settles
    every row it attempts with one of a few column sets)."""
    values: dict[str, Any] = {c: bindparam(f"new_{c}") for c in columns}
    return (
        update(outbox)
        .where(outbox.c.id == bindparam("row_id"), outbox.c.status == "pending")
        .values(updated_at=bindparam("at"), **values)
        .returning(*_OWNER)
    )


def claim_row(store: Store, row_id: int, seen_attempts: int, attempts: int, at: int) -> bool:
    """Set a pending row's attempts, in its own transaction, if no one changed them since they
    were read as ``seen_attempts``: of two overlapping runs only one wins the row."""
    with store.transaction() as conn:
        params = {"row_id": row_id, "seen": seen_attempts, "new_attempts": attempts, "at": at}
        return bool(conn.execute(_CLAIM, params).rowcount)


def settle_row(store: Store, row_id: int, at: int, **values: Any) -> None:
    """Write a pending row's outcome (status, result, reason...), in its own transaction.

    A row cancelled while its delivery was under way (an unsubscribe or an erasure, which
    take no apply lease, landed between the claim and the settle) and then sent is recorded
    ``done``: the message went out. It keeps the cancellation's reason and gets no result
    (an erasure cleared it, and must not see personal data come back). A delivery that
    starts a clock of its own (:data:`shopsync.core.incremental.DELIVERY_STARTS`: a review
    reminder, a browse cooldown) notes its customer as changed in the same transaction, so
    the incremental plan plans them again once it happened (issue 19)."""
    columns = tuple(sorted(values))
    params = {f"new_{c}": values[c] for c in columns}
    with store.transaction() as conn:
        done = list(conn.execute(_settle(columns), {"row_id": row_id, "at": at, **params}))
        if not done and values.get("status") == "done":
            sent = {"seen": values["attempts"], "finished": values.get("finished_at")}
            done = list(conn.execute(_SENT_AFTER_CANCEL, {"row_id": row_id, "at": at, **sent}))
        if values.get("status") == "done":
            _note_clock_starts(conn, done, at)


def _note_clock_starts(conn: Connection, delivered: Sequence[Any], at: int) -> None:
    from shopsync.core.incremental import DELIVERY_STARTS
    from shopsync.store.changes import note

    for shop_id, customer_id, kind in delivered:
        if kind in DELIVERY_STARTS and customer_id:
            note(conn, shop_id, [customer_id], instant(at))


def existing_rows(store: Store) -> list[Any]:
    """shop_id, idempotency_key, sink, status, attempts, result, reason, due_at and
    next_attempt_at of every outbox row (what a dry run compares a plan with)."""
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    outbox.c.shop_id,
                    outbox.c.idempotency_key,
                    outbox.c.sink,
                    outbox.c.status,
                    outbox.c.attempts,
                    outbox.c.result,
                    outbox.c.reason,
                    outbox.c.due_at,
                    outbox.c.next_attempt_at,
                )
            )
        )


def list_rows(
    store: Store,
    statuses: Sequence[str] | None = None,
    *,
    platform: str | None = None,
    shop: str | None = None,
    kind: str | None = None,
    sink: str | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Outbox rows with their shop, oldest first, filtered by any of the arguments given."""
    query = select(outbox, shops.c.platform, shops.c.shop).join(
        shops, shops.c.shop_id == outbox.c.shop_id
    )
    if statuses is not None:
        query = query.where(outbox.c.status.in_(list(statuses)))
    for column, value in (
        (shops.c.platform, platform),
        (shops.c.shop, shop),
        (outbox.c.kind, kind),
        (outbox.c.sink, sink),
    ):
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(outbox.c.id)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        return list(conn.execute(query))


def requeue_parked(store: Store, keys: Iterable[str] | None, at: int) -> int:
    """Parked rows (all, or those of these keys) pending again with attempts reset; how many.
    Their customers are noted as changed: a delivery starts clocks (a review reminder) that
    the incremental plan's stored moments, derived while the row was parked, never saw."""
    from shopsync.store.changes import note

    parked = outbox.c.status == "parked"
    if keys is not None:
        parked = and_(parked, outbox.c.idempotency_key.in_(list(keys)))
    with store.transaction() as conn:
        owners: dict[int, set[str]] = {}
        for shop_id, customer_id in conn.execute(
            select(outbox.c.shop_id, outbox.c.customer_id).where(parked).distinct()
        ):
            owners.setdefault(shop_id, set()).add(customer_id)
        changed = conn.execute(
            update(outbox)
            .where(parked)
            .values(
                status="pending", attempts=0, next_attempt_at=at, updated_at=at, finished_at=None
            )
        )
        for shop_id, ids in sorted(owners.items()):
            note(conn, shop_id, ids, instant(at))
        return int(changed.rowcount)


def suppress(
    conn: Connection, shop_id: int, customer_id: str, channel: str, source: str, at: int
) -> int:
    """Record the suppression (the first one recorded stays) and cancel the customer's pending
    marketing rows, in the caller's transaction; returns how many rows were cancelled."""
    values = {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "channel": channel,
        "created_at": at,
        "source": source[:64],
    }
    dialect = conn.dialect.name
    insert: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(suppressions)
    if conn.execute(insert.on_conflict_do_nothing().values(**values)).rowcount:
        from shopsync.store.changes import note  # a consent change (issue 19)

        note(conn, shop_id, [customer_id], instant(at))
    cancelled = conn.execute(
        update(outbox)
        .where(
            and_(
                outbox.c.shop_id == shop_id,
                outbox.c.customer_id == customer_id,
                outbox.c.status == "pending",
                outbox.c.marketing == 1,
            )
        )
        .values(
            status="cancelled",
            reason=f"customer unsubscribed ({source})",
            updated_at=at,
            finished_at=at,
        )
    )
    return int(cancelled.rowcount)


def done_later(
    store: Store, shop_id: int, customer_id: str, kind: str, sink: str, after: dt.datetime
) -> int:
    """How many rows of this customer, kind and sink are done with a due time after ``after``
    (a later tier change already written supersedes an older one retried now)."""
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    outbox.c.shop_id == shop_id,
                    outbox.c.customer_id == customer_id,
                    outbox.c.kind == kind,
                    outbox.c.sink == sink,
                    outbox.c.status == "done",
                    outbox.c.due_at > to_micros(after),
                )
            ).scalar_one()
        )
