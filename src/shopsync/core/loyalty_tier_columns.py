"""Tiers qualified by net spend, in columns, for :mod:`shopsync.core.loyalty_columns`: the
tier each order earns at, the promotions and re-evaluations, and the tier held at ``as_of``,
as :func:`shopsync.core.loyalty.derive` and :class:`shopsync.core.loyalty_tiers._Tiers` give.

Why this can be columns: the spend metric depends on the orders alone (not on the ledger), so
it is a step function of time per customer, a cumulative sum of deltas (``+total`` at
payment, each refund's share, the rest at a cancellation or when the order leaves the
window), read at any moment by an as-of join. The metric only rises at a payment, and every
payment of an earning order is a promotion check, so a tier held is never below the level
at a later check until the next payment: only the earn checks can promote (approvals and
bonuses check too, and never do). The path of a customer's tier is then a short sequence of
changes (promotions at payments, re-evaluations when a hold ends), found in rounds, each
round one change for every customer at once; customers whose level never passes the base
tier take no round at all.

Refunds must not be negative here (a negative refund would raise the metric between
payments): :func:`shopsync.core.loyalty_columns.derive_columns` leaves such customers to the
rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import polars as pl

from shopsync.core.loyalty_column_kit import CUSTOMER
from shopsync.core.loyalty_records import DAY, UNIT
from shopsync.core.policy import LoyaltySettings

__all__ = ["TierPath", "tier_path"]

_NONE = -1
"""The "no tier" index in these frames (a tier index or this, never null)."""


@dataclass(frozen=True)
class TierPath:
    earns: pl.DataFrame
    """Per earning order (``id``): ``before``, the tier it earns at, ``after``, the tier held
    after its own check, and ``units``, the metric then (store units)."""
    changes: pl.DataFrame
    """``customer_id``, ``at``, ``from``, ``to``, ``promoted``, in each customer's order."""
    held: pl.DataFrame
    """Customers with a change: ``customer_id``, ``tier`` and ``until`` at ``as_of``."""


def _months(at: pl.Expr, months: int) -> pl.Expr:
    return pl.from_epoch(at, "us").dt.offset_by(f"{months}mo").dt.epoch("us")


def _exit(window: str) -> pl.Expr | None:
    """When an order paid at ``paid`` leaves the window (null: never)."""
    if window == "rolling_12_months":
        return pl.col("paid") + 365 * DAY
    if window == "calendar_year":
        year = pl.from_epoch("paid", "us").dt.year() + 1
        return pl.datetime(year, 1, 1, time_unit="us").dt.epoch("us")
    return None


def _deltas(orders: pl.DataFrame, refunds: pl.DataFrame, window: str) -> pl.DataFrame:
    """``customer_id``, ``at``, ``units``: the spend metric at each moment it changes."""
    leave = _exit(window)
    ends = orders.select(
        "customer_id",
        "_row",
        "paid",
        "total",
        pl.min_horizontal(
            leave if leave is not None else pl.lit(None, pl.Int64), "cancelled_at"
        ).alias("end"),
    )
    steps = (
        refunds.join(ends.select("_row", "end"), on="_row")
        .filter(pl.col("end").is_null() | (pl.col("at") < pl.col("end")))
        .with_columns(pl.min_horizontal("_cum", "total").alias("_kept"))
        .with_columns(
            (pl.col("_kept").shift(1).over("_row").fill_null(0) - pl.col("_kept")).alias("d")
        )
    )
    gone = steps.group_by("_row").agg(pl.col("_kept").max().alias("_refunded"))
    leaving = (
        ends.filter(pl.col("end").is_not_null())
        .join(gone, on="_row", how="left")
        .select(
            "customer_id",
            pl.col("end").alias("at"),
            (pl.col("_refunded").fill_null(0) - pl.col("total")).alias("d"),
        )
    )
    return (
        pl.concat(
            [
                ends.select("customer_id", pl.col("paid").alias("at"), pl.col("total").alias("d")),
                steps.select("customer_id", "at", "d"),
                leaving,
            ]
        )
        .sort("customer_id", "at")
        .select("customer_id", "at", pl.col("d").cum_sum().over("customer_id").alias("units"))
        # the metric after every change of a moment: the last row of each (customer, moment)
        .filter(
            (pl.col("customer_id") != pl.col("customer_id").shift(-1)).fill_null(True)
            | (pl.col("at") != pl.col("at").shift(-1)).fill_null(True)
        )
    )


