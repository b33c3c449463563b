"""The loyalty ledger of a whole shop in columns: the rules of :func:`shopsync.core.loyalty.derive`
as Polars expressions over every order at once, no Python loop per order or per customer.

Why: the per-customer rules cost about 160 µs per order (16.6 s per 100k orders); a shop of
10M orders needs a few µs. The rules are path-dependent in general, but most of their paths
reduce to column algebra, and this module derives exactly those:

- **earn** is a function of the order and the multiplier of the tier held at payment, or
  the points the ledger's earn entry holds (:attr:`ColumnInputs.earned`: a fact, whatever
  the earn rule says now);
- **tiers** (qualified by spend): :mod:`shopsync.core.loyalty_tier_columns` (the metric as a
  step function, the tier path in rounds of changes), progress records included;
- **claw-backs**: the cumulative target of each refund is ``min(earned, round_half_up(earned
  * share))``; what a refund takes is the step of the running maximum of the targets (a
  cumulative max per order); a cancellation takes what is left; pending or approved by
  whether the approval came first;
- **approval** takes ``earned`` less what was clawed back by then;
- **expiry**: an activity's expiry fires when the next activity does not come before it;
  what it takes is the step of ``max(0, cummax(c_k))`` where ``c_k`` is the sum of the
  approved deltas before expiry ``k`` (the balance after an expiry is ``min(balance, 0)``);
- **birthdays**: occurrences by an as-of join of each year's date on the value current then,
  the cool-down greedily in rounds (one round per bonus a customer can get, all customers at
  once);
- bonuses (referral rewards) and adjustments are plain credits and debits.

What stays with the rules, explicitly (:func:`uncovered` names a policy option;
:attr:`ColumnLedger.fallback` lists customers, derived by the rules instead):

- policy options: a category bonus, order milestones, anniversary bonuses, tiers qualified by
  points earned (their metric depends on the ledger itself);
- customers with a redemption by ``as_of`` (its entry lists the lots it drew from, oldest
  first, a queue the columns do not model) or a negative refund amount (it would raise the
  spend metric between payments, which the tier path assumes it never does).

Inside, customers are integer codes and orders their row numbers (strings sort, group and
join several times slower); source keys still name the customer and order ids.

Times are micros (UTC) and money ten-thousandths, as in :mod:`shopsync.core.loyalty_records`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import polars as pl

from shopsync.core.loyalty_birthdays import birthday_entries, next_birthdays
from shopsync.core.loyalty_column_kit import (
    CUSTOMER,
    EARNED,
    I128,
    RANK,
    entries,
    fit_keys,
    half_up,
    key,
    who,
    with_held,
)
from shopsync.core.loyalty_expiry_columns import expiries
from shopsync.core.loyalty_records import DAY, UNIT
from shopsync.core.loyalty_tier_columns import progress, tier_path
from shopsync.core.policy import LoyaltySettings

__all__ = [
    "EARNED",
    "ColumnInputs",
    "ColumnLedger",
    "base_tier",
    "column_frames",
    "derive_columns",
    "fallback_customers",
    "uncovered",
]


def uncovered(settings: LoyaltySettings) -> str | None:
    """The policy option the columns do not derive (None: they derive this policy)."""
    if settings.category_bonus.points:
        return "loyalty.category_bonus"
    if settings.milestones.orders:
        return "loyalty.milestones.orders"
    if settings.milestones.anniversary_points:
        return "loyalty.milestones.anniversary_points"
    if settings.tiers.tiers and settings.tiers.metric == "points":
        return "loyalty.tiers.metric = points"
    return None


def base_tier(settings: LoyaltySettings) -> int | None:
    """The tier a customer holds before qualifying for any: the first if its threshold is 0."""
    tiers = settings.tiers.tiers
    return 0 if tiers and tiers[0].threshold == 0 else None


@dataclass(frozen=True)
class ColumnInputs:
    """The loyalty inputs as frames (micros, points)."""

    bonuses: pl.DataFrame
    """``customer_id``, ``key``, ``at``, ``points``, ``reason``, ``order_id``, ``seq``."""
    adjustments: pl.DataFrame
    """``customer_id``, ``key``, ``at``, ``points``, ``reason``, ``seq``."""
    redemptions: pl.DataFrame
    """``customer_id``, ``at``."""
    birthdays: pl.DataFrame
    """``customer_id``, ``entered_at``, ``month``, ``day``, ``seq`` (input order)."""
    earned: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EARNED))
    """:data:`EARNED`: the points the ledger's earn entries hold, at most one row per customer
    and order (positive points; others are ignored). Such an order earns them, not what the
    earn rule gives: points an order earned are a fact (an empty frame: every order earns
    under the current rule)."""


@dataclass(frozen=True)
class ColumnLedger:
    entries: pl.DataFrame
    """:data:`ENTRY_SCHEMA`, unsorted: the customers' event order is (``customer_id``, ``at``,
    ``_rank``, ``_sid``, ``_sub``); ``value`` is an earn's value."""
    notes: pl.DataFrame
    """``customer_id``, ``key``, ``reason``, ``order_id``, in order of the facts."""
    summary: pl.DataFrame
    """Per customer derived here: ``pending``, ``approved``, ``last_activity``,
    ``expires_at``, ``next_change`` (null: none), ``tier`` (index, -1: none) and ``until``."""
    fallback: frozenset[Any]
    """Customer ids these columns do not derive: the rules must (see the module docstring)."""
    changes: pl.DataFrame
    """Tier changes: ``customer_id``, ``at``, ``from``, ``to`` (tier indexes, -1: none),
    ``promoted``, in order."""
    progress: pl.DataFrame
    """Progress records: ``customer_id``, ``at``, ``target``, ``units`` (the metric),
    ``after`` (the tier held after the order's check), ``order_id``, in order."""


