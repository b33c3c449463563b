"""Review of the PostgreSQL ingest's plain SQL and COPY chunks (merge 69f996e), each as a
property a test can see fail:

- an array literal (``_rows.array_literal``) holds its ids as they are, whatever they hold,
  and the columnar page lookup in plain SQL reads what the statement SQLAlchemy composed
  reads; ids no literal can hold take the composed statements (lookup and change notes);
- the COPY chunks hold the bytes ``Copy.write_row`` formats, whatever the values, cut at
  :data:`_copy.CHUNK_BYTES` exactly; a value that fails mid-page, in this process or in the
  server, leaves nothing of the page and the store usable;
- the cached COPY plans follow the table object, and stores on two schemas share them.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.copy import Writer
from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, Text, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import quoted_name

from shopsync._instants import to_micros
from shopsync.ingest_columns import OrderRows
from shopsync.store import Store, _copy, _rows, changes, fast_rows
from shopsync.store._rows import order_rows
from shopsync.store.fast_rows import upsert_order_rows

from ..pg_schema import own_schema
from .test_write_path_postgres import SHOP, make

pytestmark = pytest.mark.postgres
c_formatter = pytest.mark.skipif(
    _copy._row_formatter() is None, reason="psycopg without its C module: rows by write_row"
)

HOSTILE = [
    "{",
    "}",
    "{}",
    ",",
    '"',
    "\\",
    "'",
    "NULL",
    "null",
    " NULL ",
    "",
    " ",
    "a b",
    "é字😀",
    "\\N",
    '","',
    '\\"',
    "a\tb\nc\rd",
    "x" * 255,
    "y" * 5000,
    "ARRAY[1]",
    "');DROP TABLE orders;--",
]


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    yield s
    s.close()


_ids = st.lists(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12),
    max_size=6,
)


def test_an_array_literal_holds_every_id_as_it_is(store: Store) -> None:
    with store.engine.connect() as conn:

        def back(ids: list[str]) -> list[str]:
            written = _rows.array_literal(ids)
            assert written is not None
            query = "SELECT x FROM unnest(%(a)s::VARCHAR[]) WITH ORDINALITY AS u(x, n) ORDER BY n"
            return list(conn.exec_driver_sql(query, {"a": written}).scalars())

        assert back(HOSTILE) == HOSTILE
        for one in HOSTILE:
            assert back([one]) == [one]

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(_ids)
        def round_trip(ids: list[str]) -> None:
            assert back(ids) == ids

        round_trip()


class _Sub(str):
    pass


def test_an_array_literal_refuses_what_it_cannot_hold() -> None:
    assert _rows.array_literal([]) == "{}"
    for ids in (["a\x00b"], ["a", "\x00"], [1], ["a", None], [_Sub("a")], [quoted_name("a", None)]):
        assert _rows.array_literal(ids) is None, ids


def _write(store: Store, batch: Sequence[Any]) -> tuple[Any, list[OrderRows]]:
    rows = [
        OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {}) for o in batch
    ]
    with store.transaction() as conn:
        return upsert_order_rows(store, conn, "shopify", SHOP, rows)


def test_the_plain_lookup_reads_what_the_composed_one_reads(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page lookup with its ids as array literals against the same with its ids as lists
    (what it sends when an id cannot be a literal): the same stored versions, tombstones and
    checkouts."""
    hostile = [h for h in HOSTILE if len(h) <= 255]
    base = make(0, len(hostile))
    written = [
        o.model_copy(update={"id": h, "customer_id": h}) for o, h in zip(base, hostile, strict=True)
    ]
    done, back = _write(store, written)
    assert (done.inserted, back) == (len(hostile), [])
    shop_id = store.shop_id("shopify", SHOP)
    with store.transaction() as conn:
        for h in hostile[::2]:
            conn.execute(
                text("INSERT INTO tombstones VALUES (:s, 'customers', :id, 'deleted', 0)"),
                {"s": shop_id, "id": h},
            )
            conn.execute(
                text(
                    "INSERT INTO checkouts (shop_id, id, created_at, updated_at, currency,"
                    " subtotal, total, lines)"
                    " VALUES (:s, :id, 1, 1, 'USD', 0, 0, '[]')"
                ),
                {"s": shop_id, "id": h},
            )
    asked = hostile + [h + "z" for h in hostile] + ["y" * 5000]
    newest: dict[str, Any] = dict.fromkeys(asked)
    with store.engine.connect() as conn:
        plain = fast_rows._looked_up(conn, shop_id, set(asked), newest, asked)
        monkeypatch.setattr(fast_rows, "array_param", list)
        composed = fast_rows._looked_up(conn, shop_id, set(asked), newest, asked)
    marked, existing, found = plain
    assert marked == {("customers", h) for h in hostile[::2]}
    assert sorted(existing) == sorted(hostile)
    assert sorted(o.id for o in found) == sorted(hostile[::2])
    assert (marked, {k: tuple(v) for k, v in existing.items()}, sorted(found)) == (
        composed[0],
        {k: tuple(v) for k, v in composed[1].items()},
        sorted(composed[2]),
    )


