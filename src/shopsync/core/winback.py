"""Win-back: a short sequence for customers who have gone quiet for longer than is usual.

When is a customer lapsing? When the time since their last paid order passes their own
rhythm:

- a **repeat buyer** (two or more paid orders): ``repeat_gap_multiple`` x the median gap
  between their orders, but not before ``repeat_min_days`` (Klaviyo's win-back delay is the
  average time between orders);
- a **one-time buyer**: the shop's typical wait for a second order, i.e. the later of
  ``min_days`` and ``gap_multiple`` x the shop's median first-to-second-order gap, or
  ``fallback_days`` when fewer than ``min_repeat_customers`` customers ever came back
  (research retention §8: max(60 d, 1.5 x median), 90 d when data is thin);
- or earlier, when the **MBG/NBD** probability of being alive (:mod:`shopsync.clv`, fitted
  on the shop behind Klaviyo's data gate) falls below ``alive_threshold`` — but never within
  ``model_min_days`` of the last order. MBG/NBD rather than BG/NBD because under BG/NBD a
  one-time buyer is alive with probability 1 forever.

The sequence then runs ``steps`` messages over ``span_days``: a reminder without discount,
offers, and a last chance. Every key carries the last order's id
(``winback:{shop}:{customer}:{last order}:stage{n}``), so a new order ends the sequence and a
later lapse starts a fresh one. Only the stage due now is planned: a stage that was missed is
not sent later (Klaviyo does not reschedule skipped messages), and the last stage expires
``late_days`` after it was due. Coupons never go out while any order of the customer
(cancelled and unpaid ones included: the coupon-then-refund loop) is younger than
``no_coupon_days_after_order``; the offer stages wait for that instead. A customer with an
unpaid, uncancelled order newer than their last paid one is not lapsing: they just ordered.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from shopsync.core._candidates import Candidates, key_expr, short_keys, soonest
from shopsync.core._data import DAY_US, FEW_ROWS, Frames, column_rows
from shopsync.core.actions import Action, WinBack
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import ShopStats, model_lapse_day

__all__ = ["rhythm", "stage_plan", "winback", "winback_candidates", "winback_next_due"]


def rhythm(paid: pl.DataFrame, stats: ShopStats, policy: Policy, at: int) -> pl.DataFrame:
    """One row per customer with a paid order: the lapse threshold and what it rests on.

    Columns: customer_id, orders, last_order_id, last_order_at, first_day, days (distinct
    purchase days), t_x_days, median_gap_days, threshold_days, basis.
    """
    wb = policy.winback
    if paid.height <= FEW_ROWS:  # a customer's few orders: in Python, no query (~0.3 ms)
        few = _few_rhythm(paid, stats, policy)
        if few is not None:
            return few
    day = pl.col("created_at") // DAY_US
    # each customer's orders in time order within the group: no sort of every paid order
    # one lazy query (one collect): a one-customer plan pays Polars' per-query cost once
    per = (
        paid.lazy()
        .group_by("customer_id")
        .agg(
            pl.len().alias("orders"),
            pl.col("id").sort_by(["created_at", "id"]).last().alias("last_order_id"),
            pl.col("created_at").max().alias("last_order_at"),
            day.min().alias("first_day"),
            day.n_unique().alias("days"),
            (day.max() - day.min()).alias("t_x_days"),
            (pl.col("created_at").sort().diff() / DAY_US).median().alias("median_gap_days"),
        )
    )
    own = pl.max_horizontal(
        pl.lit(float(wb.repeat_min_days)),
        pl.col("median_gap_days") * float(wb.repeat_gap_multiple),
    )
    repeat = (pl.col("orders") >= 2) & pl.col("median_gap_days").is_not_null()
    return (
        per.with_columns(
            pl.when(repeat)
            .then(own)
            .otherwise(pl.lit(stats.one_time_days))
            .alias("threshold_days"),
            pl.when(repeat)
            .then(pl.lit("own rhythm"))
            .otherwise(pl.lit("shop rhythm"))
            .alias("basis"),
        )
        .sort("customer_id")
        .collect(engine="in-memory")
    )


RHYTHM = {
    "customer_id": pl.String,
    "orders": pl.UInt32,
    "last_order_id": pl.String,
    "last_order_at": pl.Int64,
    "first_day": pl.Int64,
    "days": pl.UInt32,
    "t_x_days": pl.Int64,
    "median_gap_days": pl.Float64,
    "threshold_days": pl.Float64,
    "basis": pl.String,
}
""":func:`rhythm`'s columns."""


