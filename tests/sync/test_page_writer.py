"""Pages written on a thread of their own while the sync reads the next (issue 20,
``shopsync.store.page_commit.PageWriter``, on when ``page_commit.DEPTH`` > 0): in order, one
transaction each, on another connection than the reader's; a page that fails stops the pages
after it and is the sync's error, raised to the caller and never a hang; the pages before it
stay committed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, text

from shopsync.errors import StoreError
from shopsync.store import Store, page_commit
from shopsync.store.page_commit import PageWriter
from shopsync.sync import sync
from tests.test_models import order
from tests.test_sync import ListAdapter, at, stored

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    with s.transaction() as c:
        c.execute(text("CREATE TABLE pages (n INTEGER PRIMARY KEY, backend INTEGER)"))
    yield s
    s.close()


def _page(n: int, seen: list[Any] | None = None) -> Callable[[Connection], int]:
    def write(conn: Connection) -> int:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.execute(text("INSERT INTO pages VALUES (:n, :b)"), {"n": n, "b": backend})
        if seen is not None:
            seen.append((n, threading.current_thread()))
        return n

    return write


def _stored(store: Store) -> list[int]:
    with store.engine.connect() as c:
        return list(c.execute(text("SELECT n FROM pages ORDER BY n")).scalars())


def _within(seconds: float, body: Callable[[], None]) -> BaseException | None:
    """Run ``body`` on a thread; what it raised. Fails the test if it is still running
    after ``seconds`` (a hang)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the page writer hung"
    return raised[0] if raised else None


def test_pages_commit_in_order_on_a_thread_and_connection_of_their_own(store: Store) -> None:
    seen: list[Any] = []
    done: list[tuple[int, threading.Thread]] = []
    with store.engine.connect() as mine:
        reader = mine.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with PageWriter(store, depth=1) as writer:
        for n in range(6):
            writer.submit(_page(n, seen), lambda r: done.append((r, threading.current_thread())))
    assert _stored(store) == list(range(6))
    assert [n for n, _ in seen] == list(range(6))
    assert {t for _, t in seen} != {threading.current_thread()}  # written on the writer's
    assert done == [(n, threading.current_thread()) for n in range(6)]  # then: the caller's
    with store.engine.connect() as c:
        backends = set(c.execute(text("SELECT backend FROM pages")).scalars())
    assert reader not in backends or len(backends) == 1


def test_a_failed_page_is_the_callers_error_and_stops_the_pages_after_it(store: Store) -> None:
    def fail(conn: Connection) -> int:
        conn.execute(text("INSERT INTO pages VALUES (100, 0)"))  # rolled back with the page
        raise StoreError("page 3 failed")

    def body() -> None:
        with PageWriter(store, depth=1) as writer:
            for n in range(3):
                writer.submit(_page(n))
            writer.submit(fail)
            for n in range(4, 40):  # read on: the failure surfaces at a later submit
                writer.submit(_page(n))

    raised = _within(30, body)
    assert isinstance(raised, StoreError) and "page 3 failed" in str(raised)
    assert _stored(store) == [0, 1, 2]  # the pages before it committed; none after it


def test_a_failure_of_the_last_page_is_raised_by_close(store: Store) -> None:
    def fail(conn: Connection) -> int:
        raise StoreError("the last page failed")

    def body() -> None:
        with PageWriter(store, depth=1) as writer:
            writer.submit(_page(0))
            writer.submit(fail)

    raised = _within(30, body)
    assert isinstance(raised, StoreError) and "last page" in str(raised)
    assert _stored(store) == [0]


def test_an_error_of_the_reader_lets_the_pages_handed_over_commit(store: Store) -> None:
    """As a sequential sync: every page read before the error is committed, then it goes on."""

    def body() -> None:
        with PageWriter(store, depth=1) as writer:
            for n in range(3):
                writer.submit(_page(n))
            raise ValueError("the platform failed")

    raised = _within(30, body)
    assert isinstance(raised, ValueError)
    assert _stored(store) == [0, 1, 2]


