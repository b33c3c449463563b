"""The customers whose loyalty derivation can make a notice at ``as_of``, found before
deriving anyone, so a plan's dry run (:func:`shopsync.core.loyalty_shop.derive_shop`'s
``actions_only``) derives those alone: at 1M orders some nine customers in ten have none.

What the columns' notices hang on (:func:`~shopsync.core.loyalty_derivations.with_actions`):
an earn, a promotion or a progress record at a payment in the window ``(since, until]``, a
bonus or a birthday bonus then, or a points expiry warning, which depends on the moment of
the last activity (an earn, a bonus, a birthday bonus) alone. Each of those moments is a
payment, a bonus's or a birthday's, so a customer with none of them in the window, nor in the
span where a last activity puts the expiry's warnings by ``until``, has no notice. The customers
the rules derive (:func:`~shopsync.core.loyalty_columns.fallback_customers`) are the caller's
to keep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.core.features import paid_moment
from shopsync.core.loyalty_columns import ColumnInputs
from shopsync.core.loyalty_records import DAY
from shopsync.core.policy import LoyaltySettings

__all__ = ["may_act"]

_FIRST_DAY = to_micros(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc))


def _matters(settings: LoyaltySettings, since: int, until: int) -> Callable[[pl.Expr], pl.Expr]:
    """Whether a moment (micros) can make a notice: in ``(since, until]``, or, as a last
    activity, expiring after ``until`` with a warning by then (by the columns' own month
    arithmetic, :func:`~shopsync.core.loyalty_expiry_columns.expiries`)."""
    months, warn = settings.expiry.inactivity_months, settings.expiry.warn_days_before

    def matters(at: pl.Expr) -> pl.Expr:
        dated = (at > since) & (at <= until)
        if months is None or not warn:
            return dated
        expires = pl.from_epoch(at, "us").dt.offset_by(f"{months}mo").dt.epoch("us")
        return dated | ((expires > until) & (expires <= until + max(warn) * DAY))

    return matters


def _reach(settings: LoyaltySettings, since: int, until: int) -> tuple[int, int]:
    """``(low, high]`` (micros): every moment :func:`_matters` can keep (months are 28 to
    31 days; a day's slack either side)."""
    months, warn = settings.expiry.inactivity_months, settings.expiry.warn_days_before
    if months is None or not warn:
        return since, until
    return min(since, until - (31 * months + 1) * DAY), until + max(warn) * DAY


def _birthdays(matters: Callable[[pl.Expr], pl.Expr], low: int, high: int) -> pl.DataFrame:
    """``month``, ``day`` of the birthdays whose bonus (at midnight UTC) can make a notice
    (29 February also when the 28th can: it falls then in common years)."""
    first, last = from_micros(low).date(), from_micros(high).date()
    days = pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)}).filter(
        matters(pl.col("date").cast(pl.Datetime("us")).cast(pl.Int64))
    )
    pairs = {(d.month, d.day) for d in days["date"]}
    if (2, 28) in pairs:
        pairs.add((2, 29))
    return pl.DataFrame(sorted(pairs), schema={"month": pl.Int64, "day": pl.Int64}, orient="row")


def may_act(
    orders: pl.DataFrame,
    inputs: ColumnInputs,
    settings: LoyaltySettings,
    since: int,
    until: int,
) -> pl.Series:
    """The customers (``customer_id``, unique) of ``orders`` (the loyalty tables' columns)
    and ``inputs`` who can have a loyalty notice dated in ``(since, until]`` or an expiry
    warning due by ``until``, as the columns derive them: a superset, the others have none."""
    matters = _matters(settings, since, until)
    low, high = _reach(settings, since, until)

    def kept(frame: pl.DataFrame, at: pl.Expr) -> pl.Series:
        # the calendar arithmetic only of the moments near the spans (most are not)
        near = frame.filter((at > low) & (at <= high))
        return near.filter(matters(at))["customer_id"]

    parts = [kept(orders, paid_moment()), kept(inputs.bonuses, pl.col("at"))]
    # a birthday bonus is dated by until, on the calendar: the span stops there (the policy
    # bounds neither the warning days nor the months, a span past them is no date)
    days = _birthdays(matters, max(low, _FIRST_DAY), until)
    parts.append(inputs.birthdays.join(days, on=["month", "day"], how="semi")["customer_id"])
    found: pl.Series = pl.concat([p.cast(pl.String) for p in parts])
    return found.unique(maintain_order=True)
