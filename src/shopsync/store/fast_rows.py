"""Orders written from rows (the columnar ingest path, :mod:`shopsync.ingest_columns`).

The same write as :func:`._upsert.upsert_orders` with the same guards, on rows an adapter built
without a model: the shop's writer lock, the newest version per id, ``updated_at`` and the
content hash deciding new / newer / unchanged / stale, child rows replaced with their order,
the order-facts sequence, held refund summaries, the changed-customer notes, and the
completion of the checkouts these orders paid (:func:`.checkout_rows.complete_by_order_rows`),
all in the caller's transaction. Two cases need the model and go back to the caller, who writes them
through :meth:`Store.upsert` in the same transaction: an order a tombstone concerns (a
redaction strips personal data from the model) and a stored version whose hash predates the
row hash (``content_hash.is_legacy``: only its model gives the old hash to compare with).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import JSON, Connection, Table, select
from sqlalchemy.exc import SQLAlchemyError

from shopsync.errors import StoreError
from shopsync.store import _incomplete, facts
from shopsync.store import changes as _changes
from shopsync.store._copy import insert_rows
from shopsync.store._json_text import dumps_like
from shopsync.store._rows import among, array_param

# with this module, not in the first page's write: compiling it and its imports was 14 ms
# there (a fresh process's backfill, benchmarks/ingest.py --memory; issue 20)
from shopsync.store.checkout_rows import complete_paid, paid_rows
from shopsync.store.content_hash import is_legacy
from shopsync.store.schema import fulfillments, line_items, orders, refunds, tombstones

if TYPE_CHECKING:
    from shopsync.ingest_columns import OrderRows
    from shopsync.store import Store, UpsertResult

__all__ = ["upsert_order_rows"]

_CHUNK = 500
_dumps = dumps_like()
"""``json.dumps``, SQLAlchemy's JSON serializer unless the engine names another."""
_TABLES = (orders, line_items, refunds, fulfillments)


def _chunks(items: Sequence[str]) -> list[list[str]]:
    return [list(items[i : i + _CHUNK]) for i in range(0, len(items), _CHUNK)]


def _tombstoned(c: Connection, shop_id: int, keys: set[str]) -> set[tuple[str, str]]:
    marked: set[tuple[str, str]] = set()
    for chunk in _chunks(sorted(keys)):
        query = select(tombstones.c.resource, tombstones.c.id).where(
            tombstones.c.shop_id == shop_id, among(c, tombstones.c.id, chunk)
        )
        marked.update((r.resource, r.id) for r in c.execute(query))
    return marked


