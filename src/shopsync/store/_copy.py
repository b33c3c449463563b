"""Bulk inserts of record rows: PostgreSQL by COPY, every other engine by executemany.

An executemany through psycopg costs a round trip per row (about 1,500 orders/s with their
lines, issue 20), while COPY streams a whole page in one. So a page of rows goes in by COPY:

- a table with ``updated_at`` (orders, customers, products): COPY straight into it under a
  savepoint, sent in the COPY's own round trip and released by the transaction's end (a
  ``SAVEPOINT`` or a ``RELEASE`` of its own cost a round trip a page each). The writer
  holds the shop's lock and has already removed what it replaces, so the rows are new and
  this is their INSERT. Should a key be taken after all (another version arrived in
  between), the unique violation rolls back to the savepoint and the rows take the guarded
  path: into a temporary staging table, then one
  ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE ... WHERE stored.updated_at <=
  staged.updated_at``, so the older never wins. Straight in cost about a tenth less server
  time than staging every page (speculative insertion; the staging table written, read, and
  emptied at commit: about 2 ms a page's commit), measured with benchmarks/ingest.py. Each
  savepoint that writes takes a subtransaction id, and past 64 in one transaction other
  sessions' snapshots turn slow ("suboverflowed"), so a transaction takes at most
  :data:`SAVEPOINTS` of them and stages the rest (a sync page takes one or two);
- the staging table is the session's (``ON COMMIT DELETE ROWS``), created once per
  connection: creating and dropping it with each page wrote the system catalogs every page.
  It is emptied at each commit, before a second batch of one transaction is staged (most
  transactions stage one batch a table, and a DELETE after each cost a round trip a page),
  and forgotten with any rollback (which may have undone its creation and undoes what was
  staged), so no row is staged from one transaction into another;
- a child table (line items, refunds, fulfilments, consent history) has no guard to apply:
  COPY straight into it is its plain INSERT (a staging table cost about 4 ms more a page,
  measured), and a duplicate key fails the whole transaction as on the row path (a
  half-written order is never committed).

The caller's transaction is used as it is: the COPY adds no commit (a savepoint is part of
that transaction), so the order-facts sequence (:func:`shopsync.store.facts.next_seq`) and
whatever else the writer records land or vanish together with the rows. Small batches (a
webhook's one order) take the executemany: below :data:`COPY_MIN_ROWS` a COPY costs more
than it saves.

Statistics: a first sync fills empty tables faster than autovacuum looks at them (it wakes
once a minute), and a planner that believes a table empty looks up a page's stored versions
by scanning it, page after page. So while a table is young (the planner's estimate under
:data:`YOUNG_ROWS`) the writer analyzes it itself after its first COPY and each time its own
writes have grown the table fourfold; ``ANALYZE`` runs in the writer's transaction (it counts
the rows the transaction inserted) and takes no lock that blocks readers or writers (two
writers analyzing one table at once take turns, until the first commits). It analyzes the
primary key's columns only: a page's lookups (stored versions by id, child rows by order id)
need those and the row count, and a whole table's ANALYZE sorts a sample of every column
(measured on 16,000 orders: 98 ms for ``orders`` against 19 ms for its key, 171 ms against
72 ms for ``line_items``; in a 20,000-order first sync the whole-table analyzes took about a
quarter of the server's time). The other columns stay autovacuum's: an ANALYZE with a column
list does not reset its count of changes since the last analyze, so it comes round as before.
And it samples :data:`SAMPLE_TARGET` times 300 rows, not the default 30,000: what the lookups
need (the row count, each key column's number of distinct values) comes out the same, in a
fraction of the time (measured on 16,000 orders: 6.9 ms against 58 ms for ``line_items``' key,
4.4 against 14 for ``orders``'; ``n_distinct`` of ``order_id`` -0.35 against -0.33, the row
count exact either way; at the default they took a tenth of the server's time in a
20,000-order first sync).

Append-only tables insert with :func:`insert_ignoring_duplicates` instead, and lists of ids
go to ``IN (...)`` clauses in :func:`chunks`.
"""

from __future__ import annotations

