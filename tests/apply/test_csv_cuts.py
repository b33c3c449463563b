"""A CSV file cut by a crash at any byte of its last row is repaired before the next append.

The row is written again whole and nothing after it is swallowed, even when the cut falls
inside a quoted cell holding newlines, quotes and multi-byte characters.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shopsync.outbox import apply
from shopsync.sinks import Csv
from shopsync.store import Store
from shopsync.store.schema import outbox
from tests.apply.helpers import NOW, customer, nudge

COLUMNS = ("customer_id", "reason", "facts")
TRICKY = 'line one\nsaid "hi",\r\nthen — café\n\n"'


def rows_of(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, strict=True))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert([customer("1"), customer("2"), customer("3")])
    return s


def actions() -> list[object]:
    return [nudge("1"), nudge("2", reason=TRICKY), nudge("3", reason="after")]


def run(store: Store, root: Path) -> None:
    apply(actions()[:2], store, [Csv("a.csv", root=root, columns=COLUMNS)], now=NOW)


def test_a_cut_anywhere_in_the_last_row_is_repaired(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path)
    path = tmp_path / "a.csv"
    whole = path.read_bytes()
    expected = rows_of(path)
    assert expected[2][2] == TRICKY  # the quoted cell round-trips
    last_row_start = len(whole) - len(Csv._row(expected[2]).encode())
    assert whole[last_row_start - 1 : last_row_start] == b"\n"
    for cut in range(last_row_start, len(whole)):
        path.write_bytes(whole[:cut])
        with store.transaction() as conn:  # the crash came before the outbox settled
            conn.execute(outbox.update().values(status="pending", attempts=0))
        report = apply(actions(), store, [Csv("a.csv", root=tmp_path, columns=COLUMNS)], now=NOW)
        assert report.delivered == 3, cut
        got = rows_of(path)
        assert got[:3] == expected, f"cut at byte {cut}"
        assert [r[0] for r in got[1:]] == [str(a.idempotency_key) for a in actions()], cut
        assert got[3][2] == "after", cut
        with store.transaction() as conn:  # back to two rows for the next offset
            conn.execute(outbox.delete())
        path.write_bytes(whole)


def test_a_cut_inside_the_header_starts_the_file_again(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path)
    path = tmp_path / "a.csv"
    whole = path.read_bytes()
    header = Csv._row(("idempotency_key", *COLUMNS)).encode()
    for cut in range(1, len(header)):
        path.write_bytes(whole[:cut])
        with store.transaction() as conn:
            conn.execute(outbox.delete())
        apply(actions()[:1], store, [Csv("a.csv", root=tmp_path, columns=COLUMNS)], now=NOW)
        assert path.read_bytes().startswith(header), cut
        got = rows_of(path)
        assert len(got) == 2 and got[1][0] == nudge("1").idempotency_key, cut


def test_a_failed_write_leaves_no_half_row(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full in the middle of a row: the half row is removed, the next run writes it."""
    run(store, tmp_path)
    path = tmp_path / "a.csv"
    before = path.read_bytes()
    sink = Csv("a.csv", root=tmp_path, columns=COLUMNS)
    real_open = open

    def failing_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(file, mode, *args, **kwargs)
        if "a" in mode and str(file) == str(path):
            original = handle.write

            def write(data: bytes) -> int:
                original(data[: len(data) // 2])
                handle.flush()
                raise OSError(28, "No space left on device")

            handle.write = write  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr("builtins.open", failing_open)
    report = apply([actions()[2]], store, [sink], now=NOW)
    monkeypatch.undo()
    assert report.failed == 1
    assert path.read_bytes() == before
    with store.transaction() as conn:
        conn.execute(outbox.update().values(next_attempt_at=0))
    assert apply(None, store, [sink], now=NOW).delivered == 1
    assert [r[0] for r in rows_of(path)[1:]] == [str(a.idempotency_key) for a in actions()]


def test_what_a_repair_cuts_is_kept_beside_the_file(store: Store, tmp_path: Path) -> None:
    """A file left broken by an older version (a quote opened mid-file, rows after it) is
    made readable again, and the bytes cut off are kept in ``<name>.cut``, not lost."""
    run(store, tmp_path)
    path = tmp_path / "a.csv"
    whole = path.read_bytes()
    broken = whole + b'"half a cell\nlater,row,that,was\nswallowed,by,the,quote\n'
    path.write_bytes(broken)
    apply(actions(), store, [Csv("a.csv", root=tmp_path, columns=COLUMNS)], now=NOW)
    assert rows_of(path)[:3] == list(csv.reader(whole.decode().splitlines(keepends=True)))[:3]
    assert (tmp_path / "a.csv.cut").read_bytes() == broken[len(whole) :]


def test_a_repair_never_cuts_a_row_another_process_is_writing(store: Store, tmp_path: Path) -> None:
    """Two processes appending to one file (the nightly job and the webhook worker): a sink's
    first-use repair waits for the other writer's lock instead of cutting its row in half."""
    import fcntl
    import threading

    run(store, tmp_path)
    path = tmp_path / "a.csv"
    other_row = Csv._row(["other:key", "9", "from the other process", "{}"]).encode()
    with open(path, "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        other.write(other_row[:10])  # half written, lock held
        other.flush()
        with store.transaction() as conn:
            conn.execute(outbox.delete())
        sink = Csv("a.csv", root=tmp_path, columns=COLUMNS)
        worker = threading.Thread(
            target=apply, args=([actions()[2]], store, [sink]), kwargs={"now": NOW}
        )
        worker.start()
        worker.join(0.5)  # it had time to repair and append, had it not waited
        assert path.read_bytes().endswith(other_row[:10])
        other.write(other_row[10:])
        other.flush()
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    worker.join(30)
    keys = [r[0] for r in rows_of(path)[1:]]
    assert keys[-2:] == ["other:key", actions()[2].idempotency_key]
