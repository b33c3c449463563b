"""The read of a set of customers (:func:`shopsync.store.read_set.read_customers`, through
:func:`shopsync.frames.load`): the whole shop's frames restricted to the set, on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from shopsync.core.incremental import restrict
from shopsync.frames import load
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

P, SHOP = "shopify", "set-read.example"
END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def test_a_set_of_customers_reads_the_whole_shops_frames_restricted(store: Store) -> None:
    state = generate_shop(platform=P, shop=SHOP, seed=7, customers=30, orders=120, end=END)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    at = END - dt.timedelta(days=30)  # some orders are later: left out, and counted
    ids = [*sorted(state.customers)[::3], "no-such-customer"]
    kwargs = {"currency": "USD", "columns": {"orders": ("subtotal",), "refunds": ("id",)}}
    whole = load(store, P, SHOP, at, **kwargs)  # type: ignore[arg-type]
    mine = load(store, P, SHOP, at, customer_ids=ids, **kwargs)  # type: ignore[arg-type]
    expected = restrict(whole, ids)
    assert mine.orders.height and mine.lines.height and mine.customers.height < 30
    for f in dataclasses.fields(expected):
        got, want = getattr(mine, f.name), getattr(expected, f.name)
        if f.name in ("checkouts", "browse"):
            want = want.filter(pl.col("customer_id").is_in(ids))
        if f.name in ("lines", "refunds", "fulfillments"):  # as the one-customer read: the
            got = got.filter(pl.col("order_id").is_in(mine.orders["id"].implode()))  # later too
        if isinstance(want, pl.DataFrame):
            assert _sorted(got).equals(_sorted(want)), f.name
        elif f.name != "future_orders":
            assert got == want, f.name
    later = whole.future_orders
    assert 0 < mine.future_orders < later or later == 0