import functools
import json
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

__all__ = [
    "CHUNK",
    "CHUNK_BYTES",
    "COPY_MIN_ROWS",
    "SAMPLE_TARGET",
    "SAVEPOINTS",
    "YOUNG_ROWS",
    "chunks",
    "copy_text",
    "insert_ignoring_duplicates",
    "insert_rows",
]

YOUNG_ROWS = 20_000
"""Below this many rows (the planner's estimate) a table's writer keeps its statistics."""
SAMPLE_TARGET = 10
"""The statistics target of the writer's own ``ANALYZE`` (PostgreSQL's default: 100)."""
_STAGED, _PENDING, _DIRTY = "shopsync_staged", "shopsync_staging", "shopsync_stage_used"

SAVEPOINTS = 16
"""Most COPYs straight into a record table in one transaction (see the module's docstring)."""
_TAKEN = "shopsync_savepoints"

COPY_MIN_ROWS = 8
"""Fewest rows a PostgreSQL insert sends by COPY. Measured on loopback, one transaction per
batch of line items: 1-8 rows took about as long either way, 32 rows 5.9 ms by COPY against
11.9 ms by rows, 250 rows 8.5 ms against 31.5 ms."""

CHUNK = 500  # ids per IN (...) clause: far below every engine's parameter limit


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any that a unique key already holds; returns how many were new.

    This is how append-only tables (loyalty ledger, outbox) stay idempotent: writing the
    same entry again is a no-op. RETURNING counts exactly what was inserted (an executemany's
    rowcount is not reliable across drivers).
    """
    dialect = conn.dialect.name
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:  # pragma: no cover - only the two supported engines
        raise NotImplementedError(dialect)
    key = next(iter(table.primary_key.columns))
    added = 0
    for chunk in chunks(rows):
        statement = insert(table).on_conflict_do_nothing().returning(key)
        added += len(conn.execute(statement, list(chunk)).all())
    return added


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, min_rows: int | None = None
) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the caller's transaction."""
    if not rows:
        return
    least = COPY_MIN_ROWS if min_rows is None else min_rows
    if conn.dialect.name != "postgresql" or len(rows) < least:
        conn.execute(table.insert(), list(rows))
        return
    _copy_rows(conn, table, rows)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=64)
def _plan(
    table: Table, keys: tuple[str, ...], dumps: Callable[[Any], str]
) -> tuple[list[str], str, Callable[[dict[str, Any]], Sequence[Any]]]:
    """The COPY of ``table``'s columns among ``keys``: their names, their list as the
    statement has it, and the rows' :func:`_encoder` (made once, not a page each: about
    1 us an order of this process's CPU, issue 20)."""
    # plain interned text, as the rows' keys are: a column's name is SQLAlchemy's
    # ``quoted_name`` (a str subclass), and looking one up compared the text each time (0.3 us
    # an order row of the 0.9 its values took to fetch)
    names = [sys.intern(str(c.name)) for c in table.c if c.name in keys]
    return names, ", ".join(_quote(n) for n in names), _encoder(table, names, dumps)


def _encoder(
    table: Table, names: Sequence[str], dumps: Callable[[Any], str]
) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """What turns a row into the values COPY's text format takes: JSON columns as their text
    (None as the JSON ``null``, as SQLAlchemy's JSON type stores it), the rest as they are."""
    get = itemgetter(*names)  # two names at least: the key is (shop_id, id)
    as_json = [
        (i, bool(getattr(table.c[name].type, "none_as_null", False)))
        for i, name in enumerate(names)
        if isinstance(table.c[name].type, JSON)
    ]
    if not as_json:  # line items: the values as they are
        return get
    # Most JSON values of a record are empty (no tags, no tax lines, no address): their text
    # once, not a serializer call each (about a fifth of the CPU of encoding an order row).
    null = dumps(None)
    empty: dict[type, str] = {list: dumps([]), dict: dumps({})}
    blank = [(i, None if none_as_null else null) for i, none_as_null in as_json]

    def encode(row: dict[str, Any]) -> Sequence[Any]:
        values = list(get(row))
        for i, none in blank:
            value = values[i]
            if value is None:
                values[i] = none
            elif value:
                values[i] = dumps(value)
            else:
                values[i] = empty.get(type(value)) or dumps(value)
        return values

    return encode


