"""Read store tables into Polars frames without a Python object per row.

Going through DBAPI rows costs more than the feature computation itself (research perf §1:
``fetchall`` + DataFrame took 30 s for 10M orders, the Polars pipeline 7-12 s). So each
engine hands over text in bulk and Polars' CSV reader, which is multi-threaded native code,
parses it:

- PostgreSQL: ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` streamed through psycopg;
- SQLite: the database formats each row as one delimited line and ``group_concat`` joins a
  chunk of rows into one string, so a quarter million rows cross into Python as one
  object. Chunks follow ``rowid`` ranges of the base table, which SQLite seeks directly.
  (connectorx read a 2M-row table about as fast in a side measurement but needs pyarrow, so
  it is not used.)

Measured (``benchmarks/features.py``, docs/loyalty.md): SQLite hands over about two million
values a second either way (CSV text or DBAPI tuples), so at 10M orders the read, not
Polars, is the bottleneck. Money columns are read as integers (ten-thousandths) and stay
integers.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import polars as pl
from sqlalchemy import Engine

__all__ = ["Column", "as_bulk_read", "bulk_rows", "read_table"]

_CHUNK_ROWS = 250_000
_AMONG = "shopsync_among"
"""The temporary table of :func:`read_table`'s ``among`` values (one connection's own; on
SQLite one thread's too: an in-memory store is one connection every thread shares)."""
_AMONG_VALUES = 25_000
"""``among`` values a SQLite chunk reads the rows of (about a quarter million earns)."""


@dataclass(frozen=True)
class Column:
    """One output column: its name, the SQL expression that yields it, its Polars type."""

    name: str
    dtype: Any
    expr: str | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name


def _is_text(dtype: Any) -> bool:
    return bool(dtype == pl.String)


def _csv_field(column: Column) -> str:
    # NULL becomes an empty field (read back as null); text is always quoted, so an empty
    # string stays an empty string and commas, quotes and newlines survive.
    if _is_text(column.dtype):
        return f"""ifnull('"' || replace({column.sql}, '"', '""') || '"', '')"""
    return f"ifnull({column.sql}, '')"


def _schema(columns: Sequence[Column]) -> dict[str, Any]:
    return {c.name: c.dtype for c in columns}


def _parse(data: bytes, columns: Sequence[Column]) -> pl.DataFrame:
    if not data:
        return pl.DataFrame(schema=_schema(columns))
    return pl.read_csv(io.BytesIO(data), has_header=False, schema=_schema(columns))


def read_table(
    engine: Engine,
    table: str,
    columns: Sequence[Column],
    where: str,
    among: tuple[str, Collection[str]] | None = None,
) -> pl.DataFrame:
    """``SELECT columns FROM table WHERE where`` as a frame.

    ``where`` is trusted SQL built by the caller from integers only (shop ids, instants),
    never from user text, so it can be inlined into the COPY and SQLite queries alike.
    ``among`` (a text column of ``table`` and values) keeps the rows whose column holds one
    of the values: they go to a temporary table the query joins through ``table``'s index on
    that column, so a fifth of a shop's customers costs a fifth of the read, not all of it.
    """
    if engine.dialect.name == "postgresql":
        return _read_postgres(engine, table, columns, where, among)
    if engine.dialect.name == "sqlite":
        return _read_sqlite(engine, table, columns, where, among)
    raise NotImplementedError(f"no columnar reader for {engine.dialect.name}")


def as_bulk_read(frame: pl.DataFrame, columns: Sequence[Column], dialect: str) -> pl.DataFrame:
    """``frame`` as :func:`read_table` would have handed its rows over: on SQLite its
    delimited form reads an empty text as null, so a read of the same rows another way (a
    customer's selects, the snapshot's delta) does the same, and the frames agree."""
    if dialect != "sqlite" or not frame.height:
        return frame
    return frame.with_columns(
        pl.when(pl.col(c.name) == "").then(None).otherwise(pl.col(c.name)).alias(c.name)
        for c in columns
        if _is_text(c.dtype)
    )


def bulk_rows(
    rows: Iterable[Sequence[Any]], columns: Sequence[Column], dialect: str
) -> pl.DataFrame:
    """Rows (in ``columns`` order) as :func:`as_bulk_read` hands them over, the empty texts
    made null while the tuples are built: a one-customer read has a few rows, and a frame
    pass per text column cost more than the rows themselves (``plan_customer``'s p99)."""
    schema = _schema(columns)
    text = {i for i, c in enumerate(columns) if _is_text(c.dtype)}
    if dialect != "sqlite" or not text:
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    empty = [i in text for i in range(len(columns))]
    fixed = [
        tuple(None if e and v == "" else v for e, v in zip(empty, r, strict=True)) for r in rows
    ]
    return pl.DataFrame(fixed, schema=schema, orient="row")


def _select(table: str, columns: Sequence[Column], where: str, joined: str = "") -> str:
    cols = ", ".join(f"{c.sql} AS {c.name}" for c in columns)
    return f"SELECT {cols} FROM {table}{joined} WHERE {where}"


