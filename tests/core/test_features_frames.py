"""The features' integer keys on hand-built frames: the hashed text join is exact under any
hash, and the coded product lists keep the texts' order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from shopsync.core.features import (
    FEATURE_SCHEMA,
    RULE_COLUMNS,
    _matches,
    compute_features,
    counts_as_purchase,
    shop_currency,
)
from tests.core.features_oracle import old_compute_features

Hash = Callable[[str], pl.Expr]

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
AT = 1_735_689_600_000_000
DAY = 86_400_000_000


def _length(column: str) -> pl.Expr:
    """A hash that collides on purpose: every text of one length has one value."""
    return pl.col(column).str.len_bytes().cast(pl.UInt64)


def _text_join(left: list[str | None], right: list[str]) -> list[tuple[int, int]]:
    frame = (
        pl.DataFrame({"text": left}, schema={"text": pl.String})
        .with_row_index("left_row")
        .join(
            pl.DataFrame({"text": right}, schema={"text": pl.String}).with_row_index("right_row"),
            on="text",
        )
    )
    return sorted(frame.select("left_row", "right_row").iter_rows())


def _pairs(
    left: list[str | None], right: list[str], hashed: Hash | None, chunk: int | None = None
) -> list[tuple[int, int]]:
    more = {} if chunk is None else {"chunk": chunk}
    found = _matches(
        pl.Series(left, dtype=pl.String), pl.Series(right, dtype=pl.String), hashed=hashed, **more
    )
    return sorted(found.iter_rows())


@pytest.mark.parametrize("hashed", [None, _length])
def test_a_colliding_hash_never_matches_another_text(hashed: Hash | None) -> None:
    left = ["a", "b", "bb", "cc", "ddd", None, "a"]
    assert _pairs(left, ["a", "bb"], hashed) == [(0, 0), (2, 1), (6, 0)]


@settings(max_examples=60, deadline=None)
@given(
    right=st.lists(st.text("ab", max_size=3), unique=True, max_size=8),
    left=st.lists(st.none() | st.text("abc", max_size=3), max_size=20),
)
def test_hashed_matches_equal_the_text_join(left: list[str | None], right: list[str]) -> None:
    for hashed in (None, _length):
        assert _pairs(left, right, hashed) == _text_join(left, right)
        # the texts compared a few pairs at a time (a smaller peak than all pairs at once)
        assert _pairs(left, right, hashed, chunk=3) == _text_join(left, right)


def _frames(lines: list[tuple[str, str | None, str | None]]) -> dict[str, pl.DataFrame]:
    return {
        "customers": pl.DataFrame(
            {"id": ["c2", "c10", "c1"], "created_at": [0, 0, 0], "birthday": [None, None, None]},
            schema_overrides={"birthday": pl.String},
        ),
        "orders": pl.DataFrame(
            {
                "id": ["o1", "o2", "o3", "o4"],
                "customer_id": ["c1", "c1", "c10", "gone"],
                "created_at": [AT - 30 * DAY, AT - 10 * DAY, AT - 5 * DAY, AT - DAY],
                "paid_at": [AT - 30 * DAY, AT - 10 * DAY, AT - 5 * DAY, AT - DAY],
                "processed_at": [None, None, None, None],
                "cancelled_at": [None, None, None, None],
                "financial_status": ["paid"] * 4,
                "currency": ["USD"] * 4,
                "total": [1000, 2000, 3000, 4000],
            },
            schema_overrides={"processed_at": pl.Int64, "cancelled_at": pl.Int64},
        ),
        "refunds": pl.DataFrame(schema={"order_id": pl.String, "amount": pl.Int64}),
        "line_items": pl.DataFrame(
            lines,
            schema={"order_id": pl.String, "product_id": pl.String, "product_type": pl.String},
            orient="row",
        ),
        "consent": pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "channel": pl.String,
                "observed_at": pl.Int64,
                "state": pl.String,
            }
        ),
    }


def test_products_and_categories_on_hand_built_frames() -> None:
    frame = compute_features(
        _frames(
            [
                ("o2", "p10", "Tea"),
                ("o1", "p9", "Coffee"),
                ("o1", "p10", ""),
                ("o3", "", "Tea"),  # PostgreSQL keeps an empty product id: a value like others
                ("o3", None, None),
                ("o4", "p1", "Gone"),  # the order of a customer the store no longer has
                ("o9", "p2", "Unknown order"),
            ]
        ),
        AS_OF,
    )
    assert frame["customer_id"].to_list() == ["c1", "c10", "c2"]
    assert frame["products"].to_list() == [["p10", "p9"], [""], []]
    assert frame["categories"].to_list() == [["Coffee", "Tea"], ["Tea"], []]
    assert frame["paid_orders"].to_list() == [2, 1, 0]
    assert frame["gap_median_days"].to_list() == [20.0, None, None]


def test_a_shop_without_lines() -> None:
    frame = compute_features(_frames([]), AS_OF)
    assert frame["products"].to_list() == [[], [], []]
    assert frame["categories"].to_list() == [[], [], []]


# -- the integer keys against the text keys they replaced (tests/core/features_oracle.py) ----

_IDS = ["c1", "c10", "c2", "C1", "", " ", "é", "e\u0301", "ß", "😀", "a\x00b", "c1 "]
_TEXTS = [None, "", "p1", "p10", "p9", "Tea", "tea", "é", "😀", " ", "a,b", "\n"]
_INSTANTS = [None, AT - 400 * DAY, AT - 30 * DAY, AT - DAY, AT, AT + DAY]
_STATUSES = ["paid", "pending", "refunded", "partially_paid", "voided"]


@st.composite
def _shop(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    """Hand-built frames as feature_tables gives them (String, Int64), any rows at all."""
    ids = st.sampled_from(_IDS)
    orders = draw(st.integers(0, 12))
    order_ids = [f"o{i}" for i in range(orders)] + ["o-unknown"]
    instant = st.sampled_from(_INSTANTS)
    customers = draw(st.lists(st.tuples(ids, st.sampled_from(_INSTANTS[1:])), max_size=8))
    # mostly the customers' own orders, paid, in one currency: the features need them
    known = [c for c, _ in customers]
    made = draw(
        st.lists(
            st.tuples(
                st.sampled_from([*known, *known, *known, "gone", None, "c1"]),
                st.sampled_from(_INSTANTS[1:]),
                st.sampled_from([AT - 30 * DAY, AT - DAY, AT, *_INSTANTS]),
                instant,
                st.sampled_from([None, None, None, AT - DAY, AT + DAY]),
                st.sampled_from(_STATUSES),
                st.sampled_from(["USD", "USD", "USD", "EUR", "JPY"]),
                st.sampled_from([1000, 2500, 4000, 1, 0, -100]),
            ),
            min_size=orders,
            max_size=orders,
        )
    )
    order_schema = {
        "id": pl.String,
        "customer_id": pl.String,
        "created_at": pl.Int64,
        "paid_at": pl.Int64,
        "processed_at": pl.Int64,
        "cancelled_at": pl.Int64,
        "financial_status": pl.String,
        "currency": pl.String,
        "total": pl.Int64,
    }
    of_order = st.sampled_from(order_ids)
    refunds = draw(st.lists(st.tuples(of_order, st.integers(0, 9000)), max_size=6))
    lines = draw(
        st.lists(st.tuples(of_order, st.sampled_from(_TEXTS), st.sampled_from(_TEXTS)), max_size=20)
    )
    consent = draw(
        st.lists(
            st.tuples(
                ids | st.just("gone"),
                st.sampled_from(["email", "sms", "push"]),
                st.sampled_from(_INSTANTS[1:4]),
                st.sampled_from(["subscribed", "unsubscribed", "pending"]),
            ),
            max_size=8,
        )
    )
    return {
        "customers": pl.DataFrame(
            [(c, at, draw(st.sampled_from([None, "1990-02-03", "bad"]))) for c, at in customers],
            schema={"id": pl.String, "created_at": pl.Int64, "birthday": pl.String},
            orient="row",
        ),
        "orders": pl.DataFrame(
            # o-unknown has no order: only lines and refunds name it
            [(o, *row) for o, row in zip(order_ids, made, strict=False)],
            schema=order_schema,
            orient="row",
        ),
        "refunds": pl.DataFrame(
            refunds, schema={"order_id": pl.String, "amount": pl.Int64}, orient="row"
        ),
        "line_items": pl.DataFrame(
            lines,
            schema={"order_id": pl.String, "product_id": pl.String, "product_type": pl.String},
            orient="row",
        ),
        "consent": pl.DataFrame(
            consent,
            schema={
                "customer_id": pl.String,
                "channel": pl.String,
                "observed_at": pl.Int64,
                "state": pl.String,
            },
            orient="row",
        ),
    }


def _chunked(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in two chunks, as the snapshot's merge (``pl.concat(rechunk=False)``) gives it."""
    half = frame.height // 2
    return pl.concat([frame.head(half), frame.tail(frame.height - half)], rechunk=False)