def _copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    dumps: Callable[[Any], str] = getattr(conn.dialect, "_json_serializer", None) or json.dumps
    names, cols, encode = _plan(table, tuple(rows[0]), dumps)
    target = _quote(table.name)
    if "updated_at" not in table.c:  # a child table: COPY is its plain INSERT
        _stream(conn, target, cols, encode, rows)
        _keep_statistics(conn, table, len(rows))
        return
    if _savepoint_left(conn):
        try:  # the savepoint, released with the transaction, goes with the COPY's start
            _stream(conn, target, cols, encode, rows, f"SAVEPOINT {_SAVEPOINT}")
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise  # a key taken in between falls through to the guarded merge below
            conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        else:
            _keep_statistics(conn, table, len(rows))
            return
    if not _may_stage(conn):  # a role refused temporary tables: the row path, as before
        conn.execute(table.insert(), list(rows))
        return
    stage = _quote(f"shopsync_stage_{table.name}")
    _create_stage(conn, table, stage, target)
    keys = [c.name for c in table.primary_key.columns]
    changed = ", ".join(f"{_quote(n)} = EXCLUDED.{_quote(n)}" for n in names if n not in keys)
    try:
        if _staged_before(conn, table.name):  # a second batch in this transaction
            conn.exec_driver_sql(f"DELETE FROM {stage}")
        _stream(conn, stage, cols, encode, rows)
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage}"
            f" ON CONFLICT ({', '.join(_quote(k) for k in keys)}) DO UPDATE SET {changed}"
            f" WHERE {target}.updated_at <= EXCLUDED.updated_at"
        )
    except DBAPIError:  # (a commit that failed after all?) the next page creates it again
        conn.connection.info.pop(_STAGED, None)
        raise
    _keep_statistics(conn, table, len(rows))


def _staged_before(conn: Connection, name: str) -> bool:
    """Whether this transaction staged rows for table ``name`` already (and notes it did)."""
    transaction = conn.get_transaction()
    held = conn.info.get(_DIRTY)
    if held is None or held[0] is not transaction:
        held = conn.info[_DIRTY] = (transaction, set())
    names: set[str] = held[1]
    if name in names:
        return True
    names.add(name)
    return False


_UNIQUE_VIOLATION = "23505"
_SAVEPOINT = "shopsync_copy"


def _savepoint_left(conn: Connection) -> bool:
    """Whether this transaction may take one more savepoint (:data:`SAVEPOINTS`)."""
    transaction = conn.get_transaction()
    held = conn.info.get(_TAKEN)
    if held is None or held[0] is not transaction:
        held = conn.info[_TAKEN] = [transaction, 0]
    held[1] += 1
    return bool(held[1] <= SAVEPOINTS)


def _create_stage(conn: Connection, table: Table, stage: str, target: str) -> None:
    """The session's staging table for ``table``, created unless this connection already
    made it in a transaction that committed, or in the one under way."""
    engine = conn.engine
    if not event.contains(engine, "commit", _stages_committed):
        event.listen(engine, "commit", _stages_committed)
        event.listen(engine, "rollback", _stages_rolled_back)
        event.listen(engine, "rollback_savepoint", _stages_rolled_back_to)
        event.listen(engine.pool, "reset", _stages_reset)
    info = conn.connection.info
    made: set[str] = info.setdefault(_STAGED, set())
    pending: set[str] = info.setdefault(_PENDING, set())
    if table.name in made or table.name in pending:
        return
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
        f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    pending.add(table.name)


def _stages_committed(conn: Connection) -> None:
    info = conn.connection.info
    info.setdefault(_STAGED, set()).update(info.pop(_PENDING, ()))


def _stages_rolled_back(conn: Connection) -> None:
    """A rollback undoes the creation of a staging table made in its transaction."""
    if not conn.closed and not conn.invalidated:
        conn.connection.info.pop(_PENDING, None)


