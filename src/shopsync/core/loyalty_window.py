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
from fractions import Fraction

import polars as pl

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.core.features import paid_moment
from shopsync.core.loyalty_column_kit import I128, half_up
from shopsync.core.loyalty_columns import ColumnInputs
from shopsync.core.loyalty_history import with_purchase
from shopsync.core.loyalty_records import DAY, UNIT
from shopsync.core.policy import LoyaltySettings

__all__ = ["may_act"]

_FIRST_DAY = to_micros(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc))


def _matters(
    settings: LoyaltySettings, since: int, until: int
) -> tuple[Callable[[pl.Expr], pl.Expr], Callable[[pl.Expr], pl.Expr]]:
    """Whether a moment (micros) can make a notice: dated in ``(since, until]``; or, were it
    the last activity, expiring after ``until`` with a warning by then (by the columns' own
    month arithmetic, :func:`~shopsync.core.loyalty_expiry_columns.expiries`)."""
    months, warn = settings.expiry.inactivity_months, settings.expiry.warn_days_before

    def dated(at: pl.Expr) -> pl.Expr:
        return (at > since) & (at <= until)

    def expiring(at: pl.Expr) -> pl.Expr:
        if months is None or not warn:
            return pl.lit(False)
        expires = pl.from_epoch(at, "us").dt.offset_by(f"{months}mo").dt.epoch("us")
        return (expires > until) & (expires <= until + max(warn) * DAY)

    return dated, expiring


def _surely_active(
    orders: pl.DataFrame, settings: LoyaltySettings, until: int, currency: str | None
) -> pl.DataFrame:
    """Per customer (``customer_id``, ``_sure``), the last payment by ``until`` that earns
    points whatever the customer's tier and held earns: an activity, so no earlier moment is
    the customer's last (none when ``currency`` is unknown). An order earns
    (:func:`~shopsync.core.loyalty_columns._earns`) when it is a purchase paid by then, in the
    shop currency, with points: earns already held are above zero, and the rule's points are
    at least those of the lowest multiplier, rounded half up."""
    if currency is None:
        return pl.DataFrame(schema={"customer_id": pl.String, "_sure": pl.Int64})
    earn = settings.earn
    value = pl.col("subtotal")
    if earn.include_shipping:
        value = value + pl.col("total_shipping")
    if earn.include_tax:
        value = value + pl.col("total_tax")
    least = min([Fraction(1), *(Fraction(t.multiplier) for t in settings.tiers.tiers)])
    points = half_up(
        value.cast(I128) * least.numerator * earn.points_per_unit,
        pl.lit(least.denominator * UNIT, I128),
    )
    paid = pl.col("paid")
    # a purchase (the one rule) is paid, not cancelled before, its total above zero
    sure = (
        (paid <= until)
        & pl.col("purchase")
        & pl.col("currency").eq_missing(pl.lit(currency))
        & (points >= 1)
    )
    return (
        with_purchase(orders.lazy())
        .filter(sure.fill_null(False))
        .group_by("customer_id")
        .agg(paid.max().alias("_sure"))
        .collect(engine="in-memory")
    )


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
    *,
    currency: str | None = None,
) -> pl.Series:
    """The customers (``customer_id``, unique) of ``orders`` (the loyalty tables' columns)
    and ``inputs`` who can have a loyalty notice dated in ``(since, until]`` or an expiry
    warning due by ``until``, as the columns derive them: a superset, the others have none.

    Only a customer's last activity by ``until`` dates their expiry: a moment followed by a
    payment that surely earns (:func:`_surely_active`; ``currency``, the shop's, None: no
    payment is sure) is not it. At 10M orders that leaves some 80k of 190k customers."""
    dated, expiring = _matters(settings, since, until)
    low, high = _reach(settings, since, until)
    sure = _surely_active(orders, settings, until, currency)
    last = ~(pl.col("_sure") > pl.col("_at")).fill_null(False)

    def kept(frame: pl.DataFrame, at: pl.Expr) -> pl.Series:
        # the calendar arithmetic only of the moments near the spans (most are not)
        near = frame.select(pl.col("customer_id").cast(pl.String), at.alias("_at")).filter(
            (pl.col("_at") > low) & (pl.col("_at") <= high)
        )
        near = near.join(sure, on="customer_id", how="left")
        return near.filter(dated(pl.col("_at")) | (expiring(pl.col("_at")) & last))["customer_id"]

    parts = [kept(orders, paid_moment()), kept(inputs.bonuses, pl.col("at"))]
    # a birthday bonus is dated by until, on the calendar: the span stops there (the policy
    # bounds neither the warning days nor the months, a span past them is no date)
    days = _birthdays(lambda at: dated(at) | expiring(at), max(low, _FIRST_DAY), until)
    parts.append(inputs.birthdays.join(days, on=["month", "day"], how="semi")["customer_id"])
    found: pl.Series = pl.concat([p.cast(pl.String) for p in parts])
    return found.unique(maintain_order=True)
