"""The planner's shortcuts over repeat purchases give what the plain rules give.

Review requests' once-per-period walk and replenishment's last purchase skip the purchases
alone in their (customer, product) group; on random frames that mix lone and repeat
purchases (and null keys) they must agree with the rule written the plain way.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from shopsync.core.replenish import _last_purchases
from shopsync.core.review_requests import _once_per_period

PAIR = ["customer_id", "product_id"]


def _plain_walk(lines: pl.DataFrame) -> pl.DataFrame:
    """Keep the first purchase of a group, then each one due after the last kept one's period."""
    keep: list[bool] = []
    last: dict[tuple[str | None, str | None], int] = {}
    for row in lines.iter_rows(named=True):
        group = (row["customer_id"], row["product_id"])
        kept_at = last.get(group)
        ok = kept_at is None or kept_at <= row["period_start"]
        keep.append(ok)
        if ok:
            last[group] = row["due"]
    return lines.filter(pl.Series(keep, dtype=pl.Boolean))


def _frame(rng: random.Random, rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            (
                rng.choice(["a", "b", "c", None]),
                rng.choice(["p", "q", "r", "s", None]),
                rng.randint(0, 60),
                f"o{rng.randint(0, 9)}",
            )
            for _ in range(rows)
        ],
        schema={
            "customer_id": pl.String,
            "product_id": pl.String,
            "due": pl.Int64,
            "order_id": pl.String,
        },
        orient="row",
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_walk_over_repeats_only_matches_a_plain_walk(seed: int) -> None:
    rng = random.Random(seed)
    period = rng.randint(1, 25)
    lines = (
        _frame(rng, rng.randint(0, 50))
        .sort([*PAIR, "due", "order_id"])
        .with_columns((pl.col("due") - period).alias("period_start"))
    )
    assert _once_per_period(lines).equals(_plain_walk(lines))


@pytest.mark.parametrize("seed", range(40))
def test_the_last_purchase_over_repeats_only_matches_two_windows(seed: int) -> None:
    rng = random.Random(seed)
    bought = (
        _frame(rng, rng.randint(0, 50))
        .rename({"due": "created_at"})
        .with_columns(pl.int_range(pl.len()).alias("position"))
    )
    newest = pl.col("created_at") == pl.col("created_at").max().over(PAIR)
    expected = bought.filter(newest).filter(
        pl.col("order_id") == pl.col("order_id").max().over(PAIR)
    )
    assert _last_purchases(bought).equals(expected)
