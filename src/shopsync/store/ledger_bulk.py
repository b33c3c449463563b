"""Ledger entries appended in columns: a whole shop's derivation without a Python dict, a
compiled statement or a ``json.dumps`` per entry (issue 19).

:func:`add_entry_frame` writes what :func:`shopsync.store.ledger.add_entries` writes for the
same rows, column for column and byte for byte (``detail`` as json.dumps' text, times as
integer micros), in the same order (the ids follow the frame's rows: statements, balances
and the redemption FIFO break ties by id), and as idempotently: a source key the ledger
already holds, or that an earlier row of the frame took, is skipped and not counted. All in
the caller's transaction: a failure leaves nothing of the frame.

- SQLite: one ``executemany`` of plain tuples of ``INSERT ... ON CONFLICT DO NOTHING``
  (the count: the rows it changed);
- PostgreSQL: the frame written as COPY text by polars into the session's temporary staging
  table, then one ``INSERT ... SELECT ... ORDER BY`` the rows' position ``ON CONFLICT DO
  NOTHING`` (a skipped row takes a value of the id sequence, as the row path's insert does);
  a role without temporary tables takes the row path.
"""

from __future__ import annotations

import io

import polars as pl
from sqlalchemy import Connection

from shopsync.store._copy import _may_stage, _quote, copy_text, insert_ignoring_duplicates
from shopsync.store._json_text import objects_text
from shopsync.store.schema import loyalty_ledger

__all__ = ["ENTRY_COLUMNS", "add_entry_frame"]

ENTRY_COLUMNS = (
    "shop_id",
    "customer_id",
    "source_key",
    "kind",
    "pending",
    "approved",
    "effective_at",
    "recorded_at",
    "order_id",
    "reason",
    "detail",
)
"""The columns :func:`add_entry_frame` takes (the ledger's but ``id``)."""

_COLS = ", ".join(_quote(c) for c in ENTRY_COLUMNS)
_TABLE = _quote(loyalty_ledger.name)
_STAGE = _quote("shopsync_stage_ledger")
_TEXT = ("customer_id", "source_key", "kind", "order_id", "reason", "detail")


def add_entry_frame(conn: Connection, entries: pl.DataFrame) -> int:
    """Append the ledger entries of ``entries`` (:data:`ENTRY_COLUMNS`; ``detail`` a struct
    column, a null row the empty object) in the caller's transaction, skipping every source
    key already held; returns how many were new."""
    if entries.is_empty():
        return 0
    dumps = getattr(conn.dialect, "_json_serializer", None)
    staged = conn.dialect.name == "postgresql" and _may_stage(conn)
    if conn.dialect.name == "sqlite" or staged:  # ``detail`` as its text, written in columns
        frame = entries.select(ENTRY_COLUMNS).with_columns(objects_text(entries["detail"], dumps))
        return _add_postgres(conn, frame) if staged else _add_sqlite(conn, frame)
    rows = entries.select(ENTRY_COLUMNS).to_dicts()
    for row in rows:
        row["detail"] = row["detail"] or {}
    return insert_ignoring_duplicates(conn, loyalty_ledger, rows)


_SQLITE_INSERT = (
    f"INSERT INTO {_TABLE} ({_COLS}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
    " ON CONFLICT DO NOTHING"
)


def _add_sqlite(conn: Connection, frame: pl.DataFrame) -> int:
    """One executemany; sqlite3 sums the rows each insert changed (a skipped one: none).
    The tuples zipped from the columns' lists (2M entries: 1.9 CPU-s, ``DataFrame.rows``
    2.2; SQLite's insert into the table and its two indexes 6.7)."""
    rows = list(zip(*(frame[name].to_list() for name in ENTRY_COLUMNS), strict=True))
    result = conn.exec_driver_sql(_SQLITE_INSERT, rows)
    return int(result.rowcount)


_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (_pos bigint, shop_id integer,"
    " customer_id varchar(255), source_key varchar(255), kind varchar(16), pending bigint,"
    " approved bigint, effective_at bigint, recorded_at bigint, order_id varchar(255),"
    " reason text, detail json) ON COMMIT DELETE ROWS"
)
"""The session's staging table: no id (its default would take values of the ledger's
sequence) and no constraint; emptied at each commit, and before each frame of a transaction."""


def _add_postgres(conn: Connection, frame: pl.DataFrame) -> int:
    text = frame.with_columns(
        pl.col(name)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
        for name in _TEXT
    ).with_row_index("_pos")
    out = io.BytesIO()
    text.write_csv(
        out,
        include_header=False,
        separator="\t",
        line_terminator="\n",
        quote_style="never",
        null_value="\\N",
    )
    first = f"{_CREATE_STAGE}; DELETE FROM {_STAGE}"
    copy_text(conn, _STAGE, f"_pos, {_COLS}", out.getvalue(), first)
    result = conn.exec_driver_sql(
        f"INSERT INTO {_TABLE} ({_COLS}) SELECT {_COLS} FROM {_STAGE} ORDER BY _pos"
        " ON CONFLICT (shop_id, source_key) DO NOTHING"
    )
    return int(result.rowcount)