def test_a_sync_whose_page_fails_in_the_writer_raises_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync's error is the writer's, raised on the sync's thread; the checkpoint is that
    of the last committed page, and the next sync completes the store."""
    shop = ListAdapter(page_size=10)
    for n in range(60):
        shop.orders[f"o{n:02d}"] = order(id=f"o{n:02d}", updated_at=at(n))
    real = Store.set_cursor
    calls = {"n": 0}
    threads: set[threading.Thread] = set()

    def set_cursor(self: Store, platform: str, shop: str, resource: str, **kw: Any) -> None:
        calls["n"] += 1
        threads.add(threading.current_thread())
        if calls["n"] == 2:
            raise StoreError("the database went away")
        real(self, platform, shop, resource, **kw)

    monkeypatch.setattr(Store, "set_cursor", set_cursor)
    monkeypatch.setattr(page_commit, "DEPTH", 1)
    syncing: list[threading.Thread] = []

    def body() -> None:
        syncing.append(threading.current_thread())
        sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))

    raised = _within(60, body)
    assert isinstance(raised, StoreError) and "went away" in str(raised)
    assert syncing[0] not in threads  # the pages were written on the writer's thread
    assert sorted(stored(store)) == [f"o{n:02d}" for n in range(10)]  # page 1 only
    monkeypatch.setattr(Store, "set_cursor", real)
    report = sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    assert report.resources["orders"].since == at(9)
    assert stored(store) == shop.orders


def test_a_sync_with_the_writer_completes_on_a_pool_of_one_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes a pooled connection of its own: the sync's thread holds none while it
    hands a page over, nor does the lock's renewal for long, so one connection is enough
    (a pool of one waiting on itself would time out, or hang with no timeout)."""
    import functools

    from sqlalchemy import create_engine

    from shopsync.store import _engine

    one = functools.partial(create_engine, pool_size=1, max_overflow=0, pool_timeout=5)
    monkeypatch.setattr(_engine, "create_engine", one)
    monkeypatch.setattr(page_commit, "DEPTH", 1)
    small = Store(postgres_url)
    assert small.engine.pool.size() == 1  # type: ignore[attr-defined]
    shop = ListAdapter(page_size=5)
    for n in range(40):
        shop.orders[f"o{n:02d}"] = order(id=f"o{n:02d}", updated_at=at(n))
    try:
        assert _within(60, lambda: sync(shop, small, lock_ttl=0.5)) is None
        assert stored(small) == shop.orders
    finally:
        small.close()


def test_an_interrupt_of_the_sync_while_a_page_commits_leaves_whole_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on the sync's thread while the writer commits a page: the sync stops with the
    interrupt (no hang), the pages handed over commit whole with their checkpoint, and the
    next sync completes the store from there."""

    class Interrupted(ListAdapter):
        def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Any]:
            for n, page in enumerate(super().read_orders(updated_since)):
                if n == 3:
                    raise KeyboardInterrupt
                yield page

    shop = Interrupted(page_size=10)
    for n in range(60):
        shop.orders[f"o{n:02d}"] = order(id=f"o{n:02d}", updated_at=at(n))
    real = Store.set_cursor

    def slow_set_cursor(self: Store, *args: Any, **kw: Any) -> None:
        time.sleep(0.2)  # the page is still being written when the interrupt comes
        real(self, *args, **kw)

    monkeypatch.setattr(Store, "set_cursor", slow_set_cursor)
    monkeypatch.setattr(page_commit, "DEPTH", 1)
    raised = _within(60, lambda: sync(shop, store, resources=["orders"], overlap=dt.timedelta(0)))
    assert isinstance(raised, KeyboardInterrupt)
    kept = sorted(stored(store))
    assert kept == [f"o{n:02d}" for n in range(30)]  # the three pages read, each whole
    assert store.get_cursor("shopify", "acme.myshopify.com", "orders").high_water == at(29)
    monkeypatch.setattr(Store, "set_cursor", real)
    again = ListAdapter(page_size=10)
    again.orders = shop.orders
    report = sync(again, store, resources=["orders"], overlap=dt.timedelta(0))
    assert report.resources["orders"].since == at(29)
    assert stored(store) == shop.orders


def test_a_then_that_raises_is_the_callers_error_and_is_not_called_again(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync's ``on_page`` that raises stops it, as in a sequential sync: its error is the
    sync's, the pages handed over still commit, and it is not called again for them (a
    callback raising to stop the sync would be asked again, its error logged as the
    writer's)."""
    calls: list[int] = []

    def then(n: int) -> None:
        calls.append(n)
        raise ValueError(f"stop after page {n}")

    def body() -> None:
        with PageWriter(store, depth=1) as writer:
            for n in range(6):
                writer.submit(_page(n), then)

    raised = _within(30, body)
    assert isinstance(raised, ValueError) and str(raised) == "stop after page 0"
    assert calls == [0]
    assert not [r for r in caplog.records if "stopped too" in r.getMessage()]
    assert _stored(store)[0] == 0


def test_close_twice_raises_the_same_error_and_a_closed_writer_takes_no_page(
    store: Store,
) -> None:
    writer = PageWriter(store, depth=1)
    writer.submit(_page(0))
    writer.close()
    writer.close()  # nothing to wait for, nothing to raise
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(_page(1))

    def fail(conn: Connection) -> int:
        raise StoreError("page failed")

    failing = PageWriter(store, depth=1)
    failing.submit(fail)
    first = _within(30, failing.close)
    again = _within(30, failing.close)
    assert isinstance(first, StoreError) and again is first
    assert _stored(store) == [0]