def _stages_rolled_back_to(conn: Connection, name: str, context: Any) -> None:
    """A savepoint's rollback may undo a creation made inside it: the next batch of the
    transaction creates again (``IF NOT EXISTS``, a no-op if the table stands)."""
    _stages_rolled_back(conn)


def _stages_reset(dbapi_connection: Any, record: Any, state: Any = None) -> None:
    """Returned to the pool inside a transaction, which the pool now rolls back."""
    if not getattr(state, "transaction_was_reset", False):
        record.info.pop(_PENDING, None)


class _Growth:
    """How much this process has written into one table, and when it last analyzed it."""

    def __init__(self, estimate: float) -> None:
        self.rows = max(estimate, 0.0)
        self.analyzed = estimate if estimate > 0 else 0.0
        self.done = estimate >= YOUNG_ROWS


_GROWTH: weakref.WeakKeyDictionary[Engine, dict[str, _Growth]] = weakref.WeakKeyDictionary()


def _keep_statistics(conn: Connection, table: Table, written: int) -> None:
    """``ANALYZE`` a young table after this process's first COPY into it and whenever its
    writes have grown it fourfold since (see the module's docstring)."""
    tables = _GROWTH.setdefault(conn.engine, {})
    growth = tables.get(table.name)
    if growth is None:
        estimate = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%(t)s)",
            {"t": _quote(table.name)},
        ).scalar()
        growth = tables[table.name] = _Growth(float(estimate if estimate is not None else 0))
    if growth.done:
        return
    growth.rows += written
    if growth.rows >= 4 * growth.analyzed:
        key = ", ".join(_quote(c.name) for c in table.primary_key.columns)
        conn.exec_driver_sql(  # (SET LOCAL: the session's own target is back at the commit)
            f"SET LOCAL default_statistics_target = {SAMPLE_TARGET};"
            f" ANALYZE {_quote(table.name)} ({key})"
        )
        growth.analyzed = growth.rows
        growth.done = growth.rows >= YOUNG_ROWS


def _may_stage(conn: Connection) -> bool:
    """Whether this session may create a staging table (a hardened database may revoke
    ``TEMPORARY`` from the role); asked once per connection."""
    info = conn.connection.info
    if "shopsync_may_stage" not in info:
        info["shopsync_may_stage"] = bool(
            conn.exec_driver_sql(
                "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
            ).scalar()
        )
    return bool(info["shopsync_may_stage"])


def _stream(
    conn: Connection,
    into: str,
    cols: str,
    encode: Callable[[dict[str, Any]], Sequence[Any]],
    rows: Sequence[dict[str, Any]],
    first: str = "",
) -> None:
    """COPY ``rows`` into ``into``; ``first``: a statement run before it, in the same round
    trip (libpq's ``PQexec`` of both; psycopg's ``cursor.copy`` takes the COPY alone, and a
    statement of its own cost a round trip a page: measured 1-4 ms on the loaded machine).

    The rows go in COPY's text format as psycopg's ``write_row`` formats them (in C), sent
    in chunks as they are formatted (:func:`_send`). Measured for 10,000 orders with 3 lines
    each in pages of 250, this process's CPU and the server's an order: text by
    ``write_row`` 11.7 and 16.4 us, binary by ``write_row`` with the columns' types set 13.8
    and 16.4, the text lines joined in Python 17.7 and 16.3: binary saved the server nothing
    and cost this process more."""
    _copy_in(conn, into, cols, lambda cursor, copy: _send(cursor, copy, encode, rows), first)


def copy_text(conn: Connection, into: str, cols: str, data: bytes, first: str = "") -> None:
    """COPY ``data``, rows already in COPY's text format (UTF-8), into ``into``'s ``cols``
    (quoted names), in the caller's transaction; ``first`` as :func:`_stream`'s."""

    def send(cursor: Any, copy: Any) -> None:
        encoding = cursor.connection.info.encoding
        copy.write(data if encoding in ("utf-8", "utf8") else data.decode().encode(encoding))

    _copy_in(conn, into, cols, send, first)