def _fallback(refunds: pl.DataFrame, inputs: ColumnInputs, as_of: int) -> set[Any]:
    """Customers with a redemption by ``as_of`` (its lots), or a negative refund (it would
    raise the spend metric between payments)."""
    found = set(inputs.redemptions.filter(pl.col("at") <= as_of)["customer_id"].to_list())
    return found | set(refunds.filter(pl.col("amount") < 0)["customer_id"].to_list())


def fallback_customers(
    facts: pl.DataFrame, refunds: pl.DataFrame, inputs: ColumnInputs, as_of: int, currency: str
) -> frozenset[Any]:
    """The customers :func:`derive_columns` leaves to the rules (:attr:`ColumnLedger.fallback`),
    found without deriving: a caller deriving in blocks of customers knows them up front."""
    inside = with_held(_inside(facts, as_of), inputs.earned)
    earning = inside.filter(_earns(currency)).select("id", "customer_id")
    negative = refunds.filter(pl.col("amount") < 0).join(
        earning, left_on="order_id", right_on="id", how="inner"
    )
    return frozenset(_fallback(negative, inputs, as_of))


def _inside(facts: pl.DataFrame, as_of: int) -> pl.DataFrame:
    """The orders paid by ``as_of`` and not cancelled before payment, ``_row`` numbered."""
    paid, cancel = pl.col("paid"), pl.col("cancelled_at")
    return (
        facts.with_row_index("_row")
        .filter(paid.is_not_null() & (paid <= as_of))
        .filter(~(cancel <= paid).fill_null(False))
    )


def _earns(currency: str) -> pl.Expr:
    """Of :func:`_inside`'s orders (with ``held``), those that earn: a value above zero, or
    points already earned."""
    foreign = pl.col("currency").ne_missing(pl.lit(currency))
    negative = (pl.col("value") < 0) | (pl.col("total") < 0)
    worth = (pl.col("value") > 0) | pl.col("held").is_not_null()
    return ~foreign & ~negative & worth & pl.col("purchase")


