"""``update_ledger`` writing the columns' entries from frames, a few rows a chunk, against the
records' path: a failure between two chunks writes nothing and a re-run writes the ledger
once; a customer the rules derive (a redemption) among the columns' customers of one block,
ids that sort differently as text and as numbers; each customer's entries in the same id
order (what statements, balances and the redemption FIFO read)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
import pytest

from shopsync import loyalty
from shopsync.core.loyalty import source_key
from shopsync.loyalty import _derivation
from shopsync.store import Store, ledger, ledger_bulk
from tests.core.frames_kit import entry_of_row
from tests.reliability.test_interleavings import DAY, HOUR, P, S, customer, order

IDS = ["9", "10", "100", "2", "1a", "010"]


def _shop(store: Store, start: dt.datetime) -> None:
    store.upsert(
        [
            *(customer(c, start) for c in IDS),
            *(order(f"o{i}-{c}", c, start + i * HOUR) for c in IDS for i in range(3)),
        ]
    )


def _no_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _derivation.derive_shop

    def no_frames(*args: Any, on_entries: Any = None, **more: Any) -> Any:
        return real(*args, **more)

    monkeypatch.setattr(_derivation, "derive_shop", no_frames)


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Each customer's entries in id order."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for r in loyalty.ledger_entries(store, P, S):
        found.setdefault(r.customer_id, []).append(
            (
                *(r.source_key, r.kind, r.pending, r.approved, r.effective_at, r.order_id),
                r.reason,
                json.dumps(r.detail, sort_keys=True),
            )
        )
    return found


def _by_records(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> Store:
    """A store of its own with :func:`_run`'s ledger written from records (no frames)."""
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    with monkeypatch.context() as patch:
        _no_frames(patch)
        _run(reference, now)
    return reference


def _run(store: Store, now: dt.datetime) -> None:
    """A redemption of customer "10" (the rules derive them), then a full sync."""
    _shop(store, now - 90 * DAY)
    loyalty.redeem(store, (P, S, "10"), 500, as_of=now - DAY, key="r-10")
    loyalty.update_ledger(store, P, S, as_of=now)


@pytest.mark.parametrize("fail_at", [1, 2, 5])
def test_a_failure_between_chunks_writes_nothing_and_a_rerun_writes_the_ledger_once(
    store: Store, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    reference = _by_records(tmp_path, monkeypatch, now)
    monkeypatch.setattr(_derivation, "_FLUSH", 2)
    _shop(store, now - 90 * DAY)
    loyalty.redeem(store, (P, S, "10"), 500, as_of=now - DAY, key="r-10")
    before = _rows(store)
    calls: list[int] = []

    def failing(real: Any) -> Any:
        def write(conn: Any, rows: Any) -> int:
            calls.append(len(rows))
            if len(calls) == fail_at:
                raise RuntimeError("crash between two chunks")
            return int(real(conn, rows))

        return write

    with monkeypatch.context() as patch:
        patch.setattr(ledger, "add_entries", failing(ledger.add_entries))
        patch.setattr(ledger_bulk, "add_entry_frame", failing(ledger_bulk.add_entry_frame))
        with pytest.raises(RuntimeError, match="crash"):
            loyalty.update_ledger(store, P, S, as_of=now)
    assert _rows(store) == before  # one transaction: nothing of the failed run
    first = loyalty.update_ledger(store, P, S, as_of=now)
    assert first.added > 0 and first.by_rules == 1  # "10": the rules', in the columns' block
    assert len(calls) == fail_at  # the failure came between chunks of the frames
    assert loyalty.update_ledger(store, P, S, as_of=now).added == 0
    assert _rows(store) == _rows(reference)
    reference.close()


def test_frames_and_records_write_each_customers_entries_in_the_same_id_order(
    store: Store, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    reference = _by_records(tmp_path, monkeypatch, now)
    monkeypatch.setattr(_derivation, "_FLUSH", 2)
    _run(store, now)
    framed, records = _rows(store), _rows(reference)
    assert set(framed) == set(IDS)
    assert framed == records
    assert [e[1] for e in framed["10"]].count("redeem") == 1
    reference.close()


def test_a_sync_leaving_out_an_erased_customer_warns_of_nothing(
    store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    """The frames' rows of erased customers are dropped by a filter polars does not flag as
    ambiguous (``is_in`` of a same-typed Series is deprecated: it warns on stderr, once a
    chunk, and its meaning is to change)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    _shop(store, now - 90 * DAY)
    store.redact_customer(P, S, "9")
    capfd.readouterr()
    assert loyalty.update_ledger(store, P, S, as_of=now).added > 0
    assert "is_in" not in capfd.readouterr().err
    assert "9" not in {e.customer_id for e in loyalty.ledger_entries(store, P, S)}


def test_an_entry_frames_ledger_columns_are_the_row_paths_rows() -> None:
    """:func:`_derivation._frame_entries` against :func:`_derivation._entry_row` of the same
    entries: the keys of orders that came back (``g<n>``, hashed past 255 characters as the
    rules hash), an earn's detail, the other kinds' empty one, an erased customer left out."""
    long_order = "o" * 240  # "earn:c1:" + 240 = 248 characters; with ":g12", 252
    longer = "p" * 250  # 258 with ":g3": hashed
    rows = [
        ("earn:c1:o1", "c1", "earn", 10, 5, 0, "earned", "o1", 500, "1.5"),
        ("earn:c1:o2", "c1", "earn", 11, 5, 0, "earned", "o2", 500, "1"),
        ("approve:c1:o2", "c1", "approve", 12, -5, 5, "approved", "o2", None, None),
        (f"earn:c1:{long_order}", "c1", "earn", 13, 7, 0, "earned", long_order, 700, "1"),
        (f"earn:{longer}", "c2", "earn", 14, 7, 0, "earned", "q", 700, 'x"\u00e9'),
        ("birthday:c2:2024", "c2", "bonus", 15, 0, 9, "birthday", None, None, None),
        ("earn:gone:o9", "gone", "earn", 16, 1, 0, "earned", "o9", 100, "1"),
        ("earn:c3:", "c3", "earn", 17, 1, 0, "earned", "", 100, "1"),
    ]
    columns = ["key", "customer_id", "kind", "at", "pending", "approved", "reason", "order_id"]
    frame = pl.DataFrame(
        rows,
        schema=[
            *((c, pl.Int64 if c in ("at", "pending", "approved") else pl.String) for c in columns),
            ("value", pl.Int64),
            ("multiplier", pl.String),
        ],
        orient="row",
    )
    generations = {("c1", "o2"): 2, ("c1", long_order): 12, ("c2", "q"): 3, ("c3", ""): 4}
    moved = _derivation._moved_frame(generations)
    written = _derivation._frame_entries(7, frame, 99, moved, {"gone"}, 3).to_dicts()
    expected = [
        _derivation._entry_row(7, entry_of_row(row, 3), 99, generations)
        for row in rows
        if row[1] != "gone"
    ]
    assert [dict(r, detail=r["detail"] or {}) for r in written] == expected
    assert [r["source_key"] for r in written][1:5] == [
        "earn:c1:o2:g2",
        "approve:c1:o2:g2",
        f"earn:c1:{long_order}:g12",
        source_key(f"earn:{longer}", "g3"),
    ]
    assert _derivation._moved_frame({("c1", ""): 3, ("c2", "o1"): 0}) is None  # none came back
    plain = _derivation._frame_entries(7, frame, 99, None, set(), 3)
    assert plain["source_key"].to_list() == [row[0] for row in rows]
