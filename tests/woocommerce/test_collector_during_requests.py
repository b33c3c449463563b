"""The collector pause (``shopsync._collector``) is process-wide and meant for short blocks of
CPU work that make no cycles. Since 3356315 a WooCommerce GET holds it for the request's whole
exchange, the wait on the network included: a request that hangs until its timeout (30 s by
default, each retry again) keeps the collector off in every thread of the process meanwhile
(measured: a 2 s hang while another thread made 2,000 cycles every 10 ms, no collection at
all). Left unfixed on purpose (the pause bought 15% of a sync's CPU; bounding it is the
author's trade-off): strict xfail, so the day it is fixed the test says so."""

from __future__ import annotations

import gc
import time
from contextlib import closing
from typing import Any

import pytest
import woocommerce

import shopsync
from tests.sync.emulated import connect, emulated


@pytest.mark.xfail(strict=True, reason="the collector is off while a GET waits on the network")
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
