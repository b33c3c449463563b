"""Attacks on the windowed read of WooCommerce orders (issue 20, ``_windows``): syncs killed
at every page and run again, orders saved during the read, a store ignoring
``modified_before``, faults on the wire, and every ``parallel_reads``."""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import closing
from typing import Any

import pytest
from shopsync_woocommerce import WooCommerceAdapter, _windows
from shopsync_woocommerce._keyset import Keyset, shift

import shopsync
from shopsync._instants import instant
from shopsync.testing import EmulatedShop
from tests.shopify.test_fast_ingest import two_urls
from tests.sync.emulated import FAST_RETRIES, emulated

__all__ = ["two_urls"]  # the fixture

ORDERS = 240
PER_PAGE = 5  # 48 pages: eight windows


def _adapter(shop: EmulatedShop, **options: Any) -> WooCommerceAdapter:
    options.setdefault("per_page", PER_PAGE)
    adapter = shopsync.connect("woocommerce", **shop.settings, retry_policy=FAST_RETRIES, **options)
    assert isinstance(adapter, WooCommerceAdapter)
    adapter.takes_rows = True
    return adapter


def _crowd(shop: EmulatedShop) -> None:
    """Twelve orders a second: more than a page, read by page number."""
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
