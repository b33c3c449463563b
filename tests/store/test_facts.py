"""The order facts' snapshot (store/facts.py): a whole-shop read through it equals a read of
the database itself, whatever the writes, on both engines.

The oracle (:func:`direct`) is the read model as it was before the snapshot: the same
columns selected from the store's tables with SQL filters, through the columnar reader.
``SHOPSYNC_FACTS_EXAMPLES`` raises the property test's examples (12 by default, for the
suite's time budget; 200 ran clean on both engines).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from shopsync.core.features import RULE_COLUMNS, counts_as_purchase
from shopsync.frames import customer_features
from shopsync.models import (
    Address,
    Customer,
    Fulfillment,
    LineItem,
    Money,
    Order,
    Product,
    Refund,
)
from shopsync.store import Store, facts
from shopsync.store.read import (
    CONSENT_COLUMNS,
    LINE_PRODUCT_TYPE,
    LOYALTY_ORDERS,
    LOYALTY_REFUNDS,
    REAL_ORDERS_SQL,
    Column,
    feature_currency,
    feature_tables,
    loyalty_tables,
    read_shop,
    read_table,
)
from shopsync.store.schema import MONEY_SCALE
from tests import strategies
from tests.test_models import order

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
I64, TEXT = pl.Int64(), pl.String()
PLATFORM = "shopify"
_shops = itertools.count()


def micros(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


# -- the oracle: the read model's SQL of before the snapshot --------------------------------


def _orders_columns(dialect: str) -> list[Column]:
    country = (
        "json_extract(shipping_address, '$.country_code')"
        if dialect == "sqlite"
        else "(shipping_address ->> 'country_code')"
    )
    text = ["financial_status", "fulfillment_status", "currency"]
    return [
        Column("id", TEXT),
        Column("customer_id", TEXT),
        *(Column(n, I64) for n in ("created_at", "paid_at", "processed_at", "cancelled_at")),
        *(Column(n, TEXT) for n in text),
        Column("total", I64),
        Column("ship_country", TEXT, country),
    ]


def direct(store: Store, shop_id: int, at: int) -> dict[str, Any]:
    """What read_shop / feature_tables / loyalty_tables returned when they read SQL."""
    engine = store.engine
    sid = f"shop_id = {shop_id}"
    real = f"{sid} AND customer_id IS NOT NULL AND {REAL_ORDERS_SQL}"
    lines = [
        Column("order_id", TEXT),
        Column("product_id", TEXT),
        Column("sku", TEXT),
        Column("product_type", TEXT, LINE_PRODUCT_TYPE),
        Column("quantity", I64),
        Column("unit_price", I64),
        Column("refunded_quantity", I64),
    ]
    all_orders = read_table(
        engine,
        "orders",
        [Column("created_at", I64), Column("currency", TEXT)],
        f"{sid} AND {REAL_ORDERS_SQL}",
    )
    placed = all_orders.filter(pl.col("created_at") <= at)
    currency = None
    if placed.height:
        top = placed.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
        currency = top.item(0, "currency")
    instants = ("created_at", "paid_at", "processed_at", "cancelled_at", "total")
    feature_orders = [
        Column(n, I64 if n in instants else TEXT)
        for n in (
            "id",
            "customer_id",
            "created_at",
            "paid_at",
            "processed_at",
            "cancelled_at",
            "financial_status",
            "currency",
            "total",
        )
    ]
    return {
        "shop.orders": read_table(
            engine, "orders", _orders_columns(engine.dialect.name), f"{real} AND created_at <= {at}"
        ),
        "shop.refunds": read_table(
            engine,
            "refunds",
            [Column("order_id", TEXT), Column("created_at", I64), Column("amount", I64)],
            sid,
        ),
        "shop.lines": read_table(engine, "line_items", lines, sid),
        "shop.fulfillments": read_table(
            engine,
            "fulfillments",
            [
                Column("order_id", TEXT),
                Column("created_at", I64),
                Column("status", TEXT),
                Column("delivered_at", I64),
            ],
            sid,
        ),
        "shop.future": all_orders.height - placed.height,
        "shop.currency": currency,
        "features.orders": read_table(
            engine, "orders", feature_orders, f"{real} AND created_at <= {at}"
        ).with_columns(pl.col("financial_status", "currency").cast(pl.Categorical)),
        "features.currency": _top(
            read_table(
                engine, "orders", [Column("currency", TEXT)], f"{real} AND created_at <= {at}"
            )
        ),
        "features.refunds": read_table(
            engine,
            "refunds",
            [Column("order_id", TEXT), Column("amount", I64)],
            f"{sid} AND created_at <= {at}",
        ),
        # the few distinct texts as codes (10M orders: 624 MB less than text)
        "features.line_items": read_table(
            engine,
            "line_items",
            [
                Column("order_id", TEXT),
                Column("product_id", TEXT),
                Column("product_type", TEXT, LINE_PRODUCT_TYPE),
            ],
            sid,
        ).with_columns(pl.col("product_id", "product_type").cast(pl.Categorical)),
        "loyalty.orders": read_table(engine, "orders", LOYALTY_ORDERS, real),
        # the purchase rule applied as the snapshot is scanned: its columns never read out
        "purchases.orders": read_table(
            engine, "orders", feature_orders, f"{real} AND created_at <= {at}"
        )
        .filter(counts_as_purchase(at))
        .drop(RULE_COLUMNS)
        .with_columns(pl.col("currency").cast(pl.Categorical)),
        "loyalty.refunds": read_table(engine, "refunds", LOYALTY_REFUNDS, sid),
        "loyalty.line_items": read_table(
            engine,
            "line_items",
            [Column("order_id", TEXT), Column("product_type", TEXT, LINE_PRODUCT_TYPE)],
            sid,
        ),
    }


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _top(orders: pl.DataFrame) -> str | None:
    """The currency most of ``orders`` use (ties: alphabetical)."""
    if not orders.height:
        return None
    top = orders.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
    return str(top.item(0, "currency"))


def through_read_model(store: Store, shop_id: int, at: int) -> dict[str, Any]:
    shop = read_shop(store, shop_id, at)
    features = feature_tables(store, shop_id, at)
    purchases = feature_tables(store, shop_id, at, purchases=True)
    loyalty = loyalty_tables(store, shop_id, with_lines=True)
    assert (
        set(features)
        == set(purchases)
        == {
            "customers",
            "orders",
            "refunds",
            "line_items",
            "consent",
        }
    )
    for name in ("customers", "refunds", "line_items", "consent"):  # in no promised order
        assert_frame_equal(_sorted(purchases[name]), _sorted(features[name]))
    assert features["consent"].columns == [c.name for c in CONSENT_COLUMNS]
    return {
        "shop.orders": shop.orders,
        "shop.refunds": shop.refunds,
        "shop.lines": shop.lines,
        "shop.fulfillments": shop.fulfillments,
        "shop.future": shop.future_orders,
        "shop.currency": shop.currency,
        **{f"features.{k}": features[k] for k in ("orders", "refunds", "line_items")},
        "features.currency": feature_currency(store, shop_id, at),
        **{f"loyalty.{k}": loyalty[k] for k in ("orders", "refunds", "line_items")},
        "purchases.orders": purchases["orders"],
    }


def assert_same_read(store: Store, shop_id: int, at: int) -> None:
    """The read model's frames equal the oracle's: same columns, dtypes and rows (in the same
    order on SQLite, whose reader promised rowid order; as sets on PostgreSQL)."""
    got = through_read_model(store, shop_id, at)
    want = direct(store, shop_id, at)
    assert got.keys() == want.keys()
    for key, expected in want.items():
        actual = got[key]
        if not isinstance(expected, pl.DataFrame):
            assert actual == expected, key
            continue
        assert actual.schema == expected.schema, key
        if store.engine.dialect.name != "sqlite" or key.startswith("purchases."):
            actual, expected = _sorted(actual), _sorted(expected)
        try:
            assert_frame_equal(actual, expected)
        except AssertionError as exc:
            raise AssertionError(f"{key}: {exc}") from None


# -- writes the property test draws ---------------------------------------------------------

ORDER_IDS = ["1", "2", "3", "4", "5"]
CUSTOMERS = ["c1", "c2", None]
PRODUCTS = ["p1", "p2"]


@st.composite
def an_order(draw: st.DrawFn, shop: str) -> Order:
    """A drawn order with few ids, customers and products, so writes meet each other."""
    base = draw(strategies.orders(shop=shop))
    lines = tuple(
        li.model_copy(
            update={
                "product_id": draw(st.sampled_from([*PRODUCTS, None])),
                "product_type": draw(st.sampled_from([None, "", "Tea", "Coffee"])),
            }
        )
        for li in base.line_items
    )
    created = T0 + dt.timedelta(days=draw(st.integers(-30, 30)))
    return base.model_copy(
        update={
            "id": draw(st.sampled_from(ORDER_IDS)),
            "customer_id": draw(st.sampled_from(CUSTOMERS)),
            "created_at": created,
            "updated_at": created + dt.timedelta(minutes=draw(st.integers(0, 5))),
            "test": draw(st.booleans()),
            "line_items": lines,
            "shipping_address": Address(country_code=draw(st.sampled_from(["US", "DE"]))),
        }
    )


def operations(shop: str) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        st.tuples(st.just("upsert"), an_order(shop), st.booleans()),
        st.tuples(st.just("refund"), st.sampled_from(ORDER_IDS), st.integers(1, 500)),
        st.tuples(st.just("fulfil"), st.sampled_from(ORDER_IDS), st.booleans()),
        st.tuples(st.just("delete"), st.sampled_from(ORDER_IDS)),
        st.tuples(st.just("redact"), st.sampled_from(["c1", "c2"])),
        st.tuples(st.just("product"), st.sampled_from(PRODUCTS), st.sampled_from(["", "Soap"])),
        st.tuples(st.just("read"), st.integers(-40, 40), st.booleans()),
    )


def apply(store: Store, shop: str, op: tuple[Any, ...], n: int) -> None:
    """One write as sync or webhook intake makes it (a refund or fulfilment arrives as the
    order with it, a newer ``updated_at``)."""
    kind = op[0]
    if kind == "upsert":
        store.upsert([op[1]], same_stamp=op[2])
    elif kind in ("refund", "fulfil"):
        held = store.get(Order, PLATFORM, shop, op[1])
        if held is None:
            return
        later = held.updated_at + dt.timedelta(minutes=10)
        if kind == "refund":
            extra = Refund(
                id=f"r{n}",
                created_at=later,
                amount=Money.of(op[2], held.currency),
            )
            refunds = (*held.refunds, extra)
            changed = held.model_copy(update={"refunds": refunds, "updated_at": later})
        else:
            extra_f = Fulfillment(
                id=f"f{n}",
                created_at=later,
                status="success",
                delivered_at=later if op[2] else None,
            )
            changed = held.model_copy(
                update={"fulfillments": (*held.fulfillments, extra_f), "updated_at": later}
            )
        store.upsert([changed], same_stamp=False)
    elif kind == "delete":
        store.delete(Order, PLATFORM, shop, op[1])
    elif kind == "redact":
        store.redact_customer(PLATFORM, shop, op[1])
    elif kind == "product":
        product = Product(
            platform=PLATFORM,
            shop=shop,
            id=op[1],
            title="t",
            product_type=op[2],
            created_at=T0,
            updated_at=T0 + dt.timedelta(seconds=n),
        )
        store.upsert([product])


@pytest.fixture
def snapshot_always(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Snapshots for every shop, however small (by default only large shops get files), in
    the test's directory (a PostgreSQL store's default is the user's cache directory)."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store.facts_dir = tmp_path / "facts"
    yield


@settings(max_examples=int(os.environ.get("SHOPSYNC_FACTS_EXAMPLES", "12")))
@given(data=st.data())
def test_snapshot_read_equals_a_database_read(
    store: Store, snapshot_always: None, data: st.DataObject
) -> None:
    shop = f"s{next(_shops)}.myshopify.com"
    ops = data.draw(st.lists(operations(shop), min_size=1, max_size=10))
    # a second Store on the same database and cache: another process's reads and writes
    url = store.engine.url.render_as_string(hide_password=False)
    other = Store(url, migrate=False, facts_dir=store.facts_dir)
    rewrite = data.draw(st.sampled_from([0, 10_000]))
    old = facts._REWRITE_MIN
    facts._REWRITE_MIN = rewrite  # 0: every read with a delta rewrites the snapshot
    try:
        for n, op in enumerate([*ops, ("read", 0, False)]):
            if op[0] == "read":
                reader = other if op[2] else store
                shop_id = reader.shop_id(PLATFORM, shop, create=False)
                assert_same_read(reader, shop_id, micros(T0 + dt.timedelta(days=op[1])))
            else:
                apply(other if n % 3 == 2 else store, shop, op, n)
    finally:
        facts._REWRITE_MIN = old
        other.close()


def test_money_stays_integer_units(store: Store, snapshot_always: None) -> None:
    store.upsert([order(customer_id="c1")])
    shop_id = store.shop_id(PLATFORM, "acme.myshopify.com")
    frame = read_shop(store, shop_id, micros(T0)).orders
    assert frame["total"].dtype == pl.Int64()
    assert frame["total"].to_list() == [10 * 10**MONEY_SCALE]


def test_a_projected_read_holds_the_columns_asked_for(store: Store, snapshot_always: None) -> None:
    """Only the columns asked for (with the order key and ``_row``), a table left out is
    empty, and a delta after the snapshot is merged in the same shape."""
    store.upsert([order(id="1", customer_id="c1")])
    shop_id = store.shop_id(PLATFORM, "acme.myshopify.com")
    facts.order_facts(store, shop_id)  # writes the snapshot
    store.upsert([order(id="2", customer_id="c2")])  # a delta
    full = facts.order_facts(store, shop_id)
    got = facts.order_facts(store, shop_id, {"orders": ["total"], "lines": ["sku"]})
    assert got.orders.columns == ["id", "total", "_row"]
    assert got.lines.columns == ["order_id", "sku", "_row"]
    assert got.refunds.height == got.fulfillments.height == 0
    assert_frame_equal(got.orders, full.orders.select(got.orders.columns))
    assert_frame_equal(got.lines, full.lines.select(got.lines.columns))
    assert got.orders["id"].sort().to_list() == ["1", "2"]


def test_an_unordered_read_has_no_row_column(store: Store, snapshot_always: None) -> None:
    """``ordered=False``: the rows without ``_row`` (no order promised), from the snapshot,
    its delta (an order redacted in place: an ordered read sorts the merge on ``_row``) and a
    rebuild, as the ordered read holds them."""
    store.upsert([order(id=str(n), customer_id=f"c{n}") for n in range(1, 4)])
    shop_id = store.shop_id(PLATFORM, "acme.myshopify.com")
    facts.order_facts(store, shop_id)  # writes the snapshot
    store.upsert([order(id="4", customer_id="c4")])
    store.redact_customer(PLATFORM, "acme.myshopify.com", "c1")
    columns = {"orders": ["customer_id", "total"], "lines": ["sku"]}
    where = pl.col("total") > 0
    for rewrite in (10_000, 0):  # 0: the delta rewrites the snapshot
        old, facts._REWRITE_MIN = facts._REWRITE_MIN, rewrite
        try:
            ordered = facts.order_facts(store, shop_id, columns, where=where)
            got = facts.order_facts(store, shop_id, columns, where=where, ordered=False)
        finally:
            facts._REWRITE_MIN = old
        for name in ("orders", "lines"):
            assert "_row" not in got.frame(name).columns
            want = ordered.frame(name).drop("_row")
            assert_frame_equal(_sorted(got.frame(name)), _sorted(want))
        assert got.orders.height == 4


def test_an_empty_text_reads_as_null_whichever_form_the_bulk_read_takes(store: Store) -> None:
    """SQLite's bulk read falls back to quoted CSV when a value holds its separators; the
    fallback gives an empty text as the fast form does (null), or the frames of one read
    would depend on another row's text (hypothesis found it: a SKU holding U+001F)."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the delimited form is SQLite's")
    from sqlalchemy import text

    from shopsync.store._columnar import Column, read_table

    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE odd (a TEXT, b TEXT)"))
        conn.execute(text("INSERT INTO odd VALUES ('', 'x'), (NULL, 'y')"))
    columns = [Column("a", pl.String()), Column("b", pl.String())]
    fast = read_table(store.engine, "odd", columns, "1 = 1")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO odd VALUES ('', 'split\x1fhere')"))
    quoted = read_table(store.engine, "odd", columns, "1 = 1")
    assert fast["a"].to_list() == [None, None]
    assert quoted["a"].to_list() == [None, None, None]
    assert quoted["b"].to_list() == ["x", "y", "split\x1fhere"]


