"""Attacks on the windowed read of WooCommerce orders (issue 20, ``_windows``): syncs killed
at every page and run again, orders saved during the read, a store ignoring
``modified_before``, faults on the wire, and every ``parallel_reads``."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
from shopsync_woocommerce import WooCommerceAdapter, _windows
from shopsync_woocommerce._keyset import Keyset, shift

import shopsync
from shopsync.testing import EmulatedShop
from tests.shopify.test_fast_ingest import snapshot, two_urls
from tests.sync.emulated import emulated
from tests.woocommerce.test_read_windows import ORDERS, PER_PAGE, _adapter, _crowd, _read

__all__ = ["two_urls"]  # the fixture


def _newest(shop: EmulatedShop) -> dict[str, dt.datetime]:
    return {o.id: o.updated_at.replace(microsecond=0) for o in shop.state.orders.values()}


class Cut:
    """The windows :func:`_windows.split` cuts, kept (``windows``: the first read's too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.windows: list[Keyset] = []
        real = _windows.split

        def split(first: Keyset, parts: int) -> list[Keyset]:
            rest = real(first, parts)
            self.windows[:] = [first, *rest] if rest else []
            return rest

        monkeypatch.setattr(_windows, "split", split)


# ------------------------------------------------ an order saved while the read runs


def test_an_order_saved_in_a_window_not_read_yet_after_the_last_window_ended_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last window (open-ended) ends while the one before it is still to be read; an
    order of that one is then saved: it moves past the last window's end, and its own
    window no longer holds it. A read of one window would meet it at its end; the windowed
    read must too (else a first sync leaves it out of the store altogether)."""
    cut = Cut(monkeypatch)
    with emulated("woocommerce", seed=11, customers=40, orders=ORDERS) as shop:
        with closing(_adapter(shop)) as adapter:
            real = adapter.api.get
            tail_done = threading.Event()
            saved: list[str] = []

            def get(endpoint: str, **kwargs: Any) -> Any:
                params = dict(kwargs.get("params") or {})
                if endpoint != "orders" or len(cut.windows) < 3:
                    return real(endpoint, **kwargs)
                tail, before_tail = cut.windows[-1], cut.windows[-2]
                bound = before_tail.before
                assert bound is not None
                if (
                    params.get("modified_before") == shift(bound, 1)
                    and params.get("modified_after") == cut.windows[-3].before
                    and not saved
                ):
                    # the first request of the window before the last: wait for the last
                    assert tail_done.wait(5)
                    newest = max(
                        (o for o in shop.state.orders.values() if o.updated_at <= _at(bound)),
                        key=lambda o: o.updated_at,
                    )
                    shop.state.update_order(newest.id, email="saved@example.com")
                    saved.append(newest.id)
                response = real(endpoint, **kwargs)
                if (
                    "modified_before" not in params
                    and params.get("per_page") != "1"
                    and tail.after is not None
                    and params.get("modified_after", "") >= tail.after
                    and len(response.json()) < PER_PAGE
                ):
                    tail_done.set()
                return response

            adapter.api.get = get  # type: ignore[method-assign]
            read = _read(adapter)
        assert saved
        assert set(read) == set(shop.state.orders)
        newest = _newest(shop)
        assert newest[saved[0]] in read[saved[0]]


def _at(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc, microsecond=999999)


@pytest.mark.parametrize("trashed", [False, True], ids=["saved", "trashed"])
@pytest.mark.parametrize("parallel_reads", [1, 2])
def test_an_order_saved_out_of_a_crowded_second_read_in_pages_skips_none(
    parallel_reads: int, trashed: bool
) -> None:
    """A second holding more than a page is read a page at a time: an order of its first page,
    saved before its second page is asked for, leaves the second and moves the rest up a
    place. The order that moved onto the first page must still be read (by page numbers it
    was stepped over)."""
    with emulated("woocommerce", seed=12, customers=40, orders=ORDERS) as shop:
        _crowd(shop)
        with closing(_adapter(shop, parallel_reads=parallel_reads)) as adapter:
            real = adapter.api.get
            saved: list[str] = []

            def get(endpoint: str, **kwargs: Any) -> Any:
                params = dict(kwargs.get("params") or {})
                second_page = params.get("page") == "2" or params.get("offset", "0") != "0"
                if endpoint == "orders" and second_page and not saved:
                    second = shift(params["modified_after"], 1)
                    first = min(
                        (o for o in shop.state.orders.values() if _stamp(o) == second),
                        key=lambda o: int(o.id),
                    )
                    if trashed:
                        shop.state.delete_order(first.id)
                    else:
                        shop.state.update_order(first.id, email="saved@example.com")
                    saved.append(first.id)
                return real(endpoint, **kwargs)

            adapter.api.get = get  # type: ignore[method-assign]
            read = _read(adapter)
        assert saved
        assert set(shop.state.orders) <= set(read)
        if not trashed:
            assert _newest(shop)[saved[0]] in read[saved[0]]


@pytest.mark.parametrize("parallel_reads", [1, 2, 3])
def test_crowded_seconds_read_a_row_a_page(parallel_reads: int) -> None:
    """``per_page`` 1: a crowded second is still read through (two rows a request, the one
    read before and the next), each order once."""
    with emulated("woocommerce", seed=18, customers=10, orders=36) as shop:
        _crowd(shop)
        with closing(_adapter(shop, per_page=1, parallel_reads=parallel_reads)) as adapter:
            seen = Counter(i for page in adapter.read_orders() for i in _ids(page))
    assert seen == Counter(set(shop.state.orders))


def _stamp(order: Any) -> str:
    return str(order.updated_at.strftime("%Y-%m-%dT%H:%M:%S"))


# ------------------------------------------------ a sync killed at any page, run again


class Killed(Exception):
    pass


def _orders_rows(store: shopsync.Store) -> list[tuple[Any, ...]]:
    return snapshot(store)["orders"]


def _killed_and_run_again(
    shop: EmulatedShop, url: str, at: int, error: type[BaseException]
) -> shopsync.Store:
    """A sync of orders into ``url`` killed by ``error`` at its page ``at``, then run to its
    end (no overlap: a checkpoint ahead of a window still behind would lose orders)."""
    store = shopsync.Store(url)
    pages = [0]

    def kill(resource: str, page: Any, report: Any) -> None:
        pages[0] += 1
        if resource == "orders" and pages[0] == at:
            raise error

    with closing(_adapter(shop, overlap=0)) as adapter, pytest.raises(error):
        shopsync.sync(adapter, store, resources=["orders"], on_page=kill)
    assert pages[0] == at
    with closing(_adapter(shop, overlap=0)) as adapter:
        shopsync.sync(adapter, store, resources=["orders"])
    return store


@pytest.fixture(scope="module", params=[False, True], ids=["spread", "crowded"])
def killed_shop(request: pytest.FixtureRequest) -> Iterator[tuple[EmulatedShop, Any]]:
    """A shop, plain or twelve orders a second, and the orders rows a clean sync stores."""
    with emulated("woocommerce", seed=13, customers=40, orders=ORDERS) as shop:
        if request.param:
            _crowd(shop)
        clean = shopsync.Store("sqlite://")
        with closing(_adapter(shop, overlap=0)) as adapter:
            shopsync.sync(adapter, clean, resources=["orders"])
        rows = _orders_rows(clean)
        clean.close()
        assert len(rows) == ORDERS
        yield shop, rows


@pytest.mark.parametrize("at", range(1, 49, 3))
def test_a_sync_killed_at_any_page_and_run_again_stores_what_a_clean_sync_does(
    killed_shop: tuple[EmulatedShop, Any], at: int
) -> None:
    shop, clean = killed_shop
    store = _killed_and_run_again(shop, "sqlite://", at, Killed)
    assert _orders_rows(store) == clean
    store.close()


@pytest.mark.parametrize("at", [1, 2, 7, 20, 33, 47])
def test_a_sync_interrupted_at_a_page_and_run_again_stores_what_a_clean_sync_does(
    killed_shop: tuple[EmulatedShop, Any], at: int
) -> None:
    shop, clean = killed_shop
    store = _killed_and_run_again(shop, "sqlite://", at, KeyboardInterrupt)
    assert _orders_rows(store) == clean
    assert not [t for t in threading.enumerate() if t.name == _windows.THREAD_NAME]
    store.close()


@pytest.mark.parametrize("at", [3, 19, 40])
def test_a_sync_killed_and_run_again_on_either_engine(
    killed_shop: tuple[EmulatedShop, Any], two_urls: dict[bool, str], at: int
) -> None:
    """The clean sync's store on the same engine (PostgreSQL's rows read back as its own)."""
    shop, _ = killed_shop
    clean = shopsync.Store(two_urls[False])
    with closing(_adapter(shop, overlap=0)) as adapter:
        shopsync.sync(adapter, clean, resources=["orders"])
    store = _killed_and_run_again(shop, two_urls[True], at, Killed)
    assert _orders_rows(store) == _orders_rows(clean)
    assert len(_orders_rows(clean)) == ORDERS
    store.close()
    clean.close()


# ------------------------------------------------ saved, created, trashed during the read


class Hooked:
    """The adapter's GETs of orders, with ``hook(n)`` run before the ``n``-th is sent (on
    whichever thread sends it), and every GET counted (``sent``: each try)."""

    def __init__(
        self, adapter: WooCommerceAdapter, hook: Any = None, drop_before: bool = False
    ) -> None:
        self.real = adapter.api.get
        self.hook = hook
        self.drop_before = drop_before
        self.lock = threading.Lock()
        self.orders = self.sent = 0
        adapter.api.get = self.get  # type: ignore[method-assign]

    def get(self, endpoint: str, **kwargs: Any) -> Any:
        with self.lock:
            self.sent += 1
            if endpoint == "orders":
                self.orders += 1
                if self.hook is not None:
                    self.hook(self.orders)
        if self.drop_before and "params" in kwargs:
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if k != "modified_before"}
        return self.real(endpoint, **kwargs)


@pytest.mark.parametrize("moment", [2, 4, 9, 17, 30, 45])
def test_orders_saved_created_and_trashed_during_the_read_are_read_as_they_end(
    moment: int,
) -> None:
    """At one moment of the read (the ``moment``-th request of orders): the oldest, a middle
    and the newest order saved, an order created, one trashed. Every order the shop holds
    at the end is read, at its newest version."""
    with emulated("woocommerce", seed=14, customers=40, orders=ORDERS) as shop:
        state = shop.state
        ordered = sorted(state.orders.values(), key=lambda o: o.updated_at)
        done: list[str] = []

        def change(n: int) -> None:
            if n != moment:
                return
            for k in (0, len(ordered) // 2, len(ordered) - 1):
                state.update_order(ordered[k].id, email=f"saved.{k}@example.com")
            model = ordered[3].model_copy(update={"id": "", "name": "#9999"})
            done.append(state.add_order(model).id)
            state.delete_order(ordered[len(ordered) // 3].id)

        with closing(_adapter(shop)) as adapter:
            Hooked(adapter, change)
            read = _read(adapter)
        assert done
        newest = _newest(shop)
        assert set(newest) <= set(read)
        stale = {i for i, at in newest.items() if at not in read[i]}
        assert not stale


# ------------------------------------------------ a store ignoring modified_before


@pytest.mark.parametrize("crowded", [False, True])
def test_a_store_ignoring_modified_before_still_gives_every_order_and_ends(crowded: bool) -> None:
    """An older store (or a plugin) drops ``modified_before``: each window reads on to the
    newest order. Orders come more than once, none is missing, and the read ends."""
    with emulated("woocommerce", seed=15, customers=40, orders=ORDERS) as shop:
        if crowded:
            _crowd(shop)
        with closing(_adapter(shop)) as adapter:
            wire = Hooked(adapter, drop_before=True)
            read = _read(adapter)
        with closing(_adapter(shop)) as adapter:
            bounded = Hooked(adapter)
            _read(adapter)
        assert set(read) == set(shop.state.orders)
        # each window ends at its bound, as it would if the store kept it (without: each
        # window, and each crowded second, read on to the newest order: 309 and 1752)
        assert wire.orders <= bounded.orders + 2


# ------------------------------------------------ faults on the wire


@pytest.mark.parametrize("kind", ["429", "5xx", "drop", "truncate"])
def test_faults_in_window_requests_are_retried_and_counted(kind: str) -> None:
    with emulated("woocommerce", seed=16, customers=40, orders=ORDERS) as shop:
        shop.faults.retry_after = 0.01

        def fault(n: int) -> None:
            if n in (3, 4, 9, 15, 16, 30):
                shop.faults.inject(kind)  # type: ignore[arg-type]

        with closing(_adapter(shop)) as adapter:
            wire = Hooked(adapter, fault)
            seen = Counter(i for page in adapter.read_orders() for i in _ids(page))
            stats = adapter.http.stats
            assert stats.requests == wire.sent
            assert stats.retries == 6
        assert set(seen) == set(shop.state.orders)
        assert shop.faults.counts[kind] == 6


def _ids(page: Any) -> list[str]:
    return [r.id for r in getattr(page, "rows", ())] + [o.id for o in page.records]


# ------------------------------------------------ any number of readers, any page size


@pytest.fixture(scope="module")
def small_shop() -> Iterator[EmulatedShop]:
    with emulated("woocommerce", seed=17, customers=20, orders=60) as shop:
        yield shop


@pytest.mark.parametrize("per_page", [1, 2, 7])
@pytest.mark.parametrize("readers", range(1, 9))
def test_every_number_of_readers_stores_the_same_orders(
    small_shop: EmulatedShop, readers: int, per_page: int
) -> None:
    """Each order read once, with every ``parallel_reads`` and ``per_page`` 1."""
    with closing(_adapter(small_shop, parallel_reads=readers, per_page=per_page)) as adapter:
        seen = Counter(i for page in adapter.read_orders() for i in _ids(page))
    assert seen == Counter(set(small_shop.state.orders))
    assert not [t for t in threading.enumerate() if t.name == _windows.THREAD_NAME]


def test_every_number_of_readers_leaves_one_store(small_shop: EmulatedShop) -> None:
    snaps = []
    for readers in (1, 2, 5, 8):
        store = shopsync.Store("sqlite://")
        with closing(_adapter(small_shop, parallel_reads=readers, per_page=2)) as adapter:
            shopsync.sync(adapter, store, resources=["orders"])
        snaps.append(_orders_rows(store))
        store.close()
    assert len(snaps[0]) == 60
    assert all(s == snaps[0] for s in snaps)


def test_a_crowded_second_served_in_a_new_order_each_time_still_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database free to order the rows of one second as it likes (MySQL without a second
    sort key) may answer each request in another order: the read of the second starts again
    a few times at most (``_keyset.RESTARTS``), then reads on, and ends."""
    from shopsync_woocommerce import _keyset

    with emulated("woocommerce", seed=19, customers=10, orders=36) as shop:
        _crowd(shop)
        with closing(_adapter(shop, parallel_reads=1)) as adapter:
            real = adapter._list
            turn = [0]

            def shuffled(endpoint: str, params: Any) -> Any:
                rows, pages = real(endpoint, params)
                if "offset" in params and len(rows) > 1:
                    turn[0] += 1
                    rows = rows[turn[0] % len(rows) :] + rows[: turn[0] % len(rows)]
                    rows.sort(key=_keyset.stamp)  # (stable: the second's rows stay rotated)
                return rows, pages

            monkeypatch.setattr(adapter, "_list", shuffled)
            wire = Hooked(adapter)
            seen = set(i for page in adapter.read_orders() for i in _ids(page))
    assert seen <= set(shop.state.orders)
    # three seconds of twelve, pages of five: a few requests a second and its restarts
    assert wire.orders < 3 * (_keyset.RESTARTS + 1) * 4 + 10
