"""Replenishment reminders and warranty notices: dates that follow from what was bought.

**Replenishment.** Each product has a usage period (days one unit lasts), taken from the
first of:

1. ``replenishment.usage_days_by_sku`` (the line's SKU),
2. ``usage_days_by_tag`` (the product's tags; the shortest matching period wins),
3. ``usage_days_by_type`` (the line's product type, else the product's),
4. learned: the median days per unit between consecutive purchases of the product by one
   customer, once there are ``min_repeat_pairs`` such pairs (research retention §8),

and none otherwise (no reminder; products with no type simply rely on SKU, tag or learning).
For every customer and product, the **last** purchase counts: the reminder is due at
``bought + kept units x period - days_before`` and is planned until ``late_days`` after the
expected run-out. Buying the product again moves "last purchase" to the new order, so the
old reminder is never planned again (key ``replenishment:{shop}:{customer}:{product}:{order}``).

**Warranty.** ``warranty.days_by_sku`` / ``days_by_tag`` / ``days_by_type`` give a length;
the warranty runs from the order date, and the notice is due ``days_before`` its end and
planned until it ends (key ``warranty_notice:{shop}:{order}:{product}``). Fully returned
lines have no warranty to remind of.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import polars as pl

from shopsync.core._candidates import Candidates, key_expr, short_keys, soonest
from shopsync.core._data import DAY_US, FEW_ROWS, Frames, column_rows
from shopsync.core._replenish_rows import _COMBO, _LATEST_US, Bought, _Combo, near_due
from shopsync.core._warranty_rows import warranty_due
from shopsync.core.actions import Action, Replenish, WarrantyNotice
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import _QUANTITY_UNIT, ShopStats, purchases
from shopsync.models import quantity_from_units

__all__ = [
    "configured_days",
    "replenishment",
    "replenishment_candidates",
    "replenishment_next_due",
    "warranty",
    "warranty_candidates",
    "warranty_next_due",
]


def configured_days(
    sku: str | None,
    tags: tuple[str, ...],
    product_type: str | None,
    by_sku: Mapping[str, int],
    by_tag: Mapping[str, int],
    by_type: Mapping[str, int],
) -> tuple[int, str] | None:
    """The configured period and where it came from, or None."""
    if sku and sku in by_sku:
        return by_sku[sku], f"SKU {sku}"
    matching = sorted((by_tag[t], t) for t in tags if t in by_tag)
    if matching:
        return matching[0][0], f"tag {matching[0][1]}"
    if product_type and product_type in by_type:
        return by_type[product_type], f"type {product_type}"
    return None


def _periods(
    rows: Iterable[_Combo], stats: ShopStats, policy: Policy
) -> dict[_Combo, tuple[float, str]]:
    """The period of each distinct (product, sku, type) of ``rows`` that has one."""
    r = policy.replenishment
    found: dict[_Combo, tuple[float, str]] = {}
    for pid, sku, ptype in rows:
        kind = ptype or stats.product_types.get(pid)
        conf = configured_days(
            sku,
            stats.product_tags.get(pid, ()),
            kind,
            r.usage_days_by_sku,
            r.usage_days_by_tag,
            r.usage_days_by_type,
        )
        if conf is not None:
            found[(pid, sku, ptype)] = (float(conf[0]), f"configured for {conf[1]}")
        elif pid in stats.usage_days:
            days, pairs = stats.usage_days[pid]
            found[(pid, sku, ptype)] = (days, f"learned from {pairs} repeat purchases")
    return found


def replenishment(
    frames: Frames, paid: pl.DataFrame, stats: ShopStats, policy: Policy
) -> list[Action]:
    return replenishment_candidates(frames, paid, stats, policy).actions()


def replenishment_candidates(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    bought: pl.DataFrame | Bought | None = None,
) -> Candidates:
    """:func:`replenishment` as candidates; ``bought``: :func:`purchases` of ``paid`` when
    the caller has it already."""
    r = policy.replenishment
    build = _replenish_builder(frames, policy)
    if not r.enabled:
        return Candidates(_EMPTY, build)
    at = frames.as_of
    held = _as_bought(bought, paid, frames)
    bought = held.frame
    if bought.height == 0:
        return Candidates(_EMPTY, build)
    is_last = held.is_last
    if bought.height <= FEW_ROWS:  # one customer's: in Python, no query (~0.3 ms each)
        mine = [row for row, last in zip(_rows(bought), is_last.to_list(), strict=True) if last]
        periods = _periods(dict.fromkeys(row[:3] for row in mine), stats, policy)
        if not periods or not _may_run_out(mine, periods, policy, at):
            return Candidates(_EMPTY, build)
    # the last purchases are most of the purchases: they are not copied, only the columns the
    # due date needs, and every column of the few due (1M orders: 41k of 1.5M); their (product,
    # sku, type) is one integer (``_key``; sku and type "" for none): at 10M orders the unique
    # and the join on the three texts each held some 2 GB
    combo = held.combo
    table = _period_table(held.firsts(is_last), stats, policy)
    if table.height == 0:
        return Candidates(_EMPTY, build)
    # kept x period in integers: ten-thousandths of a unit x microseconds per unit (exact for a
    # configured whole-day period), in 128 bits so a large quantity cannot overflow; only for
    # the rows a float's estimate finds near their due date (:func:`near_due`: the last
    # purchases joined to their periods were 14.5M rows, 1.4 GB, at 10M orders)
    period_us = (pl.col("period") * DAY_US).round().cast(pl.Int128)
    lasts = (pl.col("kept_units").cast(pl.Int128) * period_us) // _QUANTITY_UNIT
    near = near_due(bought, combo, is_last, table, (r.days_before, r.late_days), at)
    found = (
        pl.DataFrame([near, bought["kept_units"].gather(near), bought["created_at"].gather(near)])
        .lazy()
        .with_columns(combo.gather(near))
        .join(table.lazy().drop("source"), on="_key")
        .with_columns(
            (pl.col("created_at").cast(pl.Int128) + lasts)
            .clip(upper_bound=_LATEST_US)
            .cast(pl.Int64)
            .alias("runs_out")
        )
        .with_columns((pl.col("runs_out") - r.days_before * DAY_US).alias("due"))
        .filter((pl.col("due") <= at) & (at <= pl.col("runs_out") + r.late_days * DAY_US))
        .select("_i", "period", "_p", "runs_out", "due")
        .collect(engine="in-memory")
    )
    if found.height == 0:  # nothing due (a one-customer plan's usual case)
        return Candidates(_EMPTY, build)
    keys = [pl.col("sku").fill_null(""), pl.col("product_type").fill_null("")]
    due = (  # one query
        pl.concat([bought[found["_i"]].lazy().with_columns(*keys), found.lazy()], how="horizontal")
        .sort(["customer_id", "product_id"])
        .join(table.lazy().select("_p", "source"), on="_p", how="left", maintain_order="left")
        .select(*bought.columns, "period", "source", "runs_out", "due")
        .with_columns(pl.lit("replenishment").alias("kind"), pl.lit(True).alias("marketing"))
        .with_columns(
            key_expr(
                "replenishment",
                frames.shop,
                pl.col("customer_id"),
                pl.col("product_id"),
                pl.col("order_id"),
            )
        )
        .collect(engine="in-memory")
    )
    return Candidates(short_keys(due, "replenishment"), build)


def _as_bought(bought: pl.DataFrame | Bought | None, paid: pl.DataFrame, frames: Frames) -> Bought:
    """``bought`` as :class:`Bought`: the purchases of ``paid`` when None."""
    if isinstance(bought, Bought):
        return bought
    return Bought(purchases(paid, frames.lines, amounts=False) if bought is None else bought)


def _period_table(firsts: dict[int, _Combo], stats: ShopStats, policy: Policy) -> pl.DataFrame:
    """``_key, period, source, _p``: the period of each key (:attr:`Bought.combo`) of
    ``firsts`` that has one, ``_p`` the row's position."""
    periods = _periods(firsts.values(), stats, policy)
    found = [(key, *periods[combo]) for key, combo in firsts.items() if combo in periods]
    return pl.DataFrame(
        [(key, days, why, p) for p, (key, days, why) in enumerate(found)],
        schema={"_key": pl.UInt64, "period": pl.Float64, "source": pl.String, "_p": pl.Int64},
        orient="row",
    )