def _units_at(frame: pl.DataFrame, moment: str, deltas: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``units``: the metric of its customer at its ``moment`` column (as-of
    join on the deltas of ``frame``'s customers alone: the rounds ask for few)."""
    some = deltas.filter(pl.col("customer_id").is_in(frame["customer_id"].unique().implode()))
    return (
        frame.sort(moment)
        .join_asof(
            some.sort("at").rename({"at": "_at"}),
            left_on=moment,
            right_on="_at",
            by="customer_id",
            strategy="backward",
            check_sortedness=False,
        )
        .drop("_at")
        .with_columns(pl.col("units").fill_null(0))
    )


def tier_path(
    orders: pl.DataFrame, refunds: pl.DataFrame, settings: LoyaltySettings, as_of: int
) -> TierPath:
    """The tiers of the customers of ``orders`` (the earning orders: ``customer_id``, ``id``,
    ``paid``, ``cancelled_at``, ``total``) with ``refunds`` (``order_id``, ``at``, ``_cum``:
    cumulative amount in the rules' order, ``total``), qualified by spend."""
    rules = settings.tiers
    tiers = rules.tiers
    floors = [math.ceil(Fraction(t.threshold) * UNIT) for t in tiers]
    base = 0 if tiers and tiers[0].threshold == 0 else _NONE
    held_tiers = [i for i, t in enumerate(tiers) if t.threshold > 0]
    level = pl.sum_horizontal([(pl.col("units") >= f).cast(pl.Int32) for f in floors]) - 1
    deltas = _deltas(orders, refunds, rules.window)
    # every payment is a moment the metric changes: an equality join reads it there
    earns = (
        orders.sort("customer_id", "paid", "id")
        .select(
            "customer_id",
            "_row",
            "paid",
            pl.int_range(pl.len()).over("customer_id").alias("seq"),
        )
        .join(deltas.rename({"at": "paid"}), on=["customer_id", "paid"], maintain_order="left")
        .with_columns(level.alias("level"))
    )
    climbing = (
        earns.filter(pl.col("level") > base)
        .select("customer_id", "paid", "seq", "level")
        .sort("customer_id", "paid", "seq")
    )
    state = (
        climbing.select("customer_id")
        .unique()
        .with_columns(
            pl.lit(base, pl.Int32).alias("k"),
            pl.lit(None, pl.Int64).alias("u"),
            pl.lit(-(2**62), pl.Int64).alias("pt"),
            pl.lit(-1, pl.Int64).alias("ps"),
        )
    )
    changes: list[pl.DataFrame] = []
    done: list[pl.DataFrame] = []
    while state.height:
        # the first payment after the position that qualifies above the tier held
        after = (pl.col("paid") > pl.col("pt")) | (
            (pl.col("paid") == pl.col("pt")) & (pl.col("seq") > pl.col("ps"))
        )
        # what is left of each active customer's payments (sorted): it only shrinks
        climbing = (
            climbing.join(
                state.select("customer_id", "k", "pt", "ps"),
                on="customer_id",
                maintain_order="left",
            )
            .filter(after)
            .drop("pt", "ps")
        )
        found = (
            climbing.filter(pl.col("level") > pl.col("k"))
            .unique("customer_id", keep="first", maintain_order=True)
            .select("customer_id", "paid", "seq", "level")
        )
        climbing = climbing.drop("k")
        step = state.join(found, on="customer_id", how="left")
        review = (
            pl.col("u").is_not_null()
            & (pl.col("u") <= as_of)
            & (pl.col("paid").is_null() | (pl.col("u") <= pl.col("paid")))
        )
        reviews = _units_at(step.filter(review).drop("paid", "seq", "level"), "u", deltas)
        reviews = reviews.with_columns(level.alias("q")).with_columns(
            pl.when(pl.col("q") > pl.col("k"))
            .then(pl.col("q"))
            .otherwise(pl.max_horizontal("q", pl.lit(base)))
            .alias("new")
        )
        up = pl.col("q") > pl.col("k")
        keep = pl.col("new").is_in(held_tiers) | up
        changes.append(
            reviews.filter(pl.col("new") != pl.col("k")).select(
                "customer_id",
                pl.col("u").alias("at"),
                pl.lit(-1, pl.Int64).alias("sub"),
                pl.col("k").alias("from"),
                pl.col("new").alias("to"),
                up.alias("promoted"),
            )
        )
        reviewed = reviews.select(
            "customer_id",
            pl.col("new").alias("k"),
            pl.when(keep).then(_months(pl.col("u"), rules.hold_months)).alias("u"),
            pl.col("u").alias("pt"),
            pl.lit(-1, pl.Int64).alias("ps"),
        )
        promote = step.filter(~review & pl.col("paid").is_not_null())
        changes.append(
            promote.select(
                "customer_id",
                pl.col("paid").alias("at"),
                (2 * pl.col("seq") + 1).alias("sub"),
                pl.col("k").alias("from"),
                pl.col("level").alias("to"),
                pl.lit(True).alias("promoted"),
            )
        )
        promoted = promote.select(
            "customer_id",
            pl.col("level").alias("k"),
            _months(pl.col("paid"), rules.hold_months).alias("u"),
            pl.col("paid").alias("pt"),
            pl.col("seq").alias("ps"),
        )
        done.append(
            step.filter(~review & pl.col("paid").is_null()).select(
                "customer_id", pl.col("k").alias("tier"), pl.col("u").alias("until")
            )
        )
        state = pl.concat([reviewed, promoted], how="vertical_relaxed")
    moved = pl.concat(
        changes
        or [
            pl.DataFrame(
                schema={
                    "customer_id": CUSTOMER,
                    "at": pl.Int64,
                    "sub": pl.Int64,
                    "from": pl.Int32,
                    "to": pl.Int32,
                    "promoted": pl.Boolean,
                }
            )
        ],
        how="vertical_relaxed",
    ).sort("customer_id", "at", "sub")
    # the tier each order earns at: the last change before its earn in event order
    marks = pl.concat(
        [
            earns.select(
                "customer_id",
                "_row",
                pl.col("paid").alias("at"),
                (2 * pl.col("seq")).alias("sub"),
                pl.lit(None, pl.Int32).alias("to"),
            ),
            moved.select("customer_id", pl.lit(None, pl.UInt32).alias("_row"), "at", "sub", "to"),
        ],
        how="vertical_relaxed",
    ).sort("customer_id", "at", "sub")
    filled = marks.with_columns(
        pl.col("to").forward_fill().over("customer_id").fill_null(base).alias("tier")
    ).filter(pl.col("_row").is_not_null())
    promoted_at = moved.filter(pl.col("sub") >= 0).select(
        "customer_id", ((pl.col("sub") - 1) // 2).alias("seq"), pl.col("to").alias("_up")
    )
    earned = (
        earns.join(filled.select("_row", pl.col("tier").alias("before")), on="_row")
        .join(promoted_at, on=["customer_id", "seq"], how="left")
        .select(
            "_row",
            "before",
            pl.coalesce("_up", "before").alias("after"),
            "units",
        )
    )
    held = pl.concat(done, how="vertical_relaxed") if done else None
    return TierPath(
        earned,
        moved.select("customer_id", "at", "from", "to", "promoted"),
        held
        if held is not None
        else pl.DataFrame(schema={"customer_id": CUSTOMER, "tier": pl.Int32, "until": pl.Int64}),
    )


def progress(orders: pl.DataFrame, settings: LoyaltySettings) -> pl.DataFrame:
    """The progress records (:func:`shopsync.core.milestones.check_progress`) of the orders
    that earned (``customer_id``, ``id``, ``paid``, ``after``, ``units``): an order that leaves
    its customer short of the next tier by at most ``progress_within_percent`` of its
    threshold, at most one per customer and tier per ``progress_cooldown_days`` (chosen
    greedily in rounds, the earliest first). Columns: ``customer_id``, ``at``, ``target``,
    ``units``, ``after``, ``order_id``."""
    rules = settings.milestones
    tiers = settings.tiers.tiers
    percent = Fraction(rules.progress_within_percent)
    shape = {
        "customer_id": CUSTOMER,
        "at": pl.Int64,
        "target": pl.Int32,
        "units": pl.Int64,
        "after": pl.Int32,
        "order_id": pl.String,
    }
    if percent <= 0 or not tiers:
        return pl.DataFrame(schema=shape)
    target = pl.col("after") + 1
    limits = [Fraction(t.threshold) for t in tiers]
    tops = [f.numerator for f in limits]
    bottoms = [f.denominator for f in limits]
    p = target.replace_strict(range(len(tiers)), tops, default=0).cast(pl.Int128)
    q = target.replace_strict(range(len(tiers)), bottoms, default=1).cast(pl.Int128)
    short = p * UNIT - pl.col("units").cast(pl.Int128) * q  # (threshold - metric) * q * UNIT
    close = (short > 0) & (short * (percent.denominator * 100) <= p * (percent.numerator * UNIT))
    candidates = (
        orders.filter(target < len(tiers))
        .filter(close)
        .sort("customer_id", "paid", "id")
        .select(
            "customer_id",
            pl.col("paid").alias("at"),
            target.cast(pl.Int32).alias("target"),
            "units",
            pl.col("after").cast(pl.Int32),
            pl.col("id").alias("order_id"),
            pl.int_range(pl.len()).over("customer_id").alias("_seq"),
        )
    )
    cooldown = rules.progress_cooldown_days * DAY
    remaining, kept = candidates, [candidates.clear()]
    group = ["customer_id", "target"]
    while remaining.height:
        first = remaining.group_by(group).agg(pl.all().sort_by("_seq").first())
        kept.append(first.select(candidates.columns))
        marks = first.select(*group, pl.col("at").alias("_t"), pl.col("_seq").alias("_s"))
        remaining = (
            remaining.join(marks, on=group)
            .filter((pl.col("_seq") > pl.col("_s")) & (pl.col("at") - pl.col("_t") >= cooldown))
            .drop("_t", "_s")
        )
    return pl.concat(kept).sort("customer_id", "_seq").drop("_seq").select(list(shape))
