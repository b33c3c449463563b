"""Expiry in columns, for :mod:`shopsync.core.loyalty_columns`: an activity's expiry fires
when the next activity does not come first, and takes the step of ``max(0, cummax(c_k))``
(``c_k``: the approved deltas before expiry ``k``), since the balance after an expiry is
``min(balance, 0)``; the rules (:func:`shopsync.core.loyalty._dynamic`) do it one by one.
"""

from __future__ import annotations

import polars as pl

from shopsync.core.loyalty_column_kit import RANK, entries, key, who
from shopsync.core.loyalty_records import DAY
from shopsync.core.policy import LoyaltySettings

__all__ = ["expiries"]


def expiries(
    names: pl.Series,
    found: pl.DataFrame,
    activity: pl.DataFrame,
    settings: LoyaltySettings,
    as_of: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The expiry entries, and per customer the last activity and the pending expiry."""
    months = settings.expiry.inactivity_months
    moments = activity.sort("customer_id", "at")
    last = moments.group_by("customer_id").agg(pl.col("at").max().alias("last_activity"))
    if months is None:
        empty = entries(found.clear())
        return empty, last.with_columns(pl.lit(None, pl.Int64).alias("expires_at"))

    def expiry(at: pl.Expr) -> pl.Expr:
        return pl.from_epoch(at, "us").dt.offset_by(f"{months}mo").dt.epoch("us")

    last = (
        last.with_columns(expiry(pl.col("last_activity")).alias("_exp"))
        .with_columns(pl.when(pl.col("_exp") > as_of).then(pl.col("_exp")).alias("expires_at"))
        .drop("_exp")
    )
    # ``months`` months are at least 28 days each: moments with the next one (or ``as_of``)
    # nearer than that cannot fire, and are dropped before the calendar arithmetic
    least = 28 * months * DAY
    fired = (
        moments.with_columns(  # the next moment of the same customer (sorted: no window)
            pl.when(pl.col("customer_id").shift(-1) == pl.col("customer_id"))
            .then(pl.col("at").shift(-1))
            .alias("_next")
        )
        .filter(
            (pl.col("at") <= as_of - least)
            & (pl.col("_next").is_null() | (pl.col("_next") - pl.col("at") >= least))
        )
        .with_columns(expiry(pl.col("at")).alias("exp"))
        .filter(
            (pl.col("exp") <= as_of)
            & (pl.col("_next").is_null() | (pl.col("exp") <= pl.col("_next")))
        )
        .unique(["customer_id", "exp"])
    )
    # only the customers with an expiry need their approved balance over time
    found = found.select("customer_id", "at", "approved").join(
        fired.select("customer_id").unique(), on="customer_id", how="semi"
    )
    # the approved balance before each expiry: expiries sort before the deltas of their
    # moment (an expiry comes before that moment's events), one cumulative sum reads them
    stream = pl.concat(
        [
            found.select("customer_id", "at", pl.col("approved").alias("d"), pl.lit(1).alias("_o")),
            fired.select(
                "customer_id",
                pl.col("exp").alias("at"),
                pl.lit(0).alias("d"),
                pl.lit(0).alias("_o"),
            ),
        ],
        how="vertical_relaxed",
    ).sort("customer_id", "at", "_o")
    taken = (
        stream.with_columns(pl.col("d").cum_sum().over("customer_id").alias("_c"))
        .filter(pl.col("_o") == 0)
        .rename({"at": "exp"})
        .with_columns(pl.col("_c").cum_max().over("customer_id").clip(lower_bound=0).alias("_e"))
        .with_columns(
            (pl.col("_e") - pl.col("_e").shift(1).over("customer_id").fill_null(0)).alias("gone")
        )
        .filter(pl.col("gone") > 0)
    )
    expired = entries(
        taken,
        customer_id=pl.col("customer_id"),
        key=key("expire", who(names), pl.col("exp")),
        kind=pl.lit("expire"),
        at=pl.col("exp"),
        pending=pl.lit(0),
        approved=-pl.col("gone"),
        reason=pl.format(
            "{} points expired after {} months without activity",
            pl.col("gone"),
            pl.lit(months),
        ),
        _rank=pl.lit(RANK["expire"]),
        _sid=pl.lit(""),
        _sub=pl.lit(0),
    )
    return expired, last
