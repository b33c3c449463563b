"""How the WooCommerce adapter reads a page's body: in one call (``shopsync.http.read_at_once``).

``response.content`` reads 10 kB at a time, some 75 socket calls for a page of 290 kB, each of
which lets go of the GIL; the thread reading ahead then waited for it back from the mapping
thread at every one. A body cut short must still be a retried transport failure."""

from __future__ import annotations

import http.client
from contextlib import closing
from typing import Any

import pytest

from tests.sync.emulated import connect, emulated


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``amt`` of every read of a response body from the socket (http.client)."""
    asked: list[Any] = []
    real = http.client.HTTPResponse.read

    def read(self: http.client.HTTPResponse, amt: int | None = None) -> bytes:
        asked.append(amt)
        return real(self, amt)

    monkeypatch.setattr(http.client.HTTPResponse, "read", read)
    return asked


def test_a_page_body_is_read_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        emulated("woocommerce", seed=3, customers=20, orders=120) as shop,
        closing(connect(shop, per_page=100)) as adapter,
    ):
        asked = _reads(monkeypatch)
        pages = list(adapter.read_orders())
    assert sum(len(p.records) for p in pages) == 120
    # a page of 100 orders is far above 10 kB: read by ``content`` it took a dozen calls
    assert asked and all(amt is None for amt in asked), asked[:5]


def test_a_cut_page_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulated("woocommerce", seed=3, customers=20, orders=120) as shop:
        shop.faults.inject("truncate", 2)
        with closing(connect(shop, per_page=100)) as adapter:
            pages = list(adapter.read_orders())
        assert shop.faults.counts["truncate"] == 2
        got = {o.id for p in pages for o in p.records}
        assert got == set(shop.state.orders)
        assert sum(p.stats.get("retries", 0) for p in pages) >= 2
