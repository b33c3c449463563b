"""A page writer's thread gets the GIL back at once after each wait on the server, while the
caller's thread is busy mapping the next page (issue 20, ``page_commit.SWITCH_INTERVAL``): the
process's switch interval is short while a writer thread runs, and as it was once none does."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, text

from shopsync.errors import StoreError
from shopsync.store import Store, page_commit
from shopsync.store.page_commit import PageWriter


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def _noting(seen: list[float]) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        conn.execute(text("SELECT 1"))
        seen.append(sys.getswitchinterval())

    return write


def test_the_interval_is_short_while_a_writer_thread_runs_and_put_back_after(
    sqlite_store: Store,
) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    with PageWriter(sqlite_store, depth=1) as writer:
        writer.submit(_noting(seen))
        writer.submit(_noting(seen))
    assert seen == pytest.approx([page_commit.SWITCH_INTERVAL] * 2)
    assert sys.getswitchinterval() == before

    def fail(conn: Connection) -> None:
        raise StoreError("page failed")

    failing = PageWriter(sqlite_store, depth=1)
    failing.submit(fail)
    with pytest.raises(StoreError):
        failing.close()
    assert sys.getswitchinterval() == before  # a failed page's writer ends as well

    inline: list[float] = []
    with PageWriter(sqlite_store, depth=0) as writer:  # no thread: nothing changes
        writer.submit(_noting(inline))
    assert inline == [before]


def test_two_writers_at_once_put_it_back_when_the_last_ends(sqlite_store: Store) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    first, second = PageWriter(sqlite_store, depth=1), PageWriter(sqlite_store, depth=1)
    first.submit(_noting(seen))
    second.submit(_noting(seen))
    first.close()
    assert sys.getswitchinterval() == pytest.approx(page_commit.SWITCH_INTERVAL)  # one runs
    second.submit(_noting(seen))
    second.close()
    assert sys.getswitchinterval() == before
    assert seen == pytest.approx([page_commit.SWITCH_INTERVAL] * 3)


def _blocked(seen: list[float], go: threading.Event) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        seen.append(sys.getswitchinterval())
        assert go.wait(10)

    return write


def test_an_interval_the_user_set_while_a_writer_ran_is_kept(sqlite_store: Store) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    go = threading.Event()
    try:
        with PageWriter(sqlite_store, depth=1) as writer:
            writer.submit(_blocked(seen, go))
            while not seen:
                time.sleep(0.001)
            sys.setswitchinterval(0.001)  # the user's own setting, made meanwhile
            go.set()
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)


def test_a_writer_whose_thread_did_not_start_changes_nothing(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    writer = PageWriter(sqlite_store, depth=1)
    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", refuse)
        with pytest.raises(RuntimeError, match="start new thread"):
            writer.submit(_noting(seen))
    writer.close()  # no thread to wait for, no error of its own
    assert seen == []
    assert sys.getswitchinterval() == before


def test_a_writer_thread_that_cannot_set_the_interval_fails_the_sync(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sys.getswitchinterval()
    monkeypatch.setattr(page_commit, "SWITCH_INTERVAL", 0.0)  # refused by sys.setswitchinterval
    seen: list[float] = []
    writer = PageWriter(sqlite_store, depth=2)
    with pytest.raises(ValueError):  # by the submit or the close: no success, page unwritten
        writer.submit(_noting(seen))
        writer.close()
    assert seen == []
    assert sys.getswitchinterval() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_child_forked_while_a_writer_runs_has_the_interval_back(sqlite_store: Store) -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    go = threading.Event()
    with PageWriter(sqlite_store, depth=1) as writer:
        writer.submit(_blocked(seen, go))
        while not seen:
            time.sleep(0.001)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            pid = os.fork()
        if pid == 0:  # the child: no writer thread in it
            ok = sys.getswitchinterval() == before
            page_commit._writer_started()  # a writer of its own sets it and puts it back
            ok = ok and abs(sys.getswitchinterval() - page_commit.SWITCH_INTERVAL) < 1e-9
            page_commit._writer_ended()
            os._exit(0 if ok and sys.getswitchinterval() == before else 1)
        go.set()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sys.getswitchinterval() == before