def _copy_in(
    conn: Connection, into: str, cols: str, send: Callable[[Any, Any], None], first: str
) -> None:
    """``COPY into (cols) FROM STDIN``, its data sent by ``send(cursor, copy)``."""
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {into} ({cols}) FROM STDIN"
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        if first and raw.pgconn.transaction_status == _IN_TRANSACTION:
            _stream_after(raw, f"{first}; {statement}", send)
            return
        if first:  # (no transaction begun yet: psycopg sends its BEGIN before the statement)
            conn.exec_driver_sql(first)
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            send(cursor, copy)
    except dbapi_error as exc:  # as SQLAlchemy reports a failed statement (a StoreError above)
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc


_IN_TRANSACTION, _COPY_IN = 2, 4
"""libpq's ``PQTRANS_INTRANS`` and ``PGRES_COPY_IN`` (``psycopg.pq``, not imported here:
psycopg is an optional dependency)."""


def _stream_after(raw: Any, statements: str, send: Callable[[Any, Any], None]) -> None:
    """Run ``statements`` (the last a ``COPY ... FROM STDIN``) in one round trip, then send
    the rows as ``cursor.copy`` does (a :class:`psycopg.Copy` on the started COPY)."""
    import psycopg
    from psycopg import errors

    with raw.lock:  # as psycopg guards its own use of the connection
        started = raw.pgconn.exec_(statements.encode(raw.info.encoding))
        if started.status != _COPY_IN:  # the error of whichever statement failed
            raise errors.error_from_result(started, encoding=raw.info.encoding)
        with raw.cursor() as cursor, psycopg.Copy(cursor) as copy:
            send(cursor, copy)


CHUNK_BYTES = 8192
"""COPY data sent as soon as this much is formatted: the server parses and inserts a chunk
while this process formats the next. ``Copy.write_row`` sends 32 KB at a time: about 60 %
of a 250-order page's rows were formatted before the server had any to work on."""


def _send(
    cursor: Any, copy: Any, encode: Callable[[dict[str, Any]], Sequence[Any]], rows: Any
) -> None:
    """Send ``rows`` on the started ``copy``: formatted as ``Copy.write_row`` formats them
    (psycopg's C ``format_row_text``, the same bytes: tests/store/test_copy_chunks.py), in
    chunks of :data:`CHUNK_BYTES`; by ``write_row`` where psycopg has no C module."""
    fmt = _row_formatter()
    if fmt is None:
        for row in rows:
            copy.write_row(encode(row))
        return
    from psycopg.adapt import Transformer

    tx = Transformer.from_context(cursor)
    buffer = bytearray()
    for values in map(encode, rows):
        fmt(values, tx, buffer)
        if len(buffer) >= CHUNK_BYTES:
            copy.write(buffer)
            buffer = bytearray()  # (a fresh one: the writer may hold on to the last)
    if buffer:
        copy.write(buffer)


@functools.cache
def _row_formatter() -> Callable[[Sequence[Any], Any, bytearray], Any] | None:
    """psycopg's C formatting of one COPY text row into a buffer, the function its
    ``Copy.write_row`` calls (``_psycopg.format_row_text(row, transformer, out)``; calling it
    here also saves the two Python calls of ``write_row`` a row, about 1 us an order); None
    without the C module (``psycopg[binary]`` or ``psycopg[c]``), should it be gone, or
    should it not append a known row's known bytes (a private function: its return value
    changed in 3.3; another call or output would fail every page, or lose its rows)."""
    try:
        from psycopg._cmodule import _psycopg  # type: ignore[attr-defined,unused-ignore]
        from psycopg.adapt import Transformer
    except ImportError:  # pragma: no cover - psycopg without a C module
        return None
    fmt = getattr(_psycopg, "format_row_text", None)
    if not callable(fmt):
        return None
    out = bytearray(b"x")
    try:
        fmt(["a\tb\\", None, 12], Transformer(), out)
    except Exception:  # (any error: it is not the function this module calls)
        return None
    return fmt if out == b"xa\\tb\\\\\t\\N\t12\n" else None
