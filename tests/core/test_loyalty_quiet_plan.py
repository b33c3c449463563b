"""``shopsync.plan`` announces the same actions whether the customers ``with_actions`` leaves
quiet build their actions or not (the behaviour before 30c323e): generated shops, plans at
several moments, with and without the ledger's update."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import shopsync
from shopsync.core import loyalty_shop
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

P, S = "shopify", "acme"
END = dt.datetime(2025, 3, 31, 23, tzinfo=dt.timezone.utc)


def _plans(store: Store) -> list[list[str]]:
    found = []
    for days, update in ((0, True), (-20, False), (-200, False), (-31, True)):
        plan = shopsync.plan(store, as_of=END + dt.timedelta(days=days), update_ledger=update)
        found.append(sorted(repr(a) for a in plan.actions))
    return found


@pytest.mark.parametrize("seed", [3, 11])
def test_a_plan_announces_what_it_did_before_quiet_customers(
    store: Store, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    state = generate_shop(platform=P, shop=S, seed=seed, customers=60, orders=500, end=END)
    before = Store(f"sqlite:///{tmp_path / 'before.db'}")
    for one in (store, before):
        one.upsert([*state.customers.values(), *state.orders.values()])
    quiet = _plans(store)
    real = loyalty_shop.with_actions

    calls = []

    def everyone(columns: Any, *args: Any) -> pl.Series:
        calls.append(columns.summary.height)
        return pl.concat([real(columns, *args), columns.summary["customer_id"]]).unique()

    monkeypatch.setattr(loyalty_shop, "with_actions", everyone)
    assert _plans(before) == quiet
    assert calls and any(quiet)  # the columns derived the shop
    assert any("Loyalty" in a or "Tier" in a or "Expiry" in a for p in quiet for a in p)
    before.close()
