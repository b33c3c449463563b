"""A sync killed between a page's orders and the completion of the checkouts they name
loses both (one transaction), and the next sync writes both: the order is not stored
without its checkout completed, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import shopsync
import shopsync.store.checkout_rows as checkout_rows
from shopsync.models import Order
from tests.apply.test_abandoned_e2e import END, WITH_CHECKOUTS, H, _emulated, _order, _started
from tests.sync.emulated import connect, emulated


def test_a_kill_before_the_completion_loses_the_page_and_the_rerun_writes_both(
    store: shopsync.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulated("shopify", seed=5, customers=10, orders=20, products=4, end=END) as shop:
        adapter = connect(shop, bulk_threshold=None)
        people = sorted(shop.state.customers.values(), key=lambda c: c.id)
        ann = next(c for c in people if c.email and c.consent.email.allows_marketing)
        kid = _started(shop, ann, END - 5 * H)
        shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
        bought = _order(shop, ann, END - H, paid=True, from_checkout=_emulated(shop, kid).id)
        real = checkout_rows.complete_checkouts

        def killed(*args: Any, **kwargs: Any) -> int:
            raise KeyboardInterrupt  # stands for SIGKILL after the page's rows

        monkeypatch.setattr(checkout_rows, "complete_checkouts", killed)
        with pytest.raises(KeyboardInterrupt):
            shopsync.sync(adapter, store, resources=["orders"])
        held = {o.id for o in store.iter(Order, "shopify", shop.state.shop)}
        assert bought.id not in held
        monkeypatch.setattr(checkout_rows, "complete_checkouts", real)
        shopsync.sync(adapter, store, resources=["orders"])
        assert bought.id in {o.id for o in store.iter(Order, "shopify", shop.state.shop)}
        (done,) = [
            c
            for c in checkout_rows.read_checkouts(store, "shopify", shop.state.shop)
            if c.id == kid
        ]
        assert done.completed_at == END - H
