"""The loyalty derivation's store reads: exact, served by indexes, in the plan's one read."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import polars as pl
import pytest
from sqlalchemy import event

from shopsync.store import Store, ledger, redemptions
from shopsync.store.read import read_shop
from shopsync.testing.generator import generate_shop


def _entry(shop_id: int, customer: str, order: str | None, key: str) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "customer_id": customer,
        "source_key": key,
        "kind": "adjust",
        "pending": 0,
        "approved": -10,
        "effective_at": 1,
        "recorded_at": 1,
        "order_id": order,
        "reason": "test",
        "detail": {},
    }


def test_moved_generations_count_exactly_the_moved_keys(store: Store) -> None:
    shop = store.shop_id("shopify", "acme")
    other = store.shop_id("shopify", "other")
    rows = [
        _entry(shop, "c1", "o1", "adjust:moved:c1:o1:100"),
        _entry(shop, "c1", "o1", "adjust:moved:c1:o1:200"),
        _entry(shop, "c_%", "o%_", "adjust:moved:c_%:o%_:100"),  # wildcards in the ids
        _entry(shop, "c2", "o2", "adjust:moved;c2:o2:100"),  # just past the prefix
        _entry(shop, "c2", "o2", "adjust:movedx:c2:o2"),
        _entry(shop, "c2", "o2", "adjust:moved"),
        _entry(shop, "c2", "o2", "ADJUST:MOVED:c2:o2:100"),  # the writer never writes this
        _entry(shop, "c3", None, "adjust:moved:c3:-:100"),  # no order: not a generation
        _entry(shop, "c4", "o4", "earn:c4:o4"),
        _entry(other, "c1", "o1", "adjust:moved:c1:o1:300"),
    ]
    with store.transaction() as conn:
        ledger.add_entries(conn, rows)
    with store.engine.connect() as conn:
        found = redemptions.moved_generations(conn, shop)
    assert found == {("c1", "o1"): 2, ("c_%", "o%_"): 1}
    with store.engine.connect() as conn:  # one customer's (a one-customer plan's read)
        assert redemptions.moved_generations(conn, shop, "c1") == {("c1", "o1"): 2}
        assert redemptions.moved_generations(conn, shop, "c_") == {}
        assert redemptions.moved_generations(conn, shop, "c4") == {}


def test_moved_generations_search_the_source_key_index_on_sqlite(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        shop = store.shop_id("shopify", "acme")
        with store.engine.connect() as conn:
            statement = redemptions.moved_generations_query(shop, "sqlite")
            compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
            plan = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            one = redemptions.moved_generations_query(shop, "sqlite", "c1")
            compiled = one.compile(conn, compile_kwargs={"literal_binds": True})
            mine = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    finally:
        store.close()
    assert any(
        step.startswith("SEARCH loyalty_ledger USING INDEX")
        and "source_key>? AND source_key<?" in step
        for step in plan
    ), plan
    # one customer's: their entries alone, not every moved entry of the shop
    assert any(
        step.startswith("SEARCH loyalty_ledger USING INDEX") and "customer_id=?" in step
        for step in mine
    ), mine


def test_a_shop_read_carries_the_loyalty_columns_asked_for(store: Store) -> None:
    """The whole shop (the order facts) and one customer (selects) carry the same columns."""
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    state = generate_shop(platform="shopify", shop="acme", seed=3, customers=8, orders=40, end=end)
    store.upsert([*state.customers.values(), *state.orders.values()])
    shop = store.shop_id("shopify", "acme")
    at = int(end.timestamp() * 1_000_000)
    asked = {"orders": ["total_tax", "subtotal"], "refunds": ["id"]}
    whole = read_shop(store, shop, at, columns=asked)
    plain = read_shop(store, shop, at)
    assert whole.orders.columns == [*plain.orders.columns, "total_tax", "subtotal"]
    assert whole.refunds.columns == [*plain.refunds.columns, "id"]
    assert whole.orders.drop("total_tax", "subtotal").equals(plain.orders)
    customer = str(whole.orders["customer_id"][0])
    one = read_shop(store, shop, at, customer_id=customer, columns=asked)
    assert one.orders.columns == whole.orders.columns
    mine = whole.orders.filter(pl.col("customer_id") == customer).sort("id")
    assert one.orders.sort("id").equals(mine)
    with pytest.raises(ValueError, match="no such columns"):
        read_shop(store, shop, at, columns={"orders": ["email"]})
    with pytest.raises(ValueError, match="no such columns"):
        read_shop(store, shop, at, columns={"refunds": ["amount", "note"]})


def test_earned_points_are_each_orders_current_earn_read_whole_or_by_customer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One row per customer and order, its points: earns only, this shop only; of an order
    reversed n times (it left its customer), the newest earn if it has more than n."""
    shop = store.shop_id("shopify", "acme")
    other = store.shop_id("shopify", "other")

    def earn(shop_id: int, customer: str, order: str, key: str, points: int) -> dict[str, Any]:
        return _entry(shop_id, customer, order, key) | {
            "kind": "earn",
            "pending": points,
            "approved": 0,
        }

    rows = [
        earn(shop, "c1", "o1", "earn:c1:o1", 500),
        earn(shop, "c1", "o2", "earn:c1:o2", 70) | {"pending": 0, "approved": 70},
        _entry(shop, "c1", "o1", "approve:c1:o1") | {"kind": "approve", "pending": -500},
        earn(shop, "c2", "o3", "earn:c2:o3", 40),  # reversed, back, earned again: 90 counts
        _entry(shop, "c2", "o3", "adjust:moved:c2:o3:100"),
        earn(shop, "c2", "o3", "earn:c2:o3:g1", 90),
        earn(shop, "c3", "o4", "earn:c3:o4", 30),  # reversed and not earned again: none
        _entry(shop, "c3", "o4", "adjust:moved:c3:o4:100"),
        earn(other, "c1", "o9", "earn:c1:o9", 999),
    ]
    with store.transaction() as conn:
        ledger.add_entries(conn, rows)
    expected = {("c1", "o1", 500, True), ("c1", "o2", 70, False), ("c2", "o3", 90, True)}
    assert set(ledger.earned_points(store, shop).iter_rows()) == expected
    some = {("c1", "o1", 500, True), ("c1", "o2", 70, False)}
    assert set(ledger.earned_points(store, shop, ["c1", "c3"]).iter_rows()) == some
    monkeypatch.setattr(ledger, "_FEW", 0)  # more than a few, most of the shop: a whole read
    assert set(ledger.earned_points(store, shop, ["c1", "c3"]).iter_rows()) == some
    monkeypatch.setattr(ledger, "_SHARE", 0)  # ... a small share of it: joined to the ids
    assert set(ledger.earned_points(store, shop, ["c1", "c3"]).iter_rows()) == some
    assert ledger.earned_points(store, shop).columns == [
        "customer_id",
        "order_id",
        "points",
        "pending",
    ]
    frames, _ = ledger.customer_history(store, shop, "c2", with_lines=False)
    assert frames["earned"].rows() == [("c2", "o3", 90, True)]


