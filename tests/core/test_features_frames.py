"""The features' integer keys on hand-built frames: the hashed text join is exact under any
hash, and the coded product lists keep the texts' order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core.features import _matches, compute_features

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


def _pairs(left: list[str | None], right: list[str], hashed: Hash | None) -> list[tuple[int, int]]:
    found = _matches(
        pl.Series(left, dtype=pl.String), pl.Series(right, dtype=pl.String), hashed=hashed
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