def _read_postgres(
    engine: Engine,
    table: str,
    columns: Sequence[Column],
    where: str,
    among: tuple[str, Collection[str]] | None,
) -> pl.DataFrame:
    buffer = io.BytesIO()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        joined = ""
        if among is not None:  # dropped at the commit below, or by the pool's rollback
            column, values = among
            # no key: a btree entry holds some 2.7 kB, an id asked for may be longer (it
            # matches no row); the values are distinct already
            cursor.execute(f"CREATE TEMP TABLE {_AMONG} (value text) ON COMMIT DROP")
            with cursor.copy(f"COPY {_AMONG} (value) FROM STDIN") as copy:
                for value in sorted(set(values)):
                    copy.write_row((value,))
            cursor.execute(f"ANALYZE {_AMONG}")  # a few or many: the planner must know
            joined = f" JOIN {_AMONG} ON {table}.{column} = {_AMONG}.value"
        statement = f"COPY ({_select(table, columns, where, joined)}) TO STDOUT (FORMAT csv)"
        with cursor.copy(statement) as copy:
            for block in copy:
                buffer.write(block)
        raw.commit()  # drops the values' table
    finally:
        raw.close()
    return _parse(buffer.getvalue(), columns)


def _read_sqlite(
    engine: Engine,
    table: str,
    columns: Sequence[Column],
    where: str,
    among: tuple[str, Collection[str]] | None,
) -> pl.DataFrame:
    # Fast form: unit separator between fields, record separator between rows, no quoting;
    # one format() call per row costs about two thirds of the equivalent chain of "||"
    # (and %s prints NULL as nothing). A value holding either control character would
    # shift the fields; the row count or the parser catches that and the chunk is read
    # again in quoted CSV.
    pattern = "\x1f".join(["%s"] * len(columns))
    fast = f"format('{pattern}', {', '.join(c.sql for c in columns)})"
    quoted = " || ',' || ".join(_csv_field(c) for c in columns)
    values_table = f"temp.{_AMONG}_{threading.get_ident()}"
    if among is None:
        # "+(...)" keeps the planner on the rowid range: with the bare filter it would walk
        # a shop_id index for every chunk and so read the whole table each time
        chunk = f"FROM {table} WHERE rowid > ? AND rowid <= ? AND +({where})"
        step = _CHUNK_ROWS
    else:
        # CROSS JOIN: the values drive, each through the table's index on the column (left
        # to itself SQLite walks the whole shop and probes the values instead)
        chunk = (
            f"FROM {values_table} a CROSS JOIN {table} WHERE a.rowid > ? AND a.rowid <= ?"
            f" AND {table}.{among[0]} = a.value AND ({where})"
        )
        step = _AMONG_VALUES
    fast_query = f"SELECT group_concat({fast}, char(30)), count(*) {chunk}"
    quoted_query = f"SELECT group_concat({quoted}, char(10)) {chunk}"

    def read_chunk(cursor: Any, low: int) -> pl.DataFrame:
        blob, count = cursor.execute(fast_query, (low, low + step)).fetchone()
        frame = _parse_fast(blob, count, columns)
        if frame is None:
            text = cursor.execute(quoted_query, (low, low + step)).fetchone()[0]
            # quoted, an empty text stays one: null, as the fast form gives it
            frame = as_bulk_read(_parse((text or "").encode(), columns), columns, "sqlite")
        return frame

    with _raw(engine) as cursor:
        if among is not None:
            values = sorted(set(among[1]))
            cursor.execute(f"DROP TABLE IF EXISTS {values_table}")
            cursor.execute(f"CREATE TABLE {values_table} (value TEXT NOT NULL)")
            try:
                cursor.executemany(
                    f"INSERT INTO {values_table} (value) VALUES (?)", ((v,) for v in values)
                )
                # committed at once: another thread of an in-memory store (one connection)
                # ending a transaction would roll back the ids half-way through the read
                cursor.connection.commit()
                frames = [read_chunk(cursor, low) for low in range(0, len(values), step)]
            finally:
                cursor.execute(f"DROP TABLE {values_table}")
            return _concat(frames, columns)
        bounds = cursor.execute(f"SELECT min(rowid), max(rowid) FROM {table}").fetchone()
        if bounds is None or bounds[0] is None:
            return pl.DataFrame(schema=_schema(columns))
        starts = list(range(int(bounds[0]) - 1, int(bounds[1]), _CHUNK_ROWS))
        if len(starts) == 1 or not _has_file(engine):
            frames = [read_chunk(cursor, low) for low in starts]
        else:
            # SQLite releases the GIL while it steps, so a second connection reads the
            # other half of the chunks on the second core.
            with ThreadPoolExecutor(1) as pool, _raw(engine) as other:
                odd = pool.map(lambda low: read_chunk(other, low), starts[1::2])
                even = [read_chunk(cursor, low) for low in starts[0::2]]
                frames = [f for pair in zip_longest(even, odd) for f in pair if f is not None]
    return _concat(frames, columns)


def _concat(frames: list[pl.DataFrame], columns: Sequence[Column]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=_schema(columns))
    return pl.concat(frames, rechunk=True)


def _has_file(engine: Engine) -> bool:
    database = engine.url.database or ""
    return bool(database) and database != ":memory:" and not database.startswith("file::memory")


@contextmanager
def _raw(engine: Engine) -> Iterator[Any]:
    raw = engine.raw_connection()
    try:
        yield raw.cursor()
        raw.commit()
    finally:
        raw.close()


def _parse_fast(blob: str | None, count: int, columns: Sequence[Column]) -> pl.DataFrame | None:
    if not count:
        return pl.DataFrame(schema=_schema(columns))
    try:
        frame = pl.read_csv(
            io.BytesIO(blob.encode() if blob else b""),
            has_header=False,
            schema=_schema(columns),
            separator="\x1f",
            eol_char="\x1e",
            quote_char=None,
        )
    except Exception:
        return None
    if frame.height != count:
        return None
    # an empty field means NULL here: SQL NULL and '' both arrive as nothing; text columns
    # that must tell them apart are rare, and a frame with a '' id would be refused upstream
    return frame