@pytest.mark.parametrize("share", [None, 0], ids=["filtered", "joined"])
def test_an_order_earned_twice_keeps_its_newest_earn_in_a_read_of_many(
    store: Store, monkeypatch: pytest.MonkeyPatch, share: int | None
) -> None:
    """Read in columns (many customers, no order moved: the entries' ids are not read), an
    order earned twice under two keys is read again with them: its newest earn counts, once,
    in the shop's read and in the customers' (filtered from the shop's, or joined)."""
    monkeypatch.setattr(ledger, "_FEW", 0)
    if share is not None:
        monkeypatch.setattr(ledger, "_SHARE", share)
    shop = store.shop_id("shopify", "acme")
    earn = {"kind": "earn", "approved": 0}
    with store.transaction() as conn:
        ledger.add_entries(
            conn,
            [
                _entry(shop, "c1", "o1", "earn:c1:o1") | earn | {"pending": 500},
                _entry(shop, "c1", "o2", "earn:c1:o2") | earn | {"pending": 70},
                _entry(shop, "c2", "o3", "earn:c2:o3") | earn | {"pending": 40},
            ],
        )
    once = [("c1", "o1", 500, True), ("c1", "o2", 70, True), ("c2", "o3", 40, True)]
    assert sorted(ledger.earned_points(store, shop, ["c1", "c2"]).rows()) == once
    again = _entry(shop, "c1", "o1", "earn:c1:o1:again") | earn | {"pending": 0, "approved": 90}
    with store.transaction() as conn:
        ledger.add_entries(conn, [again])
    newest = [("c1", "o1", 90, False), *once[1:]]
    assert sorted(ledger.earned_points(store, shop, ["c1", "c2"]).rows()) == newest
    assert sorted(ledger.earned_points(store, shop).rows()) == newest
    assert ledger.earned_points(store, shop, ["c1"]).columns == [
        "customer_id",
        "order_id",
        "points",
        "pending",
    ]


