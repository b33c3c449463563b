"""Ledger entries written in columns (:func:`ledger_bulk.add_entry_frame`) against the row path
(:func:`ledger.add_entries`), on every engine: the same table, every column byte for byte
(ids included: their order, and on PostgreSQL the sequence values a skipped row takes), the
same counts, duplicates in one frame and against rows held skipped, a re-run adding nothing,
a failure leaving nothing."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import polars as pl
import pytest

from shopsync.store import Store, ledger, ledger_bulk
from shopsync.store._json_text import objects_text

A, B = "shopify:a.myshopify.com", "shopify:b.myshopify.com"


def _entries(shop_id: int, recorded: int = 1_700_000_000_000_000) -> list[dict[str, Any]]:
    """Rows as the derivation's row path builds them: earns with a detail of three fields
    (a multiplier json.dumps escapes among them), the other kinds' empty detail, text COPY
    escapes (tab, newline, backslash), non-ASCII, a null order, a duplicate key."""
    rows: list[dict[str, Any]] = []
    multipliers = ["1", "1.5", 'a"b', "é", "t\\u", None, "2"]
    reasons = ["earned", "tab\there", "line\nbreak\r", "back\\slash \\N", "ünï €", "", "x"]
    for i in range(40):
        earn = i % 3 != 2
        rows.append(
            {
                "shop_id": shop_id,
                "customer_id": f"c{i % 7}" if i % 5 else "ç\t7",
                "source_key": f"earn:o{i}" if earn else f"approve:o{i}",
                "kind": "earn" if earn else "approve",
                "pending": i * 10 if earn else -i * 10,
                "approved": 0 if earn else i * 10,
                "effective_at": 1_600_000_000_000_000 + (40 - i) * 1_000_000,
                "recorded_at": recorded,
                "order_id": None if i % 11 == 4 else f"o{i}",
                "reason": reasons[i % len(reasons)],
                "detail": {
                    "value_units": None if i == 7 else i * 100 - 500,
                    "per_unit": 1,
                    "multiplier": multipliers[i % len(multipliers)],
                }
                if earn
                else {},
            }
        )
    rows.insert(5, dict(rows[2], reason="a second entry under a key taken: skipped"))
    return rows


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    detail = pl.Series(
        "detail",
        [r["detail"] or None for r in rows],
        dtype=pl.Struct({"value_units": pl.Int64, "per_unit": pl.Int64, "multiplier": pl.String}),
    )
    plain = pl.DataFrame(
        [{k: v for k, v in r.items() if k != "detail"} for r in rows],
        schema={
            "shop_id": pl.Int64,
            "customer_id": pl.String,
            "source_key": pl.String,
            "kind": pl.String,
            "pending": pl.Int64,
            "approved": pl.Int64,
            "effective_at": pl.Int64,
            "recorded_at": pl.Int64,
            "order_id": pl.String,
            "reason": pl.String,
        },
    )
    return plain.with_columns(detail)


def _table(store: Store, shop_id: int) -> list[tuple[Any, ...]]:
    """The shop's rows as stored (``detail`` as its text), ids as offsets from the first."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id, customer_id, source_key, kind, pending, approved, effective_at,"
            " recorded_at, order_id, reason, CAST(detail AS TEXT)"
            f" FROM loyalty_ledger WHERE shop_id = {int(shop_id)} ORDER BY id"
        ).all()
    first = rows[0][0] if rows else 0
    return [(r[0] - first, *r[1:]) for r in rows]


def _shops(store: Store) -> tuple[int, int]:
    return store.shop_id(*A.split(":")), store.shop_id(*B.split(":"))


