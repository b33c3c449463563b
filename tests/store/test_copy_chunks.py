"""COPY data goes to PostgreSQL in chunks as it is formatted (``_copy.CHUNK_BYTES``), so the
server works on one chunk while the next is formatted; the rows stored are those
``Copy.write_row`` or an INSERT would store, whatever their text holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text

from shopsync.store import Store, _copy

pytestmark = pytest.mark.postgres

ODD = ["plain", "tab\there", "new\nline", "back\\slash", "cr\rhere", "\\N", "é ü 字", "", None]

_meta = MetaData()
copied = Table(
    "t_copy_chunks",
    _meta,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("note", Text),
    Column("qty", BigInteger),
    Column("flag", Boolean),
    Column("data", JSON),
)


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    with s.engine.begin() as conn:
        _meta.drop_all(conn)
        _meta.create_all(conn)
    yield s
    with s.engine.begin() as conn:
        _meta.drop_all(conn)
    s.close()


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "shop_id": 1,
            "id": f"r{i}",
            "note": ODD[i % len(ODD)],
            "qty": (i - 20) * 10**15,
            "flag": [True, False, None][i % 3],
            "data": [None, [], {"a": ODD[i % len(ODD)]}, ["x\ty"]][i % 4],
        }
        for i in range(n)
    ]


def stored(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(copied.select().order_by(copied.c.id))]


def by_insert(store: Store, batch: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    with store.transaction() as conn:
        conn.execute(copied.insert(), batch)
    found = stored(store)
    with store.transaction() as conn:
        conn.execute(copied.delete())
    return found


@pytest.mark.skipif(
    _copy._row_formatter() is None, reason="psycopg without its C module: rows by write_row"
)
def test_copy_data_goes_in_chunks_and_stores_what_an_insert_stores(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = rows(60)
    expected = by_insert(store, batch)
    sent: list[int] = []
    real = psycopg.Copy.write

    def write(self: Any, buffer: Any) -> None:
        sent.append(len(buffer))
        real(self, buffer)

    monkeypatch.setattr(psycopg.Copy, "write", write)
    monkeypatch.setattr(_copy, "CHUNK_BYTES", 256)
    with store.transaction() as conn:
        _copy.insert_rows(conn, copied, batch, min_rows=1)
    assert stored(store) == expected
    assert len(sent) > 5, sent  # chunk after chunk, not the whole page at its end
    assert all(size < 256 + 200 for size in sent), sent


def test_without_psycopgs_c_module_rows_go_by_write_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = rows(30)
    expected = by_insert(store, batch)
    monkeypatch.setattr(_copy, "_row_formatter", lambda: None)
    with store.transaction() as conn:
        _copy.insert_rows(conn, copied, batch, min_rows=1)
    assert stored(store) == expected


@pytest.mark.skipif(
    os.environ.get("PSYCOPG_IMPL") == "python", reason="psycopg's pure Python form asked for"
)
def test_the_c_formatter_is_found() -> None:
    """psycopg[binary] is what the ``postgres`` extra installs: the fast path is taken."""
    assert _copy._row_formatter() is not None
