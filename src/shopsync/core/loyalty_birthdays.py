"""Birthday bonuses in columns, for :mod:`shopsync.core.loyalty_columns`: the same occurrences
and payments as :func:`shopsync.core.loyalty._birthday_occurrences` and ``_on_birthday``.

An occurrence is a year's date of a birthday value that is the current one on that date (the
latest entered by then; 29 February falls on the 28th in common years), found by an as-of join
of every year's date on the values' entry moments. The cool-down makes payments depend on the
previous payment, so they are chosen greedily in rounds: each round pays every customer's
earliest eligible occurrence, and a customer gets about one bonus a year, so the rounds are
few (the years of history), each over all customers at once.
"""

from __future__ import annotations

import polars as pl

from shopsync._instants import instant as from_micros
from shopsync.core.loyalty_column_kit import CUSTOMER, RANK, entries, key, who
from shopsync.core.loyalty_records import DAY
from shopsync.core.policy import LoyaltySettings

__all__ = ["birthday_entries", "next_birthdays", "occurrences"]

_AHEAD = 367 * DAY  # a year and a day covers 29 February


def occurrences(birthdays: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``customer_id``, ``at``, ``entered_at``: each birthday up to ``horizon`` (micros) with
    the entry moment of the value current on it. ``birthdays`` has ``customer_id``,
    ``entered_at``, ``month``, ``day`` and ``seq`` (the input order, which breaks ties)."""
    empty = pl.DataFrame(schema={"customer_id": CUSTOMER, "at": pl.Int64, "entered_at": pl.Int64})
    if birthdays.is_empty():
        return empty
    values = birthdays.sort("customer_id", "entered_at", "seq").with_columns(
        pl.int_range(pl.len()).over("customer_id").alias("_idx")
    )
    first = pl.from_epoch(pl.col("entered_at").min().over("customer_id"), "us").dt.year()
    year = pl.col("_year")
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    day = (
        pl.when((pl.col("month") == 2) & (pl.col("day") == 29) & ~leap)
        .then(28)
        .otherwise(pl.col("day"))
    )
    moment = pl.date(year, pl.col("month"), day).cast(pl.Datetime("us")).cast(pl.Int64)
    found = (
        values.with_columns(
            pl.int_ranges(first, from_micros(horizon).year + 1, dtype=pl.Int32).alias("_year")
        )
        .explode("_year")
        .filter(year.is_not_null())
        .with_columns(moment.alias("at"))
        .filter(pl.col("at") <= horizon)
        .sort("at")
    )
    current = (
        values.group_by("customer_id", "entered_at")
        .agg(pl.col("_idx").max().alias("_current"))
        .rename({"entered_at": "_since"})
        .sort("_since")
    )
    return (
        found.join_asof(
            current,
            left_on="at",
            right_on="_since",
            by="customer_id",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("_current") == pl.col("_idx"))
        .select("customer_id", "at", "entered_at")
    )


def birthday_entries(
    names: pl.Series, birthdays: pl.DataFrame, settings: LoyaltySettings, as_of: int
) -> pl.DataFrame:
    """The birthday bonus entries due by ``as_of``, as entry rows of
    :data:`shopsync.core.loyalty_column_kit.ENTRY_SCHEMA`."""
    rules = settings.birthday
    eligible = occurrences(birthdays, as_of).filter(
        pl.col("at") - pl.col("entered_at") >= rules.min_days_after_entry * DAY
    )
    if not rules.points:
        eligible = eligible.clear()
    remaining = eligible.select("customer_id", "at")
    paid = [remaining.clear()]
    while remaining.height:
        earliest = remaining.group_by("customer_id").agg(pl.col("at").min().alias("_last"))
        paid.append(earliest.rename({"_last": "at"}))
        since = pl.col("at") - pl.col("_last")
        remaining = (
            remaining.join(earliest, on="customer_id")
            .filter((since > 0) & (since >= rules.cooldown_days * DAY))
            .drop("_last")
        )
    day = pl.from_epoch("at", "us").dt.date().dt.to_string("%Y-%m-%d")
    return entries(
        pl.concat(paid),
        customer_id=pl.col("customer_id"),
        key=key("bonus", "birthday", who(names), day),
        kind=pl.lit("bonus"),
        at=pl.col("at"),
        pending=pl.lit(0),
        approved=pl.lit(rules.points),
        reason=pl.format("birthday bonus {}", day),
        _rank=pl.lit(RANK["birthday"]),
        _sid=pl.col("at").cast(pl.String),
        _sub=pl.lit(0),
    )


def next_birthdays(birthdays: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """``customer_id``, ``at``: each customer's first birthday after ``as_of`` (within a year
    and a day), a moment the ledger changes with no new input."""
    return (
        occurrences(birthdays, as_of + _AHEAD)
        .filter(pl.col("at") > as_of)
        .group_by("customer_id")
        .agg(pl.col("at").min())
    )