@settings(max_examples=150, deadline=None)
@given(
    frames=_shop(),
    currency=st.sampled_from([None, "USD", "XXX"]),
    chunked=st.booleans(),
    consume=st.booleans(),
    coded=st.booleans(),
    purchases=st.booleans(),
)
def test_integer_keys_give_the_text_keys_frame(
    frames: dict[str, pl.DataFrame],
    currency: str | None,
    chunked: bool,
    consume: bool,
    coded: bool,
    purchases: bool,
) -> None:
    if chunked:
        frames = {name: _chunked(frame) for name, frame in frames.items()}
    # cast: polars 1.31's in-memory engine types an empty frame's money Decimal(None, 8)
    expected = old_compute_features(frames, AS_OF, currency=currency).cast(FEATURE_SCHEMA)
    if coded:  # the few distinct texts as codes, as feature_tables reads them
        for name, texts in (
            ("line_items", ["product_id", "product_type"]),
            ("orders", ["financial_status", "currency"]),
        ):
            frames[name] = frames[name].with_columns(pl.col(texts).cast(pl.Categorical))
    if purchases:  # the rule applied by the read (feature_tables(purchases=True))
        currency = currency or shop_currency(frames["orders"]) or ""
        frames["orders"] = frames["orders"].filter(counts_as_purchase(AT)).drop(RULE_COLUMNS)
    given = dict(frames)
    frame = compute_features(given, AS_OF, currency=currency, consume=consume, purchases=purchases)
    assert_frame_equal(frame, expected, check_exact=True)
    # consume: each input leaves the dict once read, so its memory can go before the end
    assert list(given) == ([] if consume else list(frames))


