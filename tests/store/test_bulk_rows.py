"""A one-customer read hands its rows over as the bulk reader would (empty text as null on
SQLite) without a frame pass per text column: :func:`shopsync.store._columnar.bulk_rows`."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from shopsync.store._columnar import Column, as_bulk_read, bulk_rows
from shopsync.store.read import frame_of_rows

COLUMNS = [Column("id", pl.String), Column("n", pl.Int64), Column("note", pl.String)]
TEXT = st.one_of(st.none(), st.just(""), st.text(max_size=3))
ROWS = st.lists(st.tuples(TEXT, st.one_of(st.none(), st.integers(-5, 5)), TEXT), max_size=6)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_bulk_rows_is_the_frame_the_bulk_reader_hands_over(
    dialect: str, rows: list[tuple[object, ...]]
) -> None:
    expected = as_bulk_read(frame_of_rows(rows, COLUMNS), COLUMNS, dialect)
    assert_frame_equal(bulk_rows(rows, COLUMNS, dialect), expected)


def test_an_empty_text_is_null_on_sqlite_alone() -> None:
    rows = [("", 1, "x"), ("a", None, "")]
    assert bulk_rows(rows, COLUMNS, "sqlite").rows() == [(None, 1, "x"), ("a", None, None)]
    assert bulk_rows(rows, COLUMNS, "postgresql").rows() == rows