def _stored(c: Connection, shop_id: int, ids: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(ids):
        cols = (orders.c.id, orders.c.customer_id, orders.c.updated_at, orders.c.content_hash)
        query = select(*cols).where(orders.c.shop_id == shop_id, among(c, orders.c.id, chunk))
        found.update((r.id, r) for r in c.execute(query))
    return found


_SQLITE_LOOKUP = (
    "SELECT 's' AS kind, id, customer_id, updated_at, content_hash FROM orders"
    " WHERE shop_id = ? AND id IN (SELECT value FROM json_each(?))"
    " UNION ALL SELECT 't', id, resource, NULL, NULL FROM tombstones"
    " WHERE shop_id = ? AND id IN (SELECT value FROM json_each(?))"
    " UNION ALL SELECT 'c', id, NULL, created_at, NULL FROM checkouts"
    " WHERE shop_id = ? AND id IN (SELECT value FROM json_each(?)) AND completed_at IS NULL"
)
_SQLITE_NEXT_SEQ = (
    "UPDATE shops SET facts_seq = facts_seq + 1 WHERE shop_id = ? RETURNING facts_seq"
)
""":func:`.facts.next_seq` (not an erasure) as plain text, for SQLite with ``RETURNING``."""
_PG_NEXT_SEQ = (
    "UPDATE shops SET facts_seq = facts_seq + 1 WHERE shop_id = %(shop_id)s::INTEGER"
    " RETURNING facts_seq"
)
"""The same for PostgreSQL, sent with the page's change notes (:func:`.changes.noting`)."""


def _looked_up_sqlite(
    c: Connection,
    shop_id: int,
    keys: set[str],
    newest: dict[str, OrderRows],
    paid_ids: Iterable[str],
) -> tuple[set[tuple[str, str]], dict[str, Any], list[Any]] | None:
    """SQLite: what :func:`_tombstoned`, :func:`_stored` and the open checkouts' lookup
    (:func:`.checkout_rows.open_among`) read, in one statement of plain text
    (``_SQLITE_LOOKUP``): composed by SQLAlchemy, they cost a page of 100 orders about as
    much as writing it (issue 20). The ids go in as JSON arrays, as ``_rows.among`` writes
    them, so only plain ASCII text without a backslash (else None: the caller reads them the
    long way). The stored versions and checkouts are read for every id, tombstoned ones too."""
    wanted = json.dumps(list(newest))
    marks = json.dumps(sorted(keys))
    paid = json.dumps(sorted(paid_ids))
    if not (wanted.isascii() and marks.isascii()) or "\\" in wanted or "\\" in marks:
        return None
    lookup = (shop_id, wanted, shop_id, marks, shop_id, paid)
    return _sorted(c.exec_driver_sql(_SQLITE_LOOKUP, lookup))


_PG_LOOKUP = (
    "SELECT 's' AS kind, id, customer_id, updated_at, content_hash FROM orders"
    " WHERE shop_id = %(shop_id)s::INTEGER AND id = ANY(%(ids)s::VARCHAR[])"
    " UNION ALL SELECT 't', id, resource, NULL, NULL FROM tombstones"
    " WHERE shop_id = %(shop_id)s::INTEGER AND id = ANY(%(keys)s::VARCHAR[])"
    " UNION ALL SELECT 'c', id, NULL, created_at, NULL FROM checkouts"
    " WHERE shop_id = %(shop_id)s::INTEGER AND id = ANY(%(paid)s::VARCHAR[])"
    " AND completed_at IS NULL"
)
"""What :func:`_looked_up` composes, as plain text: composed by SQLAlchemy each page (about
2 ms a page of 250 orders of this process's CPU, issue 20) it cost more than the server's
lookup. The ids go as array literals where they can (``_rows.array_param``)."""


def _looked_up(
    c: Connection,
    shop_id: int,
    keys: set[str],
    newest: dict[str, OrderRows],
    paid_ids: Iterable[str],
) -> tuple[set[tuple[str, str]], dict[str, Any], list[Any]]:
    """PostgreSQL: what :func:`_tombstoned`, :func:`_stored` and the open checkouts' lookup
    (:func:`.checkout_rows.open_among`) read, in one statement (one round trip, not three).
    The stored versions and checkouts are read for every id, tombstoned ones too.
    ``paid_ids``: the paid orders' ids (:func:`.checkout_rows.paid_rows`)."""
    lookup = {
        "shop_id": shop_id,
        "ids": array_param(list(newest)),
        "keys": array_param(sorted(keys)),
        "paid": array_param(sorted(paid_ids)),
    }
    return _sorted(c.exec_driver_sql(_PG_LOOKUP, lookup))


def _sorted(rows: Iterable[Any]) -> tuple[set[tuple[str, str]], dict[str, Any], list[Any]]:
    """The lookup's rows by kind: the tombstoned ``(resource, id)``, the stored versions by
    id, the open checkouts (``updated_at`` holds their creation)."""
    marked: set[tuple[str, str]] = set()
    existing: dict[str, Any] = {}
    found: list[Any] = []
    for r in rows:
        if r.kind == "s":
            existing[r.id] = r
        elif r.kind == "t":
            marked.add((r.customer_id, r.id))  # (resource, id)
        else:
            found.append(_Open(r.id, r.updated_at))
    return marked, existing, found


class _Open(NamedTuple):
    id: str
    created_at: int


def _insert(c: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One table's rows: SQLite by :func:`_insert_sqlite`, PostgreSQL by COPY."""
    if c.dialect.name == "sqlite":
        _insert_sqlite(c, table, rows)
    else:
        insert_rows(c, table, rows)


def _insert_sqlite(c: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One ``executemany`` of plain tuples: SQLAlchemy's per-row parameter processing cost
    about as much as SQLite's own insert (measured, benchmarks/ingest.py). JSON columns are
    serialized as SQLAlchemy's JSON type does (the dialect's serializer; None as ``null``
    unless the column stores SQL NULL), so the stored text is the row path's, byte for byte
    (tests/shopify/test_fast_ingest.py compares it raw)."""
    if not rows:
        return
    dumps: Callable[[Any], str] = getattr(c.dialect, "_json_serializer", None) or _dumps
    statement, get, as_json = _plan(table, tuple(rows[0]))
    if not as_json:
        c.exec_driver_sql(statement, list(map(get, rows)))
        return
    null = dumps(None)
    short = dumps is _dumps  # the short lists written out are json.dumps' text
    values: list[tuple[Any, ...]] = []
    for row in rows:
        value = list(get(row))
        last: Any = None
        text = ""
        for i, none_as_null in as_json:
            item = value[i]
            if item is None:
                value[i] = None if none_as_null else null
            elif item is last:
                value[i] = text  # the same object again (an address shipped to as billed)
            elif short and type(item) is list and len(item) < 2:
                value[i] = _short_list(item) if item else "[]"  # most are empty
            else:
                last, text = item, dumps(item)
                value[i] = text
        values.append(tuple(value))
    c.exec_driver_sql(statement, values)


def _short_list(item: list[Any]) -> str:
    """``json.dumps`` of a list, written out for the common short ones: most list columns
    are empty, and most others hold one plain string (a tag, a tracking number). A string
    of printable ASCII without a quote or a backslash is one json writes as it is."""
    if not item:
        return "[]"
    first = item[0]
    if (
        len(item) == 1
        and type(first) is str
        and first.isascii()
        and first.isprintable()
        and '"' not in first
        and "\\" not in first
    ):
        return '["' + first + '"]'
    return _dumps(item)


@functools.cache
def _plan(
    table: Table, keys: tuple[str, ...]
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], tuple[tuple[int, bool], ...]]:
    """The insert of ``table``'s columns among ``keys``: its statement, a getter of a row's
    values in that order, and the JSON columns' positions (with whether None is SQL NULL)."""
    # plain interned str, not SQLAlchemy's quoted_name: a dict looks a str subclass up the
    # slow way, and the getter looks up every column of every row
    names = [sys.intern(str.__str__(col.name)) for col in table.c if col.name in keys]
    as_json = tuple(
        (i, bool(getattr(table.c[name].type, "none_as_null", False)))
        for i, name in enumerate(names)
        if isinstance(table.c[name].type, JSON)
    )
    marks = ", ".join("?" * len(names))
    cols = ", ".join(f'"{name}"' for name in names)
    statement = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'
    return statement, itemgetter(*names), as_json


def upsert_order_rows(
    store: Store,
    conn: Connection,
    platform: str,
    shop: str,
    batch: Sequence[OrderRows],
    *,
    same_stamp: bool = True,
) -> tuple[UpsertResult, list[OrderRows]]:
    """Write ``batch``; what was done, and the orders the caller must write by model."""
    try:
        return _upsert(store, conn, platform, shop, batch, same_stamp)
    except SQLAlchemyError as exc:
        store._forget_shops()
        cause = getattr(exc, "orig", None) or exc
        raise StoreError(f"upsert rolled back: {type(cause).__name__}: {cause}") from exc


def _upsert(
    store: Store,
    c: Connection,
    platform: str,
    shop: str,
    batch: Sequence[OrderRows],
    same_stamp: bool,
) -> tuple[UpsertResult, list[OrderRows]]:
    from shopsync.store import UpsertResult

    result = UpsertResult()
    returned: list[OrderRows] = []
    shop_id = store.shop_id(platform, shop, c)
    store._writing(c, shop_id)
    newest: dict[str, OrderRows] = {}
    for rows in batch:
        seen = newest.get(rows.id)
        if seen is None or rows.updated_at >= seen.updated_at:
            newest[rows.id] = rows
    keys = set(newest) | {r.customer_id for r in newest.values() if r.customer_id}
    paid = paid_rows(r.tables["orders"][0] for r in newest.values())
    read = None
    if c.dialect.name == "postgresql":
        read = _looked_up(c, shop_id, keys, newest, paid)
    elif c.dialect.name == "sqlite" and all(type(k) is str for k in keys):
        read = _looked_up_sqlite(c, shop_id, keys, newest, paid)
    found = None
    if read is not None:
        marked, existing, found = read
    else:
        marked = _tombstoned(c, shop_id, keys)
    if marked:
        for rid, rows in list(newest.items()):
            if ("orders", rid) in marked or ("customers", rows.customer_id) in marked:
                returned.append(newest.pop(rid))
                paid.pop(rid, None)
    if read is None:
        existing = _stored(c, shop_id, list(newest))
    fresh: list[OrderRows] = []
    newer: list[OrderRows] = []
    for rid, rows in newest.items():
        old = existing.get(rid)
        if old is None:
            fresh.append(rows)
        elif rows.updated_at > old.updated_at:
            newer.append(rows)
        elif rows.updated_at < old.updated_at:
            result.stale += 1
        elif is_legacy(old.content_hash):
            returned.append(rows)  # only the model gives the older hash to compare
        elif old.content_hash == rows.tables["orders"][0]["content_hash"]:
            result.unchanged += 1
        elif not same_stamp:
            result.stale += 1
        else:
            newer.append(rows)  # same second, other content: the later read is the newer
    result.inserted += len(fresh)
    result.updated += len(newer)
    complete_paid(c, shop_id, paid, found)  # issue 22, as _upsert
    if not fresh and not newer:
        return result, returned
    written = fresh + newer
    replaced = [r.id for r in newer]
    incomplete = [r.id for r in newer if not r.tables["orders"][0]["refunds_complete"]]
    held = _incomplete.held_refunds(c, shop_id, incomplete)
    for table in (line_items, refunds, fulfillments):
        for chunk in _chunks(replaced):
            where = (table.c.shop_id == shop_id, among(c, table.c.order_id, chunk))
            c.execute(table.delete().where(*where))
    for chunk in _chunks(replaced):
        c.execute(orders.delete().where(orders.c.shop_id == shop_id, among(c, orders.c.id, chunk)))
    # what changes.note_written would find comparing the versions before and after, known
    # without reading them again: every written order is new or in another version
    owners = {r.customer_id for r in written} | {existing[r.id].customer_id for r in newer}
    now = dt.datetime.now(dt.timezone.utc)
    noted = _changes.noting(c, shop_id, owners, now) if c.dialect.name == "postgresql" else None
    if noted is not None:  # the notes in the sequence value's statement: one round trip
        note, params = noted
        bump = f"WITH noted AS ({note}) {_PG_NEXT_SEQ}"
        seq = int(c.exec_driver_sql(bump, {**params, "shop_id": shop_id}).scalar_one())
    elif c.dialect.name == "sqlite" and c.dialect.update_returning:
        seq = int(c.exec_driver_sql(_SQLITE_NEXT_SEQ, (shop_id,)).scalar_one())
    else:
        seq = facts.next_seq(c, shop_id)
    tables: dict[str, list[dict[str, Any]]] = {t.name: [] for t in _TABLES}
    for rows in written:
        for name, table_rows in rows.tables.items():
            for row in table_rows:
                row["shop_id"] = shop_id
            tables[name].extend(table_rows)
    for row in tables["orders"]:
        row["seq"] = seq
    _incomplete.keep_held(tables, held)
    for table in _TABLES:
        _insert(c, table, tables[table.name])
    if noted is None:
        _changes.note(c, shop_id, owners, now)
    return result, returned
