"""The collector pause (``shopsync._collector``) is process-wide and meant for short blocks of
CPU work that make no cycles. A WooCommerce GET once held it for the request's whole exchange, the
wait on the network included: a request hanging until its timeout (30 s by default, each retry
again) kept the collector off in every thread of the process (measured: a 2 s hang while
another thread made 2,000 cycles every 10 ms, no collection at all). It now pauses for the
decoding alone."""

from __future__ import annotations

import gc
import time
from contextlib import closing
from typing import Any

import pytest
import woocommerce

import shopsync
from tests.sync.emulated import connect, emulated


def test_the_collector_runs_while_a_request_waits_on_the_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    real = woocommerce.API.get
    seen: list[bool] = []

    def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = real(self, *args, **kwargs)
        if len(seen) < 3:  # a slow answer: the caller's own short pauses are over by then
            time.sleep(0.2)
            seen.append(gc.isenabled())  # what every thread gets while this one waits
        return response

    monkeypatch.setattr(woocommerce.API, "get", waiting)
    assert gc.isenabled()
    store = shopsync.Store(f"sqlite:///{tmp_path / 'w.db'}")
    with (
        emulated("woocommerce", seed=1, customers=5, orders=30) as shop,
        closing(connect(shop, per_page=10)) as adapter,
    ):
        shopsync.sync(adapter, store, resources=["orders"])
    store.close()
    assert seen and all(seen)
