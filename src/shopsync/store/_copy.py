"""Bulk inserts of record rows: PostgreSQL by COPY, every other engine by executemany.

An executemany through psycopg costs a round trip per row (about 1,500 orders/s with their
lines, issue 20), while COPY streams a whole page in one. So a page of rows is COPYed into
a temporary staging table (``ON COMMIT DROP``: it lives in the writer's transaction and
nowhere else) and moved into the table by one ``INSERT ... SELECT``:

- a table with ``updated_at`` (orders, customers, products) takes the staged row through
  ``ON CONFLICT (key) DO UPDATE ... WHERE stored.updated_at <= staged.updated_at``: the
  writer holds the shop's lock and has already removed what it replaces, so a conflict
  means another version of the record arrived in between, and the older one never wins;
- a child table (line items, refunds, fulfilments, consent history) has no guard to apply
  and takes the rows as a plain INSERT, so a duplicate key fails the whole transaction as
  the row path does (a half-written order is never committed).

The caller's transaction is used as it is: the COPY adds no commit and no savepoint, so the
order-facts sequence (:func:`shopsync.store.facts.next_seq`) and whatever else the writer
records land or vanish together with the rows. Small batches (a webhook's one order) take
the executemany: a staging table costs more than it saves below :data:`COPY_MIN_ROWS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table

__all__ = ["COPY_MIN_ROWS", "insert_rows"]

COPY_MIN_ROWS = 32
"""Fewest rows a PostgreSQL insert sends by COPY (measured crossover: benchmarks/ingest.py)."""


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


def _converters(conn: Connection, table: Table, names: Sequence[str]) -> list[Callable[[Any], Any]]:
    """Per column, what turns a row value into what COPY's text format takes: JSON as its
    text (None as the JSON ``null``, as SQLAlchemy's JSON type stores it), the rest as is."""
    dumps: Callable[[Any], str] = getattr(conn.dialect, "_json_serializer", None) or json.dumps

    def as_json(value: Any) -> str:
        return dumps(value)

    def same(value: Any) -> Any:
        return value

    out: list[Callable[[Any], Any]] = []
    for name in names:
        column = table.c[name]
        none_as_null = getattr(column.type, "none_as_null", False)
        if isinstance(column.type, JSON) and not none_as_null:
            out.append(as_json)
        elif isinstance(column.type, JSON):
            out.append(lambda v: None if v is None else dumps(v))
        else:
            out.append(same)
    return out


def _copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    names = [c.name for c in table.c if c.name in rows[0]]
    convert = _converters(conn, table, names)
    cols = ", ".join(_quote(n) for n in names)
    stage = _quote(f"shopsync_stage_{table.name}")
    target = _quote(table.name)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} "
        f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([f(row[n]) for f, n in zip(convert, names, strict=True)])
    statement = f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage}"
    if "updated_at" in table.c:
        keys = [c.name for c in table.primary_key.columns]
        changed = ", ".join(f"{_quote(n)} = EXCLUDED.{_quote(n)}" for n in names if n not in keys)
        statement += (
            f" ON CONFLICT ({', '.join(_quote(k) for k in keys)}) DO UPDATE SET {changed}"
            f" WHERE {target}.updated_at <= EXCLUDED.updated_at"
        )
    conn.exec_driver_sql(statement)
    conn.exec_driver_sql(f"TRUNCATE {stage}")