def test_a_filtered_read_holds_the_orders_kept(store: Store, snapshot_always: None) -> None:
    """A row filter on the orders holds what filtering the whole read holds: rows of the
    snapshot that no longer pass it (changed since) go, changed rows that pass come in, and
    the filter's columns need not be among those asked for."""
    store.upsert([order(id=str(n), customer_id=f"c{n}") for n in range(1, 5)])
    shop_id = store.shop_id(PLATFORM, "acme.myshopify.com")
    facts.order_facts(store, shop_id)  # writes the snapshot
    store.upsert(
        [
            order(id="2", customer_id=None, updated_at=T0 + dt.timedelta(days=1)),  # leaves
            order(id="5", customer_id="c5"),  # a delta row that passes
            order(id="6", customer_id=None),  # and one that does not
        ]
    )
    where = pl.col("customer_id").is_not_null()
    full = facts.order_facts(store, shop_id)
    got = facts.order_facts(store, shop_id, {"orders": ["total"]}, where=where)
    assert got.orders.columns == ["id", "total", "_row"]
    assert_frame_equal(got.orders, full.orders.filter(where).select(got.orders.columns))
    assert sorted(got.orders["id"].to_list()) == ["1", "3", "4", "5"]
    assert_frame_equal(got.lines, full.lines.clear())