def _few_rhythm(paid: pl.DataFrame, stats: ShopStats, policy: Policy) -> pl.DataFrame | None:
    """:func:`rhythm` of a few orders, walked in Python (the median by Polars' own, on a
    Series: no query); None when a key is missing (the query decides)."""
    wb = policy.winback
    groups: dict[str, list[tuple[int, str]]] = {}
    for cid, created, oid in column_rows(paid, "customer_id", "created_at", "id"):
        if cid is None or created is None or oid is None:
            return None
        groups.setdefault(cid, []).append((created, oid))
    rows = []
    for cid in sorted(groups):
        mine = sorted(groups[cid])
        moments = [created for created, _ in mine]
        days = [created // DAY_US for created in moments]
        # divided by Polars, as the query does: Python's ``/`` may differ in the last bit
        gaps = pl.Series([b - a for a, b in itertools.pairwise(moments)], dtype=pl.Int64)
        median = (gaps / DAY_US).median() if len(gaps) else None
        repeat = len(mine) >= 2 and median is not None
        threshold = (
            max(float(wb.repeat_min_days), median * float(wb.repeat_gap_multiple))  # type: ignore[operator]
            if repeat
            else stats.one_time_days
        )
        basis = "own rhythm" if repeat else "shop rhythm"
        first, last = min(days), max(days)
        row = (cid, len(mine), mine[-1][1], moments[-1], first, len(set(days)), last - first)
        rows.append((*row, median, threshold, basis))
    return pl.DataFrame(rows, schema=RHYTHM, orient="row")


def stage_plan(policy: Policy) -> list[tuple[int, str, float]]:
    """(stage number, name, days after the sequence starts) for every stage."""
    wb = policy.winback
    if wb.steps == 1:
        return [(1, "reminder", 0.0)]
    out = []
    for i in range(wb.steps):
        name = "reminder" if i == 0 else "last_chance" if i == wb.steps - 1 else "offer"
        out.append((i + 1, name, wb.span_days * i / (wb.steps - 1)))
    return out


def winback(frames: Frames, paid: pl.DataFrame, stats: ShopStats, policy: Policy) -> list[Action]:
    """The win-back stage due at ``frames.as_of`` for every lapsing customer."""
    return winback_candidates(frames, paid, stats, policy).actions()


def winback_candidates(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    pace: pl.DataFrame | None = None,
) -> Candidates:
    """:func:`winback` as candidates (built into actions only when kept); ``pace``: the
    :func:`rhythm` of ``paid`` when the caller has it already."""
    wb = policy.winback
    build = _builder(frames, policy)
    if not wb.enabled or paid.height == 0:
        return Candidates(_EMPTY, build)
    at = frames.as_of
    stages = stage_plan(policy)
    window = wb.no_coupon_days_after_order * DAY_US
    span = int(stages[-1][2] * DAY_US) + wb.late_days * DAY_US + window
    running = (pl.col("start") <= at) & (pl.col("start") >= at - span)
    table = rhythm(paid, stats, policy, at) if pace is None else pace
    if table.height <= FEW_ROWS and not _may_start(table, stats, policy, at - span, at):
        return Candidates(_EMPTY, build)  # a customer's few rows: no query to find nothing
    starting = _starts(table, stats, policy, running)
    if starting.height == 0:  # nobody's sequence runs now (a one-customer plan's usual case)
        return Candidates(_EMPTY, build)
    # only their orders are grouped below (1M orders: 10k customers' of 100k)
    # (one lazy query: one collect)
    theirs = frames.orders.lazy().join(
        starting.lazy().select("customer_id"), on="customer_id", how="semi", nulls_equal=True
    )
    # coupons wait for the return window of the newest order of any kind
    latest_any = theirs.group_by("customer_id").agg(pl.col("created_at").max().alias("latest_any"))
    pending = (
        theirs.filter(pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
        .group_by("customer_id")
        .agg(pl.col("created_at").max().alias("latest_live"))
    )
    due = (
        starting.lazy()
        .join(latest_any, on="customer_id", how="left")
        .join(pending, on="customer_id", how="left")
        .filter(
            pl.col("latest_live").is_null() | (pl.col("latest_live") <= pl.col("last_order_at"))
        )
        .collect(engine="in-memory")
    )
    if due.height == 0:
        return Candidates(_EMPTY, build)
    alive = _p_alive_raw(stats, due, at)
    # every stage's moment; the stage due now is the last one whose moment has come and
    # whose successor's has not (the last stage lapses ``late_days`` after it was due)
    whens, coupons = _whens(policy, window)
    current: pl.Expr = pl.lit(None, dtype=pl.Int64)
    for i in range(len(stages)):
        when = pl.col(f"_when{i}")
        nxt = pl.col(f"_when{i + 1}") if i + 1 < len(stages) else when + wb.late_days * DAY_US + 1
        current = pl.when((when <= at) & (pl.lit(at) < nxt)).then(pl.lit(i)).otherwise(current)
    index = pl.col("_stage")
    picked = (  # one query
        due.lazy()
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("p_alive")
            if alive is None
            else pl.lit(pl.Series("p_alive", alive, dtype=pl.Float64))
        )
        .with_columns(w.alias(f"_when{i}") for i, w in enumerate(whens))
        .with_columns(current.alias("_stage"))
        .filter(pl.col("_stage").is_not_null())
        .with_columns(
            (index + 1).alias("stage"),
            index.replace_strict(
                list(range(len(stages))), [n for _, n, _ in stages], return_dtype=pl.String
            ).alias("stage_name"),
            index.replace_strict(list(range(len(stages))), coupons, return_dtype=pl.Boolean).alias(
                "coupon"
            ),
            pl.coalesce(
                [pl.when(index == i).then(pl.col(f"_when{i}")) for i in range(len(stages))]
            ).alias("due"),
            pl.lit("winback").alias("kind"),
            pl.lit(True).alias("marketing"),
        )
        .with_columns(
            key_expr(
                "winback",
                frames.shop,
                pl.col("customer_id"),
                pl.col("last_order_id"),
                pl.concat_str(pl.lit("stage"), pl.col("stage").cast(pl.String)),
            )
        )
        .collect(engine="in-memory")
    )
    picked = short_keys(picked, "winback")
    return Candidates(picked, build)


def _starts(
    table: pl.DataFrame, stats: ShopStats, policy: Policy, keep: pl.Expr | None = None
) -> pl.DataFrame:
    """:func:`rhythm`'s table with ``start``: when the sequence starts (the rhythm's
    threshold or, earlier, the MBG/NBD crossing), and ``by_model``; only the rows ``keep``
    holds for when given (in the same query)."""
    wb = policy.winback
    start = pl.col("last_order_at") + (pl.col("threshold_days") * DAY_US).cast(pl.Int64)
    # one lazy query (one collect) over the columns below
    found = table.lazy().with_columns(start.alias("rhythm_at"))
    model_at = _model_at(table, stats, policy)
    if model_at is not None:
        found = found.with_columns(
            pl.max_horizontal(
                pl.lit(pl.Series("model_at", model_at)),
                pl.col("last_order_at") + wb.model_min_days * DAY_US,
            ).alias("model_at")
        )
    else:
        found = found.with_columns(pl.lit(None, dtype=pl.Int64).alias("model_at"))
    found = found.with_columns(
        pl.min_horizontal("rhythm_at", "model_at").alias("start"),
        (pl.col("model_at").is_not_null() & (pl.col("model_at") < pl.col("rhythm_at"))).alias(
            "by_model"
        ),
    )
    return (found if keep is None else found.filter(keep)).collect(engine="in-memory")


def _model_at(table: pl.DataFrame, stats: ShopStats, policy: Policy) -> np.ndarray | None:
    """Where the MBG/NBD crossing puts each row's start (micros, before its floor of
    ``model_min_days``); None when the model is off."""
    wb = policy.winback
    if stats.mbg is None or wb.alive_threshold <= 0:
        return None
    x = (table["days"] - 1).to_numpy().astype(np.float64)
    t_x = table["t_x_days"].to_numpy().astype(np.float64)
    crossing = model_lapse_day(stats.mbg, x, t_x, float(wb.alive_threshold))
    model_at: np.ndarray = table["first_day"].to_numpy() * DAY_US + np.nan_to_num(
        crossing * DAY_US, nan=np.inf, posinf=np.inf
    ).clip(max=2**62).astype(np.int64)
    return model_at


def _may_start(
    table: pl.DataFrame, stats: ShopStats, policy: Policy, since: int, until: int
) -> bool:
    """Whether a sequence of ``table`` (:func:`rhythm`'s) may start within ``since`` and
    ``until``: :func:`_starts`' moments in Python, the test a day wider each way (a float's
    rounding never drops a row the query keeps); the query decides the rows."""
    wb = policy.winback
    lasts, thresholds = table["last_order_at"].to_list(), table["threshold_days"].to_list()
    model = _model_at(table, stats, policy)
    for i, (last, days) in enumerate(zip(lasts, thresholds, strict=True)):
        if last is None or days is None or not math.isfinite(days):
            return True
        start = last + int(days * DAY_US)
        if model is not None:
            start = min(start, max(int(model[i]), last + wb.model_min_days * DAY_US))
        if since - DAY_US <= start <= until + DAY_US:
            return True
    return False


def _whens(policy: Policy, window: int) -> tuple[list[pl.Expr], list[bool]]:
    """Every stage's moment (over ``start`` and ``latest_any``) and whether it is a coupon."""
    wb = policy.winback
    stages = stage_plan(policy)
    # a coupon stage pushed past the return window pushes the stages after it by as much,
    # so the offer still comes before the last chance instead of both falling on one moment
    whens: list[pl.Expr] = []
    coupons: list[bool] = []
    shift: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for _number, name, offset in stages:
        planned = pl.col("start") + int(offset * DAY_US)
        when = planned + shift
        coupon = name != "reminder" and wb.discount_percent > 0
        if coupon:
            when = pl.max_horizontal(when, pl.col("latest_any") + window)
            shift = when - planned
        whens.append(when)
        coupons.append(coupon)
    return whens, coupons


def winback_next_due(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    pace: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new win-back stage due (issue 19): the sequence's start or a later stage's moment, from
    the same thresholds as :func:`winback_candidates` (a cancellation that lifts the "just
    ordered" rule is a moment of the caller's); ``pace``: as :func:`winback_candidates`'."""
    wb = policy.winback
    at = frames.as_of
    if not wb.enabled or paid.height == 0:
        return soonest([], at)
    table = _starts(rhythm(paid, stats, policy, at) if pace is None else pace, stats, policy)
    latest_any = frames.orders.group_by("customer_id").agg(
        pl.col("created_at").max().alias("latest_any")
    )
    table = table.join(latest_any, on="customer_id", how="left")
    whens, _ = _whens(policy, wb.no_coupon_days_after_order * DAY_US)
    return soonest(
        [table.select("customer_id", pl.col("start").alias("moment"))]
        + [table.select("customer_id", w.alias("moment")) for w in whens],
        at,
    )


_EMPTY = pl.DataFrame(
    schema={
        "customer_id": pl.String,
        "kind": pl.String,
        "due": pl.Int64,
        "key": pl.String,
        "marketing": pl.Boolean,
    }
)


def _builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    # the names, not the frames: held actions, built when first read, keep their builder
    where = (frames.platform, frames.shop, frames.as_of)

    def build(row: dict[str, Any]) -> Action:
        p = row["p_alive"]
        return _action(
            where,
            row,
            None if p is None else round(float(p), 4),
            row["stage"],
            row["stage_name"],
            row["due"],
            row["coupon"],
            policy,
        )

    return build


def _p_alive_raw(stats: ShopStats, due: pl.DataFrame, at: int) -> np.ndarray | None:
    if stats.mbg is None:
        return None
    from shopsync import clv

    x = (due["days"] - 1).to_numpy().astype(np.float64)
    t_x = due["t_x_days"].to_numpy().astype(np.float64)
    T = (at // DAY_US - due["first_day"].to_numpy()).astype(np.float64)
    p: np.ndarray = clv.probability_alive(stats.mbg, x, t_x, np.maximum(T, t_x))
    return p


def _action(
    where: tuple[str, str, int],
    row: dict[str, object],
    p_alive: float | None,
    number: int,
    name: str,
    when: int,
    coupon: bool,
    policy: Policy,
) -> WinBack:
    wb = policy.winback
    platform, shop, at = where
    customer_id = str(row["customer_id"])
    last_id = str(row["last_order_id"])
    since = (at - int(row["last_order_at"])) / DAY_US  # type: ignore[call-overload]
    threshold = float(row["threshold_days"])  # type: ignore[arg-type]
    if row["by_model"]:
        why = f"the chance they still buy fell below {wb.alive_threshold}"
        trigger = "model"
    elif row["basis"] == "own rhythm":
        why = (
            f"past {wb.repeat_gap_multiple} x their usual {row['median_gap_days']:.0f}-day "
            f"gap ({threshold:.0f} days)"
        )
        trigger = "rhythm"
    else:
        why = f"past the shop's wait for a second order ({threshold:.0f} days)"
        trigger = "rhythm"
    steps = len(stage_plan(policy))
    label = name.replace("_", " ")
    reason = f"no order for {since:.0f} days, {why}: win-back {number} of {steps} ({label})"
    return WinBack(
        platform=platform,
        shop=shop,
        customer_id=customer_id,
        due_at=from_micros(when),
        reason=reason,
        facts={
            "last_order_id": last_id,
            "days_since_last_order": round(since, 2),
            "threshold_days": round(threshold, 2),
            "basis": row["basis"],
            "median_gap_days": row["median_gap_days"],
            "orders": row["orders"],
            "p_alive": p_alive,
            "stage": number,
            "stage_name": name,
        },
        idempotency_key=str(row["key"]),
        stage=number,
        stage_name=name,
        last_order_id=last_id,
        trigger=trigger,
        discount_percent=wb.discount_percent if coupon else None,
    )