def _order_frames(
    names: pl.Series, facts: pl.DataFrame, earned: pl.DataFrame, as_of: int, currency: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The notes (currency, negative) and the orders that earn (with ``held``, see
    :func:`~shopsync.core.loyalty_column_kit.with_held`), in the facts' order."""
    inside = with_held(_inside(facts, as_of), earned)
    foreign = pl.col("currency").ne_missing(pl.lit(currency))
    negative = (pl.col("value") < 0) | (pl.col("total") < 0)
    notes = inside.filter(foreign | negative).select(
        "_row",
        "customer_id",
        pl.when(foreign)
        .then(key("currency", who(names), pl.col("id")))
        .otherwise(key("negative", who(names), pl.col("id")))
        .alias("key"),
        pl.when(foreign)
        .then(
            pl.format(
                "order in {}, not the shop currency {}: no loyalty points",
                pl.col("currency").fill_null("None"),
                pl.lit(currency),
            )
        )
        .otherwise(pl.lit("order with a negative value: no loyalty points"))
        .alias("reason"),
        pl.col("id").alias("order_id"),
    )
    return notes, inside.filter(_earns(currency))


def derive_columns(
    facts: pl.DataFrame,
    refunds: pl.DataFrame,
    inputs: ColumnInputs,
    settings: LoyaltySettings,
    as_of: int,
    *,
    currency: str,
) -> ColumnLedger:
    """The ledger of every customer in ``facts`` the columns cover, as of ``as_of``.

    ``facts`` are :func:`shopsync.core.loyalty_history.facts_table`'s rows (``customer_id``,
    ``id``, ``created_at``, ``paid``, ``cancelled_at``, ``currency``, ``value``, ``total``,
    ``purchase``); ``refunds`` has ``order_id``, ``id``, ``created_at``, ``amount``.
    Customers with inputs but no orders are derived too. Raises ``ValueError`` for a policy
    :func:`uncovered` names.
    """
    reason = uncovered(settings)
    if reason is not None:
        raise ValueError(f"the columnar loyalty derivation does not cover {reason}")
    # the earns of these facts' orders alone: another's customer is no customer here
    theirs = facts.select("customer_id", pl.col("id").alias("order_id"))
    inputs = replace(
        inputs, earned=inputs.earned.join(theirs, on=["customer_id", "order_id"], how="semi")
    )
    names = (
        pl.concat([facts["customer_id"], *(f["customer_id"] for f in column_frames(inputs))])
        .unique()
        .sort()
    )
    codes = pl.DataFrame({"customer_id": names, "_code": pl.int_range(len(names), eager=True)})
    codes = codes.with_columns(pl.col("_code").cast(CUSTOMER))

    def encode(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.join(codes, on="customer_id", maintain_order="left")
            .with_columns(pl.col("_code").alias("customer_id"))
            .drop("_code")
        )

    def decode(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(names.gather(frame["customer_id"]).alias("customer_id"))

    ledger = _derive(
        names,
        encode(facts),
        refunds,
        ColumnInputs(*(encode(f) for f in column_frames(inputs))),
        settings,
        as_of,
        currency,
    )
    return ColumnLedger(
        decode(ledger.entries),
        decode(ledger.notes),
        decode(ledger.summary),
        frozenset(names.gather(pl.Series(list(ledger.fallback), dtype=CUSTOMER)).to_list()),
        decode(ledger.changes),
        decode(ledger.progress),
    )


def _derive(
    names: pl.Series,
    facts: pl.DataFrame,
    refunds: pl.DataFrame,
    inputs: ColumnInputs,
    settings: LoyaltySettings,
    as_of: int,
    currency: str,
) -> ColumnLedger:
    tiers = settings.tiers.tiers
    base = base_tier(settings)
    pending_days = settings.earn.pending_days
    per_unit = settings.earn.points_per_unit

    notes, earning = _order_frames(names, facts, inputs.earned, as_of, currency)
    # refunds in the rules' order: by (moment, refund id), the moment no earlier than payment
    joined = (
        refunds.join(
            earning.select("_row", "id", "customer_id", "paid", "cancelled_at", "total"),
            left_on="order_id",
            right_on="id",
            how="inner",
        )
        .with_columns(pl.max_horizontal("created_at", "paid").alias("at"))
        .sort("_row", "at", "id")
        .with_columns(
            pl.col("amount").cum_sum().over("_row").alias("_cum"),
            pl.int_range(pl.len()).over("_row").alias("_sub"),
        )
    )
    fallback = _fallback(joined, inputs, as_of)
    drop = pl.col("customer_id").is_in(pl.Series(list(fallback), dtype=CUSTOMER).implode())
    if fallback:
        facts, notes, earning = facts.filter(~drop), notes.filter(~drop), earning.filter(~drop)
        joined = joined.filter(~drop)
        inputs = ColumnInputs(*(f.filter(~drop) for f in column_frames(inputs)))

    # the tier each order earns at (the base tier throughout without tiers)
    rates = [Fraction(1)] + [Fraction(t.multiplier) for t in tiers]  # by tier index + 1
    if tiers:
        path = tier_path(earning, joined, settings, as_of)
        earning = earning.join(path.earns, on="_row", how="left")
    else:
        path = None
        earning = earning.with_columns(
            pl.lit(-1, pl.Int32).alias("before"), pl.lit(-1, pl.Int32).alias("after")
        )
    index = pl.col("before") + 1
    numerator = index.replace_strict(range(len(rates)), [r.numerator for r in rates])
    denominator = index.replace_strict(range(len(rates)), [r.denominator for r in rates])
    named = index.replace_strict(range(len(rates)), [str(r) for r in rates])
    top = pl.col("value").cast(I128) * numerator.cast(I128) * per_unit
    by_rule = half_up(top, denominator.cast(I128) * UNIT).cast(pl.Int64)
    orders = earning.select(
        "_row",
        "customer_id",
        "id",
        "paid",
        "cancelled_at",
        "total",
        "value",
        pl.coalesce("held", by_rule).alias("earned"),
        (pl.col("held") != by_rule).fill_null(False).alias("_earlier"),
        (pl.col("paid") + pending_days * DAY).alias("approve_at"),
        pl.coalesce("held_pending", pl.lit(pending_days > 0)).alias("_pending"),
        named.cast(pl.String).alias("multiplier"),
        *(["after", "units"] if path is not None else []),
    )
    refunded = (
        refunds.filter(pl.col("created_at") <= as_of)
        .group_by("order_id")
        .agg(pl.col("amount").sum().alias("_refunded"))
    )
    over = (
        orders.join(refunded, left_on="id", right_on="order_id", how="inner")
        .filter(pl.col("_refunded") > pl.col("total"))
        .select(
            "_row",
            "customer_id",
            key("overrefund", who(names), pl.col("id")).alias("key"),
            pl.lit("refunds exceed the order total: counted as a full refund").alias("reason"),
            pl.col("id").alias("order_id"),
        )
    )
    notes = fit_keys(pl.concat([notes, over]).sort("_row").drop("_row"))

    pending = pl.col("_pending")  # the window's, or as the earn entry holds the points
    earns = entries(
        orders.filter(pl.col("earned") > 0),
        customer_id=pl.col("customer_id"),
        key=key("earn", who(names), pl.col("id")),
        kind=pl.lit("earn"),
        at=pl.col("paid"),
        pending=pl.when(pending).then(pl.col("earned")).otherwise(0),
        approved=pl.when(pending).then(0).otherwise(pl.col("earned")),
        reason=pl.format("order {} paid: {} points", pl.col("id"), pl.col("earned"))
        + pl.when(pl.col("_earlier"))
        .then(pl.lit(" (earned under an earlier earn rule)"))
        .when(pl.col("multiplier") == "1")
        .then(pl.lit(""))
        .otherwise(pl.format(" (tier multiplier {})", pl.col("multiplier"))),
        order_id=pl.col("id"),
        value=pl.col("value"),
        multiplier=pl.col("multiplier"),
        _rank=pl.lit(RANK["earn"]),
        _sid=pl.col("id"),
        _sub=pl.lit(0),
    )
    joined = joined.join(orders.select("_row", "earned", "approve_at", "_pending"), on="_row")
    cancel = pl.col("cancelled_at")
    done = joined.filter(
        (pl.col("at") <= as_of)
        & (pl.col("earned") > 0)
        & (cancel.is_null() | (cancel > pl.col("at")))
    )
    share = pl.min_horizontal("_cum", "total")
    target = (
        pl.when(pl.col("total") == 0)
        .then(pl.col("earned"))
        .otherwise(
            pl.min_horizontal(
                pl.col("earned"),
                # a target is at most what was earned: 64 bits again once rounded
                half_up(pl.col("earned").cast(I128) * share, pl.col("total"))
                .clip(upper_bound=2**62)
                .cast(pl.Int64),
            )
        )
    )
    done = done.with_columns(
        target.cum_max().over("_row").clip(lower_bound=0).alias("_max")
    ).with_columns(
        (pl.col("_max") - pl.col("_max").shift(1).over("_row").fill_null(0)).alias("claw")
    )
    on_hold = pending & (pl.col("at") <= pl.col("approve_at"))
    claws = done.filter(pl.col("claw") > 0)
    refund_entries = entries(
        claws,
        customer_id=pl.col("customer_id"),
        key=key("clawback", who(names), pl.col("order_id"), pl.col("id")),
        kind=pl.lit("clawback"),
        at=pl.col("at"),
        pending=pl.when(on_hold).then(-pl.col("claw")).otherwise(0),
        approved=pl.when(on_hold).then(0).otherwise(-pl.col("claw")),
        reason=pl.format("refund {} on order {}", pl.col("id"), pl.col("order_id")),
        order_id=pl.col("order_id"),
        _rank=pl.lit(RANK["refund"]),
        _sid=pl.col("order_id"),
        _sub=pl.col("_sub"),
    )
    by_order = claws.group_by("_row").agg(
        pl.col("claw").sum().alias("_clawed"),
        pl.col("claw").filter(pl.col("at") <= pl.col("approve_at")).sum().alias("_early"),
    )
    orders = orders.join(by_order, on="_row", how="left").with_columns(
        pl.col("_clawed").fill_null(0), pl.col("_early").fill_null(0)
    )
    cancelled = orders.filter(
        (pl.col("earned") > 0) & cancel.is_not_null() & (cancel <= as_of)
    ).with_columns((pl.col("earned") - pl.col("_clawed")).alias("claw"))
    cancelled = cancelled.filter(pl.col("claw") > 0)
    cancel_held = pending & (cancel <= pl.col("approve_at"))
    cancel_entries = entries(
        cancelled,
        customer_id=pl.col("customer_id"),
        key=key("clawback", who(names), pl.col("id"), "cancel"),
        kind=pl.lit("clawback"),
        at=cancel,
        pending=pl.when(cancel_held).then(-pl.col("claw")).otherwise(0),
        approved=pl.when(cancel_held).then(0).otherwise(-pl.col("claw")),
        reason=pl.format("order {} cancelled", pl.col("id")),
        order_id=pl.col("id"),
        _rank=pl.lit(RANK["cancel"]),
        _sid=pl.col("id"),
        _sub=pl.lit(0),
    )
    parts = [earns, refund_entries, cancel_entries]
    early_cancel = cancel.is_not_null() & (cancel <= pl.col("approve_at"))
    left = orders.filter(pending & (pl.col("approve_at") <= as_of)).with_columns(
        (
            pl.col("earned")
            - pl.col("_early")
            - pl.when(early_cancel)
            .then(pl.col("earned") - pl.col("_clawed"))
            .otherwise(0)
            .clip(lower_bound=0)
        ).alias("left")
    )
    parts.append(
        entries(
            left.filter(pl.col("left") > 0),
            customer_id=pl.col("customer_id"),
            key=key("approve", who(names), pl.col("id")),
            kind=pl.lit("approve"),
            at=pl.col("approve_at"),
            pending=-pl.col("left"),
            approved=pl.col("left"),
            reason=pl.format(
                "order {} past the {}-day return window", pl.col("id"), pl.lit(pending_days)
            ),
            order_id=pl.col("id"),
            _rank=pl.lit(RANK["approve"]),
            _sid=pl.col("id"),
            _sub=pl.lit(0),
        )
    )
    bonuses = inputs.bonuses.filter((pl.col("at") <= as_of) & (pl.col("points") > 0))
    parts.append(
        entries(
            bonuses,
            customer_id=pl.col("customer_id"),
            key=pl.col("key"),
            kind=pl.lit("bonus"),
            at=pl.col("at"),
            pending=pl.lit(0),
            approved=pl.col("points"),
            reason=pl.col("reason"),
            order_id=pl.col("order_id"),
            _rank=pl.lit(RANK["bonus"]),
            _sid=pl.col("key"),
            _sub=pl.col("seq"),
        )
    )
    parts.append(
        entries(
            inputs.adjustments.filter(pl.col("at") <= as_of),
            customer_id=pl.col("customer_id"),
            key=key("adjust", pl.col("key")),
            kind=pl.lit("adjust"),
            at=pl.col("at"),
            pending=pl.lit(0),
            approved=pl.col("points"),
            reason=pl.col("reason"),
            _rank=pl.lit(RANK["adjust"]),
            _sid=pl.col("key"),
            _sub=pl.col("seq"),
        )
    )
    parts.append(birthday_entries(names, inputs.birthdays, settings, as_of))
    found = pl.concat(parts)
    activity = pl.concat(
        [
            earns.select("customer_id", "at"),
            bonuses.select("customer_id", "at"),
            parts[-1].select("customer_id", "at"),
        ]
    )
    expired, last = expiries(names, found, activity, settings, as_of)
    found = pl.concat([found, expired])  # sorted once, by the reader (derivations)
    base_index = -1 if base is None else base
    if path is not None:
        held = path.held
        changes = path.changes
        notes_due = progress(orders.filter(pl.col("earned") > 0), settings)
    else:
        held = pl.DataFrame(schema={"customer_id": CUSTOMER, "tier": pl.Int32, "until": pl.Int64})
        changes = pl.DataFrame(
            schema={
                "customer_id": CUSTOMER,
                "at": pl.Int64,
                "from": pl.Int32,
                "to": pl.Int32,
                "promoted": pl.Boolean,
            }
        )
        notes_due = pl.DataFrame(
            schema={
                "customer_id": CUSTOMER,
                "at": pl.Int64,
                "target": pl.Int32,
                "units": pl.Int64,
                "after": pl.Int32,
                "order_id": pl.String,
            }
        )

    later = pl.concat(
        [
            joined.filter(pl.col("at") > as_of).select("customer_id", "at"),
            orders.filter(cancel > as_of).select("customer_id", cancel.alias("at")),
            orders.filter(pending & (pl.col("approve_at") > as_of)).select(
                "customer_id", pl.col("approve_at").alias("at")
            ),
            facts.filter(pl.col("paid") > as_of).select("customer_id", pl.col("paid").alias("at")),
            *(
                f.filter(pl.col("at") > as_of).select("customer_id", "at")
                for f in (inputs.bonuses, inputs.adjustments, inputs.redemptions)
            ),
            last.filter(pl.col("expires_at") > as_of).select(
                "customer_id", pl.col("expires_at").alias("at")
            ),
            held.filter(pl.col("until") > as_of).select("customer_id", pl.col("until").alias("at")),
            next_birthdays(inputs.birthdays, as_of),
        ]
    )
    everyone = pl.concat(
        [
            facts.select("customer_id"),
            *(f.select("customer_id") for f in column_frames(inputs)),
        ]
    ).unique()
    summary = (
        everyone.join(
            found.group_by("customer_id").agg(pl.col("pending").sum(), pl.col("approved").sum()),
            on="customer_id",
            how="left",
        )
        .join(last, on="customer_id", how="left")
        .join(
            later.group_by("customer_id").agg(pl.col("at").min().alias("next_change")),
            on="customer_id",
            how="left",
        )
        .join(held, on="customer_id", how="left")
        .with_columns(
            pl.col("pending").fill_null(0),
            pl.col("approved").fill_null(0),
            pl.col("tier").fill_null(base_index),
        )
    )
    return ColumnLedger(found, notes, summary, frozenset(fallback), changes, notes_due)


def column_frames(inputs: ColumnInputs) -> tuple[pl.DataFrame, ...]:
    """The frames of ``inputs``, in field order (``ColumnInputs(*frames)`` rebuilds them)."""
    return (inputs.bonuses, inputs.adjustments, inputs.redemptions, inputs.birthdays, inputs.earned)