def test_columns_and_rows_leave_the_same_ledger(store: Store) -> None:
    by_rows, by_columns = _shops(store)
    rows = _entries(by_rows)
    held = 5  # keys the ledger holds before (of six rows, one a duplicate): skipped by both
    expected = len({r["source_key"] for r in rows}) - held
    with store.transaction() as conn:
        assert ledger.add_entries(conn, rows[:6]) == held
    with store.transaction() as conn:
        assert ledger.add_entries(conn, rows) == expected
    frame = _frame(_entries(by_columns))
    with store.transaction() as conn:
        assert ledger_bulk.add_entry_frame(conn, frame.head(6)) == held
    with store.transaction() as conn:
        assert ledger_bulk.add_entry_frame(conn, frame) == expected
    written = _table(store, by_columns)
    assert written == _table(store, by_rows)
    assert len(written) == len(_entries(by_rows)) - 1
    # a re-run adds nothing, by either path
    with store.transaction() as conn:
        assert ledger_bulk.add_entry_frame(conn, _frame(_entries(by_columns))) == 0
        assert ledger.add_entries(conn, _entries(by_columns)) == 0
    assert _table(store, by_columns) == written
    # the readers see what the row path's rows give them
    assert [tuple(r)[2:] for r in ledger.shop_entries(store, by_columns)] == [
        tuple(r)[2:] for r in ledger.shop_entries(store, by_rows)
    ]


def test_two_frames_of_one_transaction_and_a_frame_after_a_rollback(store: Store) -> None:
    shop_id, reference = _shops(store)
    rows = _entries(shop_id)
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as conn:
        ledger_bulk.add_entry_frame(conn, _frame(rows[:20]))
        raise RuntimeError("crash after a frame")
    assert _table(store, shop_id) == []
    with store.transaction() as conn:  # the staging table of the rolled back one is gone
        first = ledger_bulk.add_entry_frame(conn, _frame(rows[:20]))
        second = ledger_bulk.add_entry_frame(conn, _frame(rows[15:]))  # five held already
    with store.transaction() as conn:
        assert ledger.add_entries(conn, _entries(reference)[:20]) == first
        assert ledger.add_entries(conn, _entries(reference)[15:]) == second
    assert first + second == len({r["source_key"] for r in rows})
    assert _table(store, shop_id) == _table(store, reference)


def test_an_empty_frame_writes_nothing(store: Store) -> None:
    shop_id, _ = _shops(store)
    with store.transaction() as conn:
        assert ledger_bulk.add_entry_frame(conn, _frame(_entries(shop_id)).head(0)) == 0
    assert _table(store, shop_id) == []


def test_objects_text_is_json_dumps_of_each_row() -> None:
    """Every field type written in columns, and the rows json.dumps escapes, as it writes them."""
    values = {
        "n": [1, None, -(2**63), 0, 7, 8],
        "s": ["1.5", "", None, "x", 'q"', "ü\n\\"],
        "b": [True, False, None, True, False, True],
    }
    frame = pl.DataFrame(values).select(
        detail=pl.when(pl.col("n") != 0).then(pl.struct("n", "s", "b"))
    )
    expected = [json.dumps(row or {}) for row in frame["detail"].to_list()]
    assert objects_text(frame["detail"]).to_list() == expected
    assert expected[3] == "{}" and '"s": "q\\""' in expected[4] and "\\u00fc" in expected[5]
    compact = partial(json.dumps, separators=(",", ":"))  # another serializer: row by row
    texts = objects_text(frame["detail"], compact).to_list()
    assert texts == [compact(row or {}) for row in frame["detail"].to_list()]


def test_a_role_without_temporary_tables_writes_the_same_ledger_by_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL with ``TEMPORARY`` revoked: no staging table, the rows' path, the same
    ledger and counts (SQLite never stages: the same there)."""
    monkeypatch.setattr(ledger_bulk, "_may_stage", lambda conn: False)
    by_rows, by_columns = _shops(store)
    rows = _entries(by_rows)
    with store.transaction() as conn:
        expected = ledger.add_entries(conn, rows)
    with store.transaction() as conn:
        assert ledger_bulk.add_entry_frame(conn, _frame(_entries(by_columns))) == expected
        assert ledger_bulk.add_entry_frame(conn, _frame(_entries(by_columns))) == 0
    assert _table(store, by_columns) == _table(store, by_rows)