def test_purchases_need_the_currency() -> None:
    """Read as purchases, the orders no longer say which currency most orders use."""
    frames = _frames([])
    frames["orders"] = frames["orders"].drop(RULE_COLUMNS)
    with pytest.raises(ValueError, match="currency"):
        compute_features(frames, AS_OF, purchases=True)


def test_consent_states_at_one_instant_as_the_text_keys_picked_them() -> None:
    """Two states of one channel at one instant (``consent_updated_at`` is the instant when
    the platform gives one, so two observations can share it): the pick among them was the
    text keys' sort's, and the frame must not change with the keys; 31 rows is where the
    sort's pick first differs from the rows' order (Polars 2.1)."""
    rows = [
        (["c0", "c10", "c2"][i % 3], "email", AT - DAY, ["subscribed", "unsubscribed"][i // 3 % 2])
        for i in range(31)
    ]
    frames = _frames([])
    frames["consent"] = pl.DataFrame(rows, schema=frames["consent"].schema, orient="row")
    expected = old_compute_features(frames, AS_OF)
    assert_frame_equal(compute_features(frames, AS_OF), expected, check_exact=True)


@pytest.mark.parametrize("coded", [False, True])
def test_an_empty_shop_has_the_feature_schema(coded: bool) -> None:
    """No customer, order or line: the frame still has :data:`FEATURE_SCHEMA` (on polars 1.31
    the in-memory engine typed the money columns Decimal(None, 8))."""
    frames = {name: frame.clear() for name, frame in _frames([("o1", "p1", "Tea")]).items()}
    if coded:
        frames["line_items"] = frames["line_items"].with_columns(
            pl.col("product_id", "product_type").cast(pl.Categorical)
        )
    frame = compute_features(frames, AS_OF, consume=True)
    assert frame.schema == pl.Schema(FEATURE_SCHEMA)
    assert frame.height == 0


def test_codes_give_the_texts_frame() -> None:
    """Orders' and lines' texts as codes give the frame their texts give (on polars 1.31 the
    streamed joins of coded orders failed: "join received different key types")."""
    frames = _frames([("o1", "p1", "Tea"), ("o3", "p2", None)])
    coded = dict(frames)
    coded["orders"] = frames["orders"].with_columns(
        pl.col("financial_status", "currency").cast(pl.Categorical)
    )
    coded["line_items"] = frames["line_items"].with_columns(
        pl.col("product_id", "product_type").cast(pl.Categorical)
    )
    expected = compute_features(frames, AS_OF)
    assert_frame_equal(compute_features(coded, AS_OF), expected, check_exact=True)
    assert expected["products"].to_list() == [["p1"], ["p2"], []]
