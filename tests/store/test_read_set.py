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


def test_awkward_text_reads_the_same_by_set_as_whole(store: Store) -> None:
    """Commas, quotes, line breaks and non-ASCII text survive a set's read, and an empty text
    reads as the whole shop's read gives it (null on SQLite, whose bulk form cannot tell it
    from null; itself on PostgreSQL), as does one customer's read: their frames agree."""
    state = generate_shop(platform=P, shop=SHOP, seed=8, customers=6, orders=20, end=END)
    odd = ["", 'say "hi", twice', "two\nlines\r\n", "M\u00fcnchen \u2028", ",", '"']
    orders = []
    for n, order in enumerate(sorted(state.orders.values(), key=lambda o: o.id)):
        lines = tuple(
            line.model_copy(update={"sku": odd[(n + i) % len(odd)] if (n + i) % 7 else None})
            for i, line in enumerate(order.line_items)
        )
        orders.append(order.model_copy(update={"line_items": lines}))
    store.upsert([*state.products.values(), *state.customers.values(), *orders])
    ids = sorted(state.customers)
    whole = load(store, P, SHOP, END, currency="USD")
    mine = load(store, P, SHOP, END, customer_ids=ids[:4], currency="USD")
    want = restrict(whole, ids[:4]).lines
    assert set(mine.lines["sku"].to_list()) >= {None, "two\nlines\r\n", '"', 'say "hi", twice'}
    assert _sorted(mine.lines).equals(_sorted(want))
    assert ("" in want["sku"].to_list()) == (store.engine.dialect.name == "postgresql")
    for cid in ids[:2]:
        alone = load(store, P, SHOP, END, customer_id=cid, currency="USD").lines
        assert _sorted(alone).equals(_sorted(restrict(whole, [cid]).lines)), cid