def test_notes_of_ids_no_literal_holds_go_as_a_list_and_are_written_once(
    store: Store,
) -> None:
    at = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    shop_id = store.shop_id("shopify", SHOP)
    with store.transaction() as conn:
        listed = changes.noting(conn, shop_id, [_Sub("NULL"), _Sub('a"b'), None], at)
        assert listed is not None and listed[1]["note_ids"] == ["NULL", 'a"b']
        conn.exec_driver_sql(*listed)
        assert changes.note(conn, shop_id, ["NULL", 'a"b'], at) == 0  # noted already
        plain = changes.noting(conn, shop_id, ["NULL", "{x}"], at)
        assert plain is not None and plain[1]["note_ids"] == '{"{x}"}'
    with store.engine.connect() as conn:
        noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
    assert set(noted) == {"NULL", 'a"b'} and sorted(noted.values()) == [1, 2]  # once each


def test_the_columnar_path_takes_hostile_customer_ids_as_they_are(store: Store) -> None:
    hostile = [h for h in HOSTILE if h.strip() and len(h) <= 255]
    batch = [
        o.model_copy(update={"id": f"o{i}", "customer_id": h})
        for i, (o, h) in enumerate(zip(make(0, len(hostile)), hostile, strict=True))
    ]
    done, back = _write(store, batch)
    assert (done.inserted, back) == (len(hostile), [])
    with store.engine.connect() as conn:
        noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
        seq = conn.execute(text("SELECT facts_seq FROM shops")).scalar()
    assert set(noted) == set(hostile)
    assert sorted(noted.values()) == list(range(1, len(hostile) + 1))  # each noted once
    assert seq == 1


# --- the COPY chunks -------------------------------------------------------------------