_Row = tuple[str, str | None, str | None, Any, Any]


def _rows(bought: pl.DataFrame) -> list[_Row]:
    """product_id, sku, product_type, kept_units, created_at of each purchase, as lists."""
    return list(column_rows(bought, *_COMBO, "kept_units", "created_at"))


def _may_run_out(
    rows: list[_Row], periods: Mapping[_Combo, tuple[float, str]], policy: Policy, at: int
) -> bool:
    """Whether a last purchase of ``rows`` may be due for replenishment at ``at``: the query's
    test, a day wider each way (a float's rounding never drops a row the query keeps)."""
    r = policy.replenishment
    by_key: dict[_Combo, list[float]] = {}
    for (pid, sku, ptype), (days, _) in periods.items():
        by_key.setdefault((pid, sku or "", ptype or ""), []).append(days)
    for pid, sku, ptype, kept, created in rows:
        for days in by_key.get((pid, sku or "", ptype or ""), ()):
            if kept is None or created is None:
                return True  # the query decides
            try:
                lasts = kept * round(days * DAY_US) // _QUANTITY_UNIT
            except (OverflowError, ValueError):  # not a finite period: the query decides
                return True
            runs_out = min(created + lasts, _LATEST_US)
            due = runs_out - r.days_before * DAY_US
            if due <= at + DAY_US and at <= runs_out + (r.late_days + 1) * DAY_US:
                return True
    return False


