"""A large WooCommerce read in windows of modification time, read side by side (issue 20,
``shopsync_woocommerce._windows``): every order read once, two requests on the wire at most,
a record saved during the read still read, and a checkpoint that never runs ahead of a window
still behind, so a sync killed half-way and run again loses nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from shopsync_woocommerce import WooCommerceAdapter
from shopsync_woocommerce._keyset import Keyset
from shopsync_woocommerce._windows import THREAD_NAME, in_windows

import shopsync
import shopsync.errors
from shopsync._instants import instant
from shopsync.adapter_kit import RawPage
from shopsync.testing import EmulatedShop
from tests.sync.emulated import FAST_RETRIES, emulated

ORDERS = 240
PER_PAGE = 5  # 48 pages: cut into eight windows


def _adapter(shop: EmulatedShop, **options: Any) -> WooCommerceAdapter:
    options.setdefault("per_page", PER_PAGE)
    adapter = shopsync.connect("woocommerce", **shop.settings, retry_policy=FAST_RETRIES, **options)
    assert isinstance(adapter, WooCommerceAdapter)
    adapter.takes_rows = True
    return adapter


def _crowd(shop: EmulatedShop) -> None:
    """Twelve orders a second: more than a page, so such a second is read on its own."""
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone.utc)
    for k, order_id in enumerate(sorted(shop.state.orders)):
        at = start + dt.timedelta(seconds=k // 12, microseconds=k)
        shop.state.update_order(order_id, updated_at=at)


def _read(adapter: WooCommerceAdapter) -> dict[str, set[dt.datetime]]:
    """Each order read, with the versions (modification times) it was read at."""
    read: dict[str, set[dt.datetime]] = {}
    for page in adapter.read_orders():
        for order in page.records:
            read.setdefault(order.id, set()).add(order.updated_at)
        for rows in getattr(page, "rows", ()):
            read.setdefault(rows.id, set()).add(instant(rows.updated_at))
    return read


class Wire:
    """The adapter's GETs of orders, counted, with how many were on the wire at once (each
    held ``delay`` seconds, so that two at once are seen)."""

    def __init__(self, adapter: WooCommerceAdapter, delay: float = 0.01) -> None:
        self.real = adapter.api.get
        self.delay = delay
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.asked: list[dict[str, str]] = []
        self.before_each: list[Any] = []
        adapter.api.get = self.get  # type: ignore[method-assign]

    def get(self, endpoint: str, **kwargs: Any) -> Any:
        if endpoint != "orders":
            return self.real(endpoint, **kwargs)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.asked.append(dict(kwargs.get("params") or {}))
            for hook in self.before_each:
                hook(len(self.asked))
        try:
            time.sleep(self.delay)
            return self.real(endpoint, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def _ids(page: Any) -> list[str]:
    return [r.id for r in getattr(page, "rows", ())] + [o.id for o in page.records]


def _stored_ids(store: shopsync.Store) -> set[str]:
    with store.engine.connect() as c:
        return {row[0] for row in c.exec_driver_sql("SELECT id FROM orders")}


@pytest.fixture(scope="module")
def shop() -> Iterator[EmulatedShop]:
    with emulated("woocommerce", seed=5, customers=40, orders=ORDERS) as shop:
        yield shop


def test_every_order_is_read_once_with_two_requests_on_the_wire(shop: EmulatedShop) -> None:
    with closing(_adapter(shop)) as adapter:
        wire = Wire(adapter)
        seen = Counter(i for page in adapter.read_orders() for i in _ids(page))
        counted = adapter.http.stats.requests
    assert seen == Counter(set(shop.state.orders))  # each once
    assert wire.most == 2
    bounded = [p for p in wire.asked if "modified_before" in p and p.get("per_page") != "1"]
    assert len(bounded) > 10  # read in windows
    # the counters, kept by two threads, lose no request
    assert counted >= len(wire.asked)


def test_one_parallel_read_asks_page_after_page(shop: EmulatedShop) -> None:
    with closing(_adapter(shop, parallel_reads=1)) as adapter:
        wire = Wire(adapter)
        seen = Counter(i for page in adapter.read_orders() for i in _ids(page))
    assert seen == Counter(set(shop.state.orders))
    assert wire.most == 1
    assert not any("modified_before" in p for p in wire.asked)


@pytest.mark.parametrize("crowded", [False, True])
def test_no_page_says_the_read_complete_past_an_order_it_has_not_given(crowded: bool) -> None:
    """For every page, each order changed up to the page's ``high_water`` is in it or in a
    page before: the sync checkpoints there and a resumed read starts from it. ``crowded``:
    twelve orders a second, more than a page, so windows start and end inside seconds read
    on their own; each order is still given once."""
    with emulated("woocommerce", seed=6, customers=40, orders=ORDERS) as shop:
        if crowded:
            _crowd(shop)
        changed = {o.id: o.updated_at for o in shop.state.orders.values()}
        with closing(_adapter(shop)) as adapter:
            Wire(adapter, delay=0.0)
            given: Counter[str] = Counter()
            marks = []
            for page in adapter.read_orders():
                given.update(_ids(page))
                if page.high_water is not None:
                    missing = {i for i, at in changed.items() if at <= page.high_water} - set(given)
                    assert not missing, (page.high_water, sorted(missing)[:5])
                    marks.append(page.high_water)
    assert given == Counter(set(changed))
    assert len(marks) > 10
    # the last page: the whole read (WooCommerce keeps whole seconds)
    assert marks[-1] == max(changed.values()).replace(microsecond=0)


def test_an_order_saved_during_the_read_is_read_as_saved() -> None:
    """Saved once the windows are cut: one order already read, and one of a window not yet
    read, both move to the last window (open-ended) and are read there."""
    with emulated("woocommerce", seed=7, customers=40, orders=ORDERS) as shop:
        ordered = sorted(shop.state.orders.values(), key=lambda o: o.updated_at)
        early, late = ordered[0].id, ordered[len(ordered) // 2].id
        was = {early: ordered[0].updated_at, late: ordered[len(ordered) // 2].updated_at}
        with closing(_adapter(shop)) as adapter:
            wire = Wire(adapter)

            def save(asked: int) -> None:
                if asked == 5:
                    shop.state.update_order(early, email="saved@example.com")
                    shop.state.update_order(late, email="saved.too@example.com")

            wire.before_each.append(save)
            read = _read(adapter)
    assert set(read) == set(shop.state.orders)
    for saved in (early, late):
        assert shop.state.orders[saved].updated_at > was[saved] + dt.timedelta(seconds=1)
        assert shop.state.orders[saved].updated_at.replace(microsecond=0) in read[saved]


def test_a_sync_killed_half_way_and_run_again_stores_every_order() -> None:
    """No overlap: a checkpoint ahead of a window still behind would skip its orders."""

    class Killed(Exception):
        pass

    with emulated("woocommerce", seed=8, customers=40, orders=ORDERS) as shop:
        store = shopsync.Store("sqlite://")
        pages = [0]

        def kill(resource: str, page: Any, report: Any) -> None:
            pages[0] += 1
            if resource == "orders" and pages[0] == 12:
                raise Killed

        with closing(_adapter(shop, overlap=0)) as adapter:
            Wire(adapter)
            with pytest.raises(Killed):
                shopsync.sync(adapter, store, resources=["orders"], on_page=kill)
        assert 0 < len(_stored_ids(store)) < ORDERS
        with closing(_adapter(shop, overlap=0)) as adapter:
            shopsync.sync(adapter, store, resources=["orders"])
        assert _stored_ids(store) == set(shop.state.orders)
        store.close()


def test_an_error_in_one_window_is_raised_and_leaves_no_thread(shop: EmulatedShop) -> None:
    before = sys.getswitchinterval()
    with closing(_adapter(shop)) as adapter:
        wire = Wire(adapter)

        def fail(asked: int) -> None:
            if asked == 9:
                raise shopsync.errors.AuthenticationError("revoked", platform="woocommerce")

        wire.before_each.append(fail)
        with pytest.raises(shopsync.errors.AuthenticationError):
            for _ in adapter.read_orders():
                pass
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("parallel_reads", [1, 2])
def test_a_store_that_ignores_modified_after_fails_clearly_instead_of_reading_for_ever(
    shop: EmulatedShop, parallel_reads: int
) -> None:
    """A cache or a plugin in front of the store drops the filter: every request gets the
    first page. Without a check, the read asked for it again and again."""
    with closing(_adapter(shop, parallel_reads=parallel_reads)) as adapter:
        real = adapter.api.get
        sent = [0]

        def get(endpoint: str, **kwargs: Any) -> Any:
            params = dict(kwargs.pop("params", None) or {})
            params.pop("modified_after", None)
            sent[0] += 1
            if sent[0] > 60:  # (48 pages would be read by then: the read does not end)
                raise AssertionError("still reading")
            return real(endpoint, params=params, **kwargs)

        adapter.api.get = get  # type: ignore[method-assign]
        with pytest.raises(shopsync.errors.PlatformError, match="ignores the filter"):
            for _ in adapter.read_orders():
                pass
    assert sent[0] <= 12
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.mark.parametrize("value", [0, 9, True, 1.5, "2"])
def test_parallel_reads_is_checked(value: Any) -> None:
    with pytest.raises(shopsync.errors.ConfigurationError, match="parallel_reads"):
        shopsync.connect(
            "woocommerce",
            url="http://127.0.0.1:9",
            consumer_key="ck_x",
            consumer_secret="cs_x",
            parallel_reads=value,
        )


# --------------------------------------------------------------- one window, read ahead


class Scripted(Keyset):
    """A read of ``pages`` pages of one row each (row ``n`` on page ``n``), noting each page
    asked for in ``asked``; page ``fail_at`` raises."""

    def __init__(self, asked: list[int], fail_at: int | None = None, pages: int = 3) -> None:
        super().__init__(None, "orders", {"per_page": "1"}, None)  # type: ignore[arg-type]
        self.asked, self.fail_at, self.count = asked, fail_at, pages

    def __next__(self) -> RawPage:
        n = len(self.asked) + 1
        self.asked.append(n)
        if n == self.fail_at:
            raise shopsync.errors.AuthenticationError("revoked", platform="woocommerce")
        self.finished = n == self.count
        self.resume = f"2026-01-01T00:00:{n:02d}"
        return RawPage([n], cursor=str(n), last=self.finished)


def _wait_for(asked: list[int], n: int) -> None:
    deadline = time.monotonic() + 5
    while len(asked) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # and no further


def test_pages_come_in_order_and_stop_at_the_last() -> None:
    asked: list[int] = []
    got = [page.rows[0] for page in in_windows(Scripted(asked), readers=1)]
    assert got == [1, 2, 3] and asked == [1, 2, 3]


def test_pages_are_read_two_ahead_and_no_further() -> None:
    """While the caller holds page 1, pages 2 and 3 are asked for (the store always has a
    request in hand), and page 4 only once the caller takes page 2."""
    asked: list[int] = []
    pages = in_windows(Scripted(asked, pages=10), readers=1)
    assert next(pages).rows == [1]
    _wait_for(asked, 3)
    assert asked == [1, 2, 3]
    assert next(pages).rows == [2]
    _wait_for(asked, 4)
    assert asked == [1, 2, 3, 4]
    pages.close()


def test_an_error_ahead_is_raised_where_its_page_would_be() -> None:
    """Page 3 fails while the caller holds page 1: the caller gets page 2 first."""
    asked: list[int] = []
    pages = in_windows(Scripted(asked, fail_at=3, pages=5), readers=1)
    assert next(pages).rows == [1]
    _wait_for(asked, 3)
    assert asked == [1, 2, 3]
    assert next(pages).rows == [2]
    with pytest.raises(shopsync.errors.AuthenticationError):
        next(pages)


def test_a_reader_that_stops_leaves_no_request_behind() -> None:
    asked: list[int] = []
    pages = in_windows(Scripted(asked, pages=10), readers=1)
    assert next(pages).rows == [1]
    pages.close()  # the thread is joined: at most the two pages ahead were asked
    assert asked in ([1], [1, 2], [1, 2, 3])
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_the_switch_interval_is_short_while_pages_are_read_and_put_back_after() -> None:
    """The reading thread waits on the store for every page, and wakes with its answer
    needing the GIL back from the caller's thread, busy mapping: at Python's 5 ms interval
    it waited that long at each wake-up (``page_commit.SWITCH_INTERVAL``)."""
    from shopsync.store import page_commit

    before = sys.getswitchinterval()
    seen: list[float] = []

    class Noting(Scripted):
        def __next__(self) -> RawPage:
            seen.append(sys.getswitchinterval())
            return super().__next__()

    assert [p.rows[0] for p in in_windows(Noting([], pages=2), readers=1)] == [1, 2]
    assert seen == pytest.approx([page_commit.SWITCH_INTERVAL] * 2)
    assert sys.getswitchinterval() == before
    with pytest.raises(shopsync.errors.AuthenticationError):
        next(in_windows(Scripted([], fail_at=1), readers=1))
    assert sys.getswitchinterval() == before


def test_a_read_stopped_by_its_mapping_ends_its_threads_even_with_its_error_kept() -> None:
    """A KeyboardInterrupt (or a bug) in a page's mapping, its traceback kept (a REPL's last
    error, a worker's ``last_error``): the traceback holds the read's frame and its source,
    whose thread would wait for the caller for good, the switch interval short."""
    from shopsync.ingest_columns import ColumnarLoop

    before = sys.getswitchinterval()

    def rows(raw: object) -> None:
        if raw == 2:
            raise KeyboardInterrupt

    loop = ColumnarLoop("orders", lambda raw: None, rows)  # type: ignore[arg-type]
    kept: list[BaseException] = []
    try:
        for _ in loop.run(in_windows(Scripted([], pages=9), readers=1)):
            pass
    except KeyboardInterrupt as exc:
        kept.append(exc)
    assert kept
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name == THREAD_NAME for t in threading.enumerate()):
        time.sleep(0.01)
    assert sys.getswitchinterval() == before
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())


def test_windows_cut_by_time_cover_the_read_without_a_gap() -> None:
    """The bounds rise a second at least each; the first window ends where the second starts,
    and the last has no end."""
    from shopsync_woocommerce._windows import split

    class Top(Keyset):
        def newest_stamp(self) -> str | None:
            return "2026-01-01T00:00:10"

    first = Top(None, "orders", {"per_page": "5"}, "2025-12-31T23:59:59")  # type: ignore[arg-type]
    first.newest = "2026-01-01T00:00:00"
    rest = split(first, 32)  # more windows than seconds: one a second
    windows = [first, *rest]
    assert len(windows) == 10
    assert first.before == rest[0].after == "2026-01-01T00:00:01"
    for a, b in itertools.pairwise(windows):
        assert a.before is not None and a.before == b.after
        assert b.before is None or a.before < b.before
    assert rest[-1].before is None
    one = Top(None, "orders", {"per_page": "5"}, None)  # type: ignore[arg-type]
    one.newest = "2026-01-01T00:00:10"  # nothing newer: not cut
    assert split(one, 8) == [] and one.before is None