class _Kept(Writer):
    """A COPY writer keeping what it is given (psycopg's public ``Writer``)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: Any) -> None:
        self.chunks.append(bytes(data))


class _Colour(enum.Enum):
    RED = "red"


class _Size(enum.IntEnum):
    BIG = 3


VALUES: list[Any] = [
    None,
    0,
    -1,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    -(2**63),
    2**63,
    10**40,
    True,
    False,
    "",
    "tab\there",
    "new\nline",
    "cr\r",
    "back\\slash",
    "\\N",
    "\\.",
    "\x08\x0b\x0c",
    "é字😀",
    '{"a": "x\\ty", "b": null}',
    "null",
    quoted_name("quoted", None),
    _Sub("sub"),
    _Colour.RED,
    _Size.BIG,
    b"\x00\\\t\xff",
    bytearray(b"ba"),
    Decimal("1.10"),
    Decimal("NaN"),
    1.5,
    float("inf"),
    float("nan"),
    -0.0,
    dt.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
    dt.date(2025, 1, 2),
    uuid.UUID(int=7),
    [1, 2],
    ["a", None],
]


def _formatted(store: Store, rows: list[list[Any]], fast: bool) -> list[bytes]:
    """The chunks of ``rows``: by :func:`_copy._send` (``fast``) or by ``write_row``."""
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cursor:
            kept = _Kept()
            copy = psycopg.Copy(cursor, writer=kept)
            if fast:
                _copy._send(cursor, copy, list, rows)
            else:
                for row in rows:
                    copy.write_row(row)
                copy.finish(None)
            return kept.chunks


@c_formatter
def test_the_chunks_hold_the_bytes_write_row_formats(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [[VALUES[(i + k) % len(VALUES)] for k in range(7)] for i in range(3 * len(VALUES))]
    monkeypatch.setattr(_copy, "CHUNK_BYTES", 64)
    fast = _formatted(store, rows, fast=True)
    assert len(fast) > 5 and all(fast), [len(c) for c in fast]
    assert b"".join(fast) == b"".join(_formatted(store, rows, fast=False))


@c_formatter
@pytest.mark.parametrize("size", [_copy.CHUNK_BYTES - 1, _copy.CHUNK_BYTES, _copy.CHUNK_BYTES + 1])
def test_a_chunk_goes_when_it_reaches_chunk_bytes(store: Store, size: int) -> None:
    """Two rows of ``size`` bytes together: a chunk at exactly :data:`CHUNK_BYTES` goes as
    it is, none is empty, nothing is lost or sent twice."""
    first = "a" * (_copy.CHUNK_BYTES // 2 - 1)  # its line: CHUNK_BYTES // 2 bytes
    second = "b" * (size - len(first) - 2)
    rows = [[first], [second], ["c"]]
    chunks = _formatted(store, rows, fast=True)
    assert b"".join(chunks) == f"{first}\n{second}\nc\n".encode()
    assert all(chunks)
    expected = [size, 2] if size >= _copy.CHUNK_BYTES else [size + 2]
    assert [len(c) for c in chunks] == expected


_meta = MetaData()
kids = Table(
    "t_review_kids",
    _meta,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("note", Text),
    Column("data", JSON),
)
records = Table(
    "t_review_records",
    _meta,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("data", JSON),
)


@pytest.fixture
def tables(store: Store) -> Store:
    with store.engine.begin() as conn:
        _meta.create_all(conn)
    return store


def _batch(n: int, table: Table) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"shop_id": 1, "id": f"r{i:03}", "data": {"n": "x" * 40}}
        row.update({"updated_at": i} if "updated_at" in table.c else {"note": "t\t" * 20})
        made.append(row)
    return made


def _stored(store: Store, table: Table) -> list[Any]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(table.select().order_by(table.c.id))]


@pytest.mark.parametrize("table", [kids, records], ids=["child", "record"])
@pytest.mark.parametrize("bad", [{1, 2}, object()], ids=["json", "unadaptable"])
def test_a_value_failing_mid_page_leaves_nothing_and_the_store_usable(
    tables: Store, monkeypatch: pytest.MonkeyPatch, table: Table, bad: Any
) -> None:
    store = tables
    monkeypatch.setattr(_copy, "CHUNK_BYTES", 256)
    sent: list[int] = []
    real = psycopg.Copy.write

    def write(self: Any, buffer: Any) -> None:
        sent.append(len(buffer))
        real(self, buffer)

    monkeypatch.setattr(psycopg.Copy, "write", write)
    batch = _batch(60, table)
    if isinstance(bad, set):
        batch[50]["data"] = {"n": bad}  # json.dumps refuses a set: the encoder raises
    else:
        batch[50]["id"] = bad  # psycopg cannot format it: format_row_text raises
    with pytest.raises((TypeError, DBAPIError)), store.transaction() as conn:
        conn.execute(table.insert(), [{**_batch(1, table)[0], "id": "before"}])
        _copy.insert_rows(conn, table, batch, min_rows=1)
    if _copy._row_formatter() is not None:
        assert len(sent) > 3  # chunks had gone to the server before the failure
    assert _stored(store, table) == []
    good = _batch(60, table)
    with store.transaction() as conn:
        _copy.insert_rows(conn, table, good, min_rows=1)
    assert len(_stored(store, table)) == 60


def test_a_key_taken_in_the_first_chunk_of_many_takes_the_guarded_path(
    tables: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses the first chunk while later ones are still sent: the error still
    arrives as the COPY's, and the page goes by the staging table."""
    store = tables
    monkeypatch.setattr(_copy, "CHUNK_BYTES", 128)
    with store.transaction() as conn:
        conn.execute(records.insert(), [{**_batch(1, records)[0], "updated_at": -1}])
    with store.transaction() as conn:
        _copy.insert_rows(conn, records, _batch(80, records), min_rows=1)
    rows = _stored(store, records)
    assert len(rows) == 80 and rows[0][2] == 0