def _replenish_builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    # the names, not the frames: held actions, built when first read, keep their builder
    platform, shop = frames.platform, frames.shop
    r = policy.replenishment

    def build(row: dict[str, Any]) -> Action:
        runs_out = from_micros(row["runs_out"])
        kept = quantity_from_units(row["kept_units"])
        return Replenish(
            platform=platform,
            shop=shop,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"{kept} unit(s) of product {row['product_id']} bought with order "
                f"{row['order_id']} last {row['period']:.0f} days each ({row['source']}): "
                f"they run out around {runs_out.date().isoformat()}"
            ),
            facts={
                "product_id": row["product_id"],
                "order_id": row["order_id"],
                "quantity": str(kept),
                "period_days": round(row["period"], 2),
                "period_source": row["source"],
                "runs_out_at": runs_out.isoformat(),
                "days_before": r.days_before,
            },
            idempotency_key=row["key"],
            product_id=row["product_id"],
            order_id=row["order_id"],
            quantity=kept,
            runs_out_at=runs_out,
        )

    return build


def warranty(frames: Frames, paid: pl.DataFrame, stats: ShopStats, policy: Policy) -> list[Action]:
    return warranty_candidates(frames, paid, stats, policy).actions()


def warranty_candidates(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    bought: pl.DataFrame | Bought | None = None,
) -> Candidates:
    """:func:`warranty` as candidates; ``bought``: :func:`purchases` of ``paid`` when the
    caller has it already (the orders old enough to be out of every warranty are cut here)."""
    w = policy.warranty
    build = _warranty_builder(frames)
    if not w.enabled or not (w.days_by_sku or w.days_by_tag or w.days_by_type):
        return Candidates(_EMPTY, build)
    at = frames.as_of
    longest = max([*w.days_by_sku.values(), *w.days_by_tag.values(), *w.days_by_type.values()])
    since = at - longest * DAY_US - w.days_before * DAY_US
    recent = pl.col("created_at") >= since
    held = _as_bought(bought, paid.filter(recent) if bought is None else paid, frames)
    bought = held.frame
    newest = bought["created_at"].max()
    if not isinstance(newest, int) or newest < since:  # nothing within a warranty's reach
        return Candidates(_EMPTY, build)
    # as in replenishment: the purchases in a warranty's reach are not copied (1M orders: 1M
    # of 1.5M), only the columns the dates need; every column of the few due
    if bought.height <= FEW_ROWS:  # one customer's: in Python, no query (~0.3 ms each)
        mine = [row for row in _rows(bought) if row[4] is not None and row[4] >= since]
        table = _warranty_lengths(dict.fromkeys(row[:3] for row in mine), stats, policy)
        if table is None or not _may_end(mine, table, policy, at):
            return Candidates(_EMPTY, build)
        due = warranty_due(bought, table, since, at, w.days_before, frames.shop)
        found_any = due.height > 0
        return Candidates(short_keys(due, "warranty_notice") if found_any else _EMPTY, build)
    # (product, sku, type) one integer, as in replenishment: at 10M orders the unique and the
    # join on the three texts held 2.7 GB; the due rows found over every purchase, no copy
    near = (bought["created_at"] >= since).fill_null(False)
    combo = held.combo
    lengths = {key: _warranty_length(c, stats, policy) for key, c in held.firsts(near).items()}
    covered = [(key, *conf) for key, conf in lengths.items() if conf is not None]
    table = pl.DataFrame(
        [(*row, p) for p, row in enumerate(covered)],
        schema={"_key": pl.UInt64, "days": pl.Int64, "source": pl.String, "_p": pl.Int64},
        orient="row",
    )
    if table.height == 0:
        return Candidates(_EMPTY, build)
    days = pl.lit(combo).replace_strict(table["_key"], table["days"], default=None)
    ends = pl.col("created_at") + days * DAY_US
    hit = (ends - w.days_before * DAY_US <= at) & (at < ends) & recent
    rows = bought.select(hit.arg_true().cast(pl.Int64).alias("_i")).to_series()
    found = (
        pl.DataFrame([rows, bought["created_at"].gather(rows), combo.gather(rows)])
        .lazy()
        .join(table.lazy().drop("source"), on="_key")
        .with_columns((pl.col("created_at") + pl.col("days") * DAY_US).alias("ends"))
        .with_columns((pl.col("ends") - w.days_before * DAY_US).alias("due"))
        .select("_i", "days", "_p", "ends", "due")
        .collect(engine="in-memory")
    )
    keys = [pl.col("sku").fill_null(""), pl.col("product_type").fill_null("")]
    if found.height == 0:
        return Candidates(_EMPTY, build)
    due = (  # one query
        pl.concat([bought[found["_i"]].lazy().with_columns(*keys), found.lazy()], how="horizontal")
        .sort(["order_id", "product_id"])
        .join(table.lazy().select("_p", "source"), on="_p", how="left", maintain_order="left")
        .select(*bought.columns, "days", "source", "ends", "due")
        .with_columns(pl.lit("warranty_notice").alias("kind"), pl.lit(True).alias("marketing"))
        .with_columns(
            key_expr("warranty_notice", frames.shop, pl.col("order_id"), pl.col("product_id"))
        )
        .collect(engine="in-memory")
    )
    return Candidates(short_keys(due, "warranty_notice"), build)