def test_a_share_of_the_shops_customers_is_counted_up_to_its_bound(store: Store) -> None:
    """The earns of at most one in ``_SHARE`` of the shop's customers are joined to their
    ids: its customers counted up to that bound (the bound itself included), another
    shop's never."""
    for shop, customers in (("acme", 6), ("other", 10)):
        state = generate_shop(platform="shopify", shop=shop, seed=3, customers=customers, orders=0)
        store.upsert(list(state.customers.values()))
    shop_id = store.shop_id("shopify", "acme")
    assert ledger._SHARE == 2
    assert ledger._share(store, shop_id, 3)  # 6 of 6
    assert not ledger._share(store, shop_id, 4)  # 8 of 6
    assert not ledger._share(store, store.shop_id("shopify", "other"), 6)  # 12 of 10


def test_earned_since_sees_this_shops_newer_earns_through_the_primary_key(
    store: Store,
) -> None:
    """An earn or an adjustment (a moved order's reversal) of this shop newer than the id read
    counts; one of another shop, another kind or older does not. On SQLite the query walks
    the primary key from the id read (the few newer entries), not the shop's index (all its
    entries)."""
    shop = store.shop_id("shopify", "acme")
    other = store.shop_id("shopify", "other")
    earn = {"kind": "earn", "pending": 5, "approved": 0}
    with store.transaction() as conn:
        ledger.add_entries(conn, [_entry(shop, "c1", "o1", "earn:c1:o1") | earn])
    seen = ledger.newest_entry(store)
    with store.transaction() as conn:
        ledger.add_entries(
            conn,
            [
                _entry(other, "c1", "o1", "earn:c1:o1") | earn,
                _entry(shop, "c1", "o1", "approve:c1:o1") | {"kind": "approve"},
            ],
        )
    statements: list[tuple[str, Any]] = []

    def seen_sql(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", seen_sql)
    try:
        with store.engine.connect() as conn:
            assert not ledger.earned_since(conn, shop, seen)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen_sql)
    with store.transaction() as conn:
        ledger.add_entries(conn, [_entry(shop, "c2", "o2", "adjust:moved:c2:o2:1")])
    with store.engine.connect() as conn:
        assert ledger.earned_since(conn, shop, seen)
    with store.transaction() as conn:
        ledger.add_entries(conn, [_entry(shop, "c2", "o2", "earn:c2:o2") | earn])
    with store.engine.connect() as conn:
        assert ledger.earned_since(conn, shop, ledger.newest_entry(store) - 1)
        assert not ledger.earned_since(conn, shop, ledger.newest_entry(store))
        if store.engine.dialect.name == "sqlite":
            sql, params = statements[-1]
            plan = [str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert any("USING INTEGER PRIMARY KEY (rowid>?)" in step for step in plan), plan


def _newest_by_group(found: pl.DataFrame) -> pl.DataFrame:
    """:func:`ledger._current_earns` without moved orders, written the plain way."""
    return (
        found.group_by(["customer_id", "order_id"], maintain_order=True)
        .agg(
            pl.col("points").sort_by("id").last(),
            (pl.col("pending").sort_by("id").last() > 0).alias("pending"),
        )
        .select("customer_id", "order_id", "points", "pending")
    )


@pytest.mark.parametrize("few", [ledger._FEW_EARNS, -1], ids=["python", "query"])
@pytest.mark.parametrize("seed", range(6))
def test_each_orders_newest_earn_is_the_grouped_one_with_or_without_repeats(
    seed: int, few: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most orders earned once (no group needed); an order earned twice keeps its newest
    earn: the same rows, in the same order, as the plain grouping (a customer's few rows
    walked in Python, or the query)."""
    monkeypatch.setattr(ledger, "_FEW_EARNS", few)
    rng = random.Random(seed)
    orders = [(f"c{rng.randint(0, 3)}", f"o{n}") for n in range(12)]
    picks = orders if seed % 2 else orders + rng.choices(orders, k=4)
    ids = rng.sample(range(100), len(picks))
    rows = [
        (c, o, rng.randint(0, 50), rng.choice([0, 5]), i)
        for (c, o), i in zip(picks, ids, strict=True)
    ]
    found = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            "order_id": pl.String,
            "points": pl.Int64,
            "pending": pl.Int64,
            "id": pl.Int64,
        },
        orient="row",
    )
    assert ledger._current_earns(found, {}).equals(_newest_by_group(found))


@pytest.mark.parametrize("chunk", [1, 3, 25_000])
def test_earns_of_many_customers_are_read_by_their_ids_whatever_the_ids_hold(
    store: Store, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """The join to a table of the ids (a share of a large shop's customers) reads exactly
    theirs, ids with quotes, separators or line breaks included, each once, in any chunks."""
    from shopsync.store import _columnar

    monkeypatch.setattr(_columnar, "_AMONG_VALUES", chunk)
    monkeypatch.setattr(ledger, "_FEW", 0)
    monkeypatch.setattr(ledger, "_SHARE", 0)
    shop = store.shop_id("shopify", "acme")
    other = store.shop_id("shopify", "other")
    odd = ["c'1", 'c"2', "c,3", "c\x1f4", "c\n5", "c\x1e6", "c 8", "ü9"]
    rows = [
        _entry(sid, c, f"o{n}", f"earn:{n}:{sid}") | {"kind": "earn", "pending": n + 1}
        for n, c in enumerate(odd)
        for sid in (shop, other)
    ]
    with store.transaction() as conn:
        ledger.add_entries(conn, rows)
    whole = ledger.earned_points(store, shop)
    assert whole.height == len(odd)
    for wanted in ([], odd[:1], odd[2:7], [*odd, *odd, "nobody"], ["c'1", "c\n5"]):
        found = ledger.earned_points(store, shop, wanted)
        expected = whole.filter(pl.col("customer_id").is_in(wanted))
        assert sorted(found.rows()) == sorted(expected.rows()), wanted


def test_earns_of_many_customers_are_read_whatever_the_length_of_an_id_asked_for(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A referral's friend id (input data, any length) is among the ids a plan asks the
    earns of: one longer than an index entry can hold (some 2.7 kB on PostgreSQL) matches no
    earn and must not fail the read of the others'."""
    monkeypatch.setattr(ledger, "_FEW", 0)
    monkeypatch.setattr(ledger, "_SHARE", 0)
    shop = store.shop_id("shopify", "acme")
    with store.transaction() as conn:
        ledger.add_entries(conn, [_entry(shop, "c1", "o1", "earn:1") | {"kind": "earn"}])
    noise = "".join(random.Random(7).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=4000))
    found = ledger.earned_points(store, shop, ["c1", noise])
    assert found["customer_id"].to_list() == ["c1"]


def test_earns_read_by_ids_in_two_threads_on_one_in_memory_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An in-memory store is one connection every thread shares: a second thread's read by
    ids, run while the first is between its chunks, neither drops nor fills the first's
    table of ids."""
    from shopsync.store import _columnar

    monkeypatch.setattr(_columnar, "_AMONG_VALUES", 1)
    monkeypatch.setattr(ledger, "_FEW", 0)
    monkeypatch.setattr(ledger, "_SHARE", 0)
    store = Store("sqlite://")
    try:
        shop = store.shop_id("shopify", "acme")
        rows = [_entry(shop, f"c{n}", f"o{n}", f"earn:{n}") | {"kind": "earn"} for n in range(6)]
        with store.transaction() as conn:
            ledger.add_entries(conn, rows)
        parse, other = _columnar._parse_fast, []

        def interleaved(*args: Any) -> Any:
            if not other:  # the first chunk read: the other thread reads all of its own now
                other.append(None)
                thread = threading.Thread(
                    target=lambda: other.append(ledger.earned_points(store, shop, ["c4", "c5"]))
                )
                thread.start()
                thread.join()
            return parse(*args)

        monkeypatch.setattr(_columnar, "_parse_fast", interleaved)
        found = ledger.earned_points(store, shop, ["c0", "c1", "c2"])
    finally:
        store.close()
    assert sorted(found["customer_id"]) == ["c0", "c1", "c2"]
    assert sorted(other[1]["customer_id"]) == ["c4", "c5"]


def test_moved_order_points_are_the_entries_no_order_of_theirs_holds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pairs no order holds found first (SQLite: ``EXCEPT``, then their customers' rows a
    chunk at a time), the rows as joining every entry to its order gives them."""
    from tests.core.test_loyalty_store import T0, P, S, customer, order

    monkeypatch.setattr(ledger, "_CHUNK", 2)
    store.upsert([customer(c) for c in ("c1", "c2", "c3", "c4", "c5")])
    owners = {"o1": "c1", "o2": "c2", "o4": None, "o5": "c4", "o6": "c5", "o7": "c5"}
    store.upsert([order(o, c, T0, "10") for o, c in owners.items()])  # (no o3: deleted)
    shop, other = store.shop_id(P, S), store.shop_id(P, "other")

    def entry(shop_id: int, c: str, o: str | None, key: str, kind: str, points: int) -> Any:
        return dict(_entry(shop_id, c, o, key), kind=kind, pending=points, approved=points // 2)

    rows = [
        entry(shop, "c1", "o1", "earn:c1:o1", "earn", 10),  # still c1's
        entry(shop, "c1", "o2", "earn:c1:o2", "earn", 20),  # now c2's
        entry(shop, "c1", "o2", "approve:c1:o2", "approve", -20),
        entry(shop, "c1", "o2", "adjust:moved:c1:o2:1", "adjust", 4),
        entry(shop, "c1", "o2", "adjust:other:c1:o2", "adjust", 1000),  # not a move: left out
        entry(shop, "c2", "o3", "earn:c2:o3", "earn", 30),  # deleted
        entry(shop, "c3", "o4", "earn:c3:o4", "earn", 40),  # a guest's now
        entry(shop, "c3", "o4", "clawback:c3:o4", "clawback", -8),
        entry(shop, "c3", "o5", "bonus:c3:o5", "bonus", 50),  # a bonus stays
        entry(shop, "c4", None, "earn:c4:-", "earn", 60),  # no order
        entry(shop, "c5", "o6", "earn:c5:o6", "earn", 70),
        entry(shop, "c2", "o7", "earn:c2:o7", "earn", 80),  # c5's
        entry(other, "c1", "o1", "earn:c1:o1", "earn", 90),  # another shop's order o1
    ]
    with store.transaction() as conn:
        ledger.add_entries(conn, rows)
        found = [tuple(r) for r in ledger.moved_order_points(conn, shop)]
        joined = [tuple(r) for r in conn.execute(ledger._moved_joined(shop))]
        elsewhere = [tuple(r) for r in ledger.moved_order_points(conn, other)]
    assert (
        found
        == joined
        == [
            ("c1", "o2", 4, 2, "c2"),
            ("c2", "o3", 30, 15, None),
            ("c2", "o7", 80, 40, "c5"),
            ("c3", "o4", 32, 16, None),
        ]
    )
    assert elsewhere == [("c1", "o1", 90, 45, None)]  # the other shop holds no order o1