def _line() -> LineItem:
    usd = Money.of(5, "USD")
    return LineItem(id="l1", title="Mug", quantity=1, unit_price=usd, total=usd, product_id="p1")


def test_features_texts_of_two_reads_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The features' coded texts of two shops concatenate, join and compare to text whichever
    polars the bounds allow. On polars 1.31 categoricals cast apart did not mix: a shop whose
    snapshot holds no order the read keeps (guests only) merged its delta with a
    StringCacheMismatchError."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", facts_dir=tmp_path / "facts")
    try:
        frames = []
        for shop, customer in (("a.myshopify.com", None), ("b.myshopify.com", "c1")):
            store.upsert([order(shop=shop, id="1", customer_id=customer, line_items=(_line(),))])
            shop_id = store.shop_id(PLATFORM, shop)
            feature_tables(store, shop_id, micros(T0))  # writes the snapshot
            # a delta to merge
            store.upsert([order(shop=shop, id="2", customer_id=customer, line_items=(_line(),))])
            frames.append(feature_tables(store, shop_id, micros(T0)))
        for name, key, rows in (("orders", "currency", 2), ("line_items", "product_id", 4)):
            both = pl.concat([f[name] for f in frames])
            assert both.height == rows
            assert frames[1][name].join(both, on=key).height == rows * frames[1][name].height
        orders = pl.concat([f["orders"] for f in frames])
        assert orders.filter(pl.col("currency") == "USD").height == 2
        assert orders.filter(pl.col("currency").is_in(["USD"])).height == 2
        assert orders["currency"].to_list() == ["USD", "USD"]
    finally:
        store.close()


def test_features_through_the_snapshot_equal_a_cold_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """customer_features from a snapshot and its delta equal those of a store without one
    (its lines' types from the catalogue): on polars 1.31 the codes' cast to enums failed."""
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    warm, cold = Store(url, facts_dir=tmp_path / "facts"), Store(url, facts_dir=None)
    shop = "a.myshopify.com"
    try:
        warm.upsert([Customer(platform=PLATFORM, shop=shop, id="c1", created_at=T0, updated_at=T0)])
        warm.upsert([order(shop=shop, id="1", customer_id="c1", line_items=(_line(),))])
        customer_features(warm, PLATFORM, shop, T0)  # writes the snapshot
        warm.upsert([order(shop=shop, id="2", customer_id="c1", line_items=(_line(),))])
        got = customer_features(warm, PLATFORM, shop, T0)
        assert_frame_equal(got, customer_features(cold, PLATFORM, shop, T0), check_exact=True)
        assert got["products"].to_list() == [["p1"]]
    finally:
        warm.close()
        cold.close()