def _warranty_builder(frames: Frames) -> Callable[[dict[str, Any]], Action]:
    # the names, not the frames: held actions, built when first read, keep their builder
    platform, shop = frames.platform, frames.shop

    def build(row: dict[str, Any]) -> Action:
        pid, days, source = row["product_id"], row["days"], row["source"]
        end = from_micros(row["ends"])
        return WarrantyNotice(
            platform=platform,
            shop=shop,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"the {days}-day warranty ({source}) of product {pid} from order "
                f"{row['order_id']} ends on {end.date().isoformat()}"
            ),
            facts={
                "product_id": pid,
                "order_id": row["order_id"],
                "warranty_days": days,
                "warranty_source": source,
                "expires_at": end.isoformat(),
            },
            idempotency_key=row["key"],
            product_id=pid,
            order_id=row["order_id"],
            expires_at=end,
        )

    return build


def replenishment_next_due(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    bought: pl.DataFrame | Bought | None = None,
) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new reminder due (issue 19): each last purchase's run-out date less ``days_before``,
    from the same periods as :func:`replenishment_candidates`."""
    r = policy.replenishment
    at = frames.as_of
    if not r.enabled:
        return soonest([], at)
    held = _as_bought(bought, paid, frames)
    bought = held.frame
    if bought.height == 0:
        return soonest([], at)
    # replenishment_candidates' codes, found once for both (no text unique or join over the
    # purchases: at 43k customers' 1.4M purchases they were most of the programs' due moments)
    is_last, combo = held.is_last, held.combo
    table = _period_table(held.firsts(is_last), stats, policy)
    if table.height == 0:
        return soonest([], at)
    period = pl.lit(combo).replace_strict(table["_key"], table["period"], default=None)
    period_us = (period * DAY_US).round().cast(pl.Int128)
    lasts = (pl.col("kept_units").cast(pl.Int128) * period_us) // _QUANTITY_UNIT
    moments = (
        bought.lazy()
        .select(
            "customer_id",
            (
                (pl.col("created_at").cast(pl.Int128) + lasts)
                .clip(upper_bound=_LATEST_US)
                .cast(pl.Int64)
                - r.days_before * DAY_US
            ).alias("moment"),
            pl.lit(is_last).alias("_last"),
        )
        .filter(pl.col("_last"))
    )
    return soonest([moments], at)


def warranty_next_due(
    frames: Frames,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
    bought: pl.DataFrame | Bought | None = None,
) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new warranty notice due (issue 19): each purchase's warranty end less ``days_before``."""
    w = policy.warranty
    at = frames.as_of
    if not w.enabled or not (w.days_by_sku or w.days_by_tag or w.days_by_type):
        return soonest([], at)
    held = _as_bought(bought, paid, frames)
    if held.frame.height == 0:
        return soonest([], at)
    every = pl.repeat(True, held.frame.height, dtype=pl.Boolean, eager=True)
    lengths = {key: _warranty_length(c, stats, policy) for key, c in held.firsts(every).items()}
    covered = {key: conf[0] for key, conf in lengths.items() if conf is not None}
    if not covered:
        return soonest([], at)
    keys, values = pl.Series(list(covered), dtype=pl.UInt64), list(covered.values())
    days = pl.lit(held.combo).replace_strict(keys, values, default=None, return_dtype=pl.Int64)
    moments = held.frame.lazy().select(
        "customer_id", (pl.col("created_at") + (days - w.days_before) * DAY_US).alias("moment")
    )
    return soonest([moments], at)