# --- the COPY plans ----------------------------------------------------------------------


def test_the_plan_follows_the_table_object_not_its_name(tables: Store) -> None:
    """A table of the same name with other columns (another MetaData: a migration's) gets a
    plan of its own columns."""
    store = tables
    older = Table(
        "t_review_kids",
        MetaData(),
        Column("shop_id", Integer, primary_key=True),
        Column("id", String(255), primary_key=True),
        Column("note", Text),
    )
    rows = _batch(20, kids)
    with store.transaction() as conn:
        _copy.insert_rows(conn, kids, rows, min_rows=1)
        conn.execute(kids.delete())
        _copy.insert_rows(conn, older, rows, min_rows=1)
    assert [r[3] for r in _stored(store, kids)] == [None] * 20


def test_stores_on_two_schemas_in_one_process_keep_their_rows(postgres_url: str) -> None:
    with own_schema(postgres_url.split("?")[0]) as other:
        one, two = Store(postgres_url), Store(other)
        try:
            for s in (one, two):
                with s.engine.begin() as conn:
                    _meta.create_all(conn)
            for s, n in ((one, 20), (two, 30), (one, 10)):
                with s.transaction() as conn:
                    _copy.insert_rows(conn, kids, _batch(n, kids)[-10:], min_rows=1)
            assert [r[1] for r in _stored(one, kids)] == [f"r{i:03}" for i in range(20)]
            assert {r[1] for r in _stored(two, kids)} == {f"r{i:03}" for i in range(20, 30)}
        finally:
            one.close()
            two.close()


@pytest.mark.parametrize(
    "other",
    [
        lambda row, tx: bytearray(b"\t".join(str(v).encode() for v in row) + b"\n"),
        lambda tx, row, out: None,
        lambda row, tx, out: out.extend(b"%d fields\n" % len(row)),
    ],
    ids=["two-arguments", "other-order", "other-bytes"],
)
@c_formatter
def test_a_c_formatter_of_another_psycopg_leaves_the_rows_to_write_row(
    tables: Store, monkeypatch: pytest.MonkeyPatch, other: Any
) -> None:
    """``format_row_text`` is psycopg's private C function (its return value changed in
    3.3): one that takes other arguments or formats otherwise in some later psycopg must not
    fail or garble every page, the rows go by ``write_row`` instead."""
    from psycopg._cmodule import _psycopg

    store = tables
    monkeypatch.setattr(_psycopg, "format_row_text", other)
    _copy._row_formatter.cache_clear()
    try:
        with store.transaction() as conn:
            _copy.insert_rows(conn, kids, _batch(20, kids), min_rows=1)
        assert len(_stored(store, kids)) == 20
        assert _copy._row_formatter() is None
    finally:
        monkeypatch.undo()
        _copy._row_formatter.cache_clear()
    assert _copy._row_formatter() is not None
