"""The read of a set of customers (:func:`shopsync.store.read_set.read_customers`, through
:func:`shopsync.frames.load`): the whole shop's frames restricted to the set, on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
import pytest

from shopsync.core.incremental import restrict
from shopsync.frames import load
from shopsync.models import Order, Refund
from shopsync.store import Store, facts, facts_set, read_set
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


def test_a_set_read_from_the_snapshot_equals_the_indexed_one(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the snapshot written, then orders added, moved between customers, refunded and
    deleted and a customer erased, the set's frames read from the snapshot (the writes since
    merged in) are those read through the indexes, and the snapshot is not rewritten."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    state = generate_shop(platform=P, shop=SHOP, seed=9, customers=30, orders=150, end=END)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    sid = store.shop_id(P, SHOP)
    facts.order_facts(store, sid)  # the snapshot, current to now
    token = (store.facts_dir / f"shop-{sid}" / "current.json").read_text()
    ids = sorted(state.customers)
    chosen, others = ids[::2], ids[1::2]
    orders = sorted(state.orders.values(), key=lambda o: o.id)
    of = {cid: [o for o in orders if o.customer_id == cid] for cid in ids}
    mine = [o for cid in chosen for o in of[cid]]
    theirs = [o for cid in others for o in of[cid]]
    later = END + dt.timedelta(days=1)
    store.upsert(
        [
            mine[0].model_copy(update={"id": "new-1", "line_items": mine[0].line_items}),
            mine[1].model_copy(update={"customer_id": others[0], "updated_at": later}),
            theirs[0].model_copy(update={"customer_id": chosen[0], "updated_at": later}),
            mine[2].model_copy(
                update={
                    "updated_at": later,
                    "refunds": (Refund(id="r-new", created_at=later, amount=mine[2].total),),
                }
            ),
        ]
    )
    store.delete(Order, P, SHOP, mine[3].id, deleted_at=later)
    store.delete(Order, P, SHOP, theirs[1].id, deleted_at=later)
    erased = next(cid for cid in chosen[1:] if of[cid])
    store.redact_customer(P, SHOP, erased)
    at = END - dt.timedelta(days=20)  # some orders are later: counted, their lines read
    kwargs: dict[str, Any] = {
        "currency": "USD",
        "columns": {"orders": ("subtotal",), "refunds": ("id",)},
        "customer_ids": [*chosen, "no-such-customer"],
    }
    used = []
    real = read_set.customer_facts

    def spy(*args: Any, **kw: Any) -> Any:
        used.append(real(*args, **kw))
        return used[-1]

    with (
        mock.patch.object(read_set, "SCAN_PER_CUSTOMER", 10**9),
        mock.patch.object(read_set, "customer_facts", spy),
    ):
        scanned = load(store, P, SHOP, at, **kwargs)
    with mock.patch.object(read_set, "SCAN_PER_CUSTOMER", 0):
        indexed = load(store, P, SHOP, at, **kwargs)
    assert len(used) == 1 and used[0] is not None  # the snapshot was read, with a delta
    assert (store.facts_dir / f"shop-{sid}" / "current.json").read_text() == token
    assert {"new-1", theirs[0].id} <= set(scanned.orders["id"].to_list())
    assert not {mine[1].id, mine[3].id} & set(scanned.orders["id"].to_list())
    assert "r-new" in scanned.refunds["id"].to_list()
    for f in dataclasses.fields(indexed):
        got, want = getattr(scanned, f.name), getattr(indexed, f.name)
        if isinstance(want, pl.DataFrame):
            assert _sorted(got).equals(_sorted(want)), f.name
        else:
            assert got == want, f.name


def _snapshot_and_index(
    store: Store, at: dt.datetime, ids: list[str], **kwargs: Any
) -> tuple[Any, Any, list[Any]]:
    """The set's frames read from the snapshot (the writes since merged in), then through
    the indexes, and what :func:`.facts_set.customer_facts` returned."""
    used: list[Any] = []
    real = read_set.customer_facts

    def spy(*args: Any, **kw: Any) -> Any:
        used.append(real(*args, **kw))
        return used[-1]

    with (
        mock.patch.object(read_set, "SCAN_PER_CUSTOMER", 10**9),
        mock.patch.object(read_set, "customer_facts", spy),
    ):
        scanned = load(store, P, SHOP, at, customer_ids=ids, currency="USD", **kwargs)
    with mock.patch.object(read_set, "SCAN_PER_CUSTOMER", 0):
        indexed = load(store, P, SHOP, at, customer_ids=ids, currency="USD", **kwargs)
    return scanned, indexed, used


def _assert_same(scanned: Any, indexed: Any) -> None:
    for f in dataclasses.fields(indexed):
        got, want = getattr(scanned, f.name), getattr(indexed, f.name)
        if isinstance(want, pl.DataFrame):
            assert _sorted(got).equals(_sorted(want)), f.name
        else:
            assert got == want, f.name


def test_an_order_of_the_set_made_a_guest_order_leaves_the_set(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An order of a chosen customer whose customer is removed after the snapshot (a guest
    order now) is none of the set's: the snapshot's copy of it is dropped, with its lines,
    refunds and fulfilments, as an order moved to a customer outside the set is."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    state = generate_shop(platform=P, shop=SHOP, seed=11, customers=12, orders=60, end=END)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    facts.order_facts(store, store.shop_id(P, SHOP))  # the snapshot, current to now
    ids = sorted(state.customers)[::2]
    moved = next(
        o for o in sorted(state.orders.values(), key=lambda o: o.id) if o.customer_id in ids
    )
    later = END + dt.timedelta(days=1)
    store.upsert([moved.model_copy(update={"customer_id": None, "updated_at": later})])
    scanned, indexed, used = _snapshot_and_index(store, END, ids)
    assert used and used[0] is not None  # the snapshot was read, with a delta
    assert moved.id not in indexed.orders["id"].to_list()
    assert moved.id not in scanned.orders["id"].to_list()
    assert moved.id not in scanned.lines["order_id"].to_list()
    _assert_same(scanned, indexed)


def test_the_snapshot_set_read_keeps_to_its_shop_and_switches_at_its_threshold(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two shops of the same order and customer ids: the writes to the other shop since the
    snapshot (an order moved into the set, one deleted) touch none of this shop's set, and
    one of its orders moved out of the set and back is the set's. The snapshot is scanned
    when it holds at most :data:`.read_set.SCAN_PER_CUSTOMER` orders a customer of the set,
    the indexes read otherwise, and both give the same frames."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    other = "other-" + SHOP
    states = {
        shop: generate_shop(platform=P, shop=shop, seed=12, customers=10, orders=40, end=END)
        for shop in (SHOP, other)
    }
    for state in states.values():
        store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    sid = store.shop_id(P, SHOP)
    for shop in (SHOP, other):
        facts.order_facts(store, store.shop_id(P, shop))
    ids = sorted(states[SHOP].customers)[::2]
    orders = {s: sorted(st.orders.values(), key=lambda o: o.id) for s, st in states.items()}
    assert [o.id for o in orders[SHOP]] == [o.id for o in orders[other]]
    later = END + dt.timedelta(days=1)
    back = next(o for o in orders[SHOP] if o.customer_id in ids)
    away = next(o for o in orders[SHOP] if o.customer_id not in ids)
    store.upsert([back.model_copy(update={"customer_id": away.customer_id, "updated_at": later})])
    store.upsert([back.model_copy(update={"updated_at": later + dt.timedelta(hours=1)})])
    into = next(o for o in orders[other] if o.customer_id not in ids)
    store.upsert([into.model_copy(update={"customer_id": ids[0], "updated_at": later})])
    gone = next(o.id for o in orders[other] if o.customer_id in ids)
    store.delete(Order, P, other, gone, deleted_at=later)
    held = read_set.snapshot_orders(store, sid)
    assert held == len(orders[SHOP])
    for padded, scans in ((held, True), (held - 1, False)):
        chosen = [*ids, *(f"none-{n}" for n in range(padded - len(ids)))]
        with (
            mock.patch.object(read_set, "SCAN_PER_CUSTOMER", 1),
            mock.patch.object(read_set, "customer_facts", return_value=None) as scan,
        ):
            load(store, P, SHOP, END, customer_ids=chosen, currency="USD")
        assert scan.called == scans, padded
    scanned, indexed, used = _snapshot_and_index(store, END, ids)
    assert used and used[0] is not None
    assert back.id in scanned.orders["id"].to_list()
    _assert_same(scanned, indexed)


def test_a_snapshot_many_writes_behind_leaves_the_set_to_the_indexes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More orders changed since the snapshot than :func:`.facts.order_facts` would merge
    without rewriting it: the set is read through the indexes, not by merging that delta
    on every plan (nothing here rewrites the files: 100k of 200k orders changed made a set's
    read 1.8 s, against 0.06 s through the indexes). Up to that many, the snapshot is read."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    state = generate_shop(platform=P, shop=SHOP, seed=13, customers=10, orders=40, end=END)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    sid = store.shop_id(P, SHOP)
    facts.order_facts(store, sid)
    ids = sorted(state.customers)
    orders = sorted(state.orders.values(), key=lambda o: o.id)
    later = END + dt.timedelta(days=1)
    wanted = {"orders": ["id", "customer_id", "created_at", "test"]}
    with mock.patch.object(facts, "_REWRITE_MIN", 3):  # order_facts rewrites past 3
        store.upsert([o.model_copy(update={"updated_at": later}) for o in orders[:3]])
        assert facts_set.customer_facts(store, sid, ids, wanted) is not None
        store.upsert([orders[3].model_copy(update={"updated_at": later})])
        assert facts_set.customer_facts(store, sid, ids, wanted) is None


def test_odd_customer_ids_read_the_same_from_the_snapshot_and_the_indexes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customer ids with quotes, ``%``/``_`` (LIKE's wildcards), backslashes, non-ASCII and
    the longest an id may be are matched exactly, by the snapshot's filter as by the
    indexes: a wildcard or a prefix matches no other customer."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    state = generate_shop(platform=P, shop=SHOP, seed=14, customers=8, orders=40, end=END)
    odd = ['a"b', "50%", "5_%", "o'neil\\", "M\u00fcnchen \u2028x", "x" * 255, "x" * 254, "%"]
    rename = dict(zip(sorted(state.customers), odd, strict=True))
    customers = [c.model_copy(update={"id": rename[c.id]}) for c in state.customers.values()]
    orders = [
        o.model_copy(update={"customer_id": rename.get(o.customer_id or "")})
        for o in state.orders.values()
    ]
    store.upsert([*state.products.values(), *customers, *orders])
    facts.order_facts(store, store.shop_id(P, SHOP))
    later = END + dt.timedelta(days=1)
    moved = next(o for o in orders if o.customer_id == "50%")
    store.upsert([moved.model_copy(update={"customer_id": "5_%", "updated_at": later})])
    ids = ['a"b', "5_%", "M\u00fcnchen \u2028x", "x" * 254, "%", "M\u00fcnchen"]
    scanned, indexed, used = _snapshot_and_index(store, END, ids)
    assert used and used[0] is not None
    found = set(scanned.orders["customer_id"].to_list())
    assert "5_%" in found and found <= set(ids)
    assert moved.id in scanned.orders["id"].to_list()
    _assert_same(scanned, indexed)