def _may_end(rows: list[_Row], table: pl.DataFrame, policy: Policy, at: int) -> bool:
    """Whether a purchase of ``rows`` may be due for its warranty notice at ``at``: the
    query's test on :func:`_warranty_lengths`' ``table``, a day wider each way."""
    w = policy.warranty
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for pid, sku, ptype, days in column_rows(table, *_COMBO, "days"):
        by_key.setdefault((pid, sku, ptype), []).append(days)
    for pid, sku, ptype, _, created in rows:
        for days in by_key.get((pid, sku or "", ptype or ""), ()):
            ends = created + days * DAY_US
            if ends - w.days_before * DAY_US <= at + DAY_US and at < ends + DAY_US:
                return True
    return False


def _warranty_length(combo: _Combo, stats: ShopStats, policy: Policy) -> tuple[int, str] | None:
    """The warranty of a (product, sku, type) and where it came from, or None."""
    w = policy.warranty
    pid, sku, ptype = combo
    kind = ptype or stats.product_types.get(pid)
    tags = stats.product_tags.get(pid, ())
    return configured_days(sku, tags, kind, w.days_by_sku, w.days_by_tag, w.days_by_type)


def _warranty_lengths(
    combos: Iterable[_Combo], stats: ShopStats, policy: Policy
) -> pl.DataFrame | None:
    """``product_id, sku, product_type, days, source`` of the ``combos`` (product, sku, type)
    a warranty covers, sku and type as ``""`` when missing; None: none is covered."""
    lengths = []
    for pid, sku, ptype in combos:
        conf = _warranty_length((pid, sku, ptype), stats, policy)
        if conf is not None:
            lengths.append((pid, sku or "", ptype or "", conf[0], conf[1]))
    if not lengths:
        return None
    return pl.DataFrame(
        lengths,
        schema={
            "product_id": pl.String,
            "sku": pl.String,
            "product_type": pl.String,
            "days": pl.Int64,
            "source": pl.String,
        },
        orient="row",
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
