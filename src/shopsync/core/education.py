"""Education series: teach customers to get more out of what they bought.

The rule (docs/programs.md, "Education series"; settings ``[education]``):

- **which purchases**: a line of a product whose type (the line's, else the product's) or one
  of whose tags is named by a series (case-insensitive), in an order that counts as a purchase
  (paid, not cancelled), is not fully refunded and has reached the customer; the line's kept
  quantity (bought minus returned) must be above zero;
- **once per customer and series**: the customer's first such purchase (by the moment it
  was received) starts the series, and buying the same kind of product again never starts it
  over; keys ``education:{shop}:{customer}:{series}:{template}``;
- **when**: each step ``days`` after the purchase was received: delivery when every
  shipment of the order has a delivery date, else the last shipment; only the current step is
  planned, until ``max_late_days`` after it was due;
- **stops on a return**: a purchase fully refunded or whose lines were all returned no longer
  counts, so its series plans nothing more (the customer's next qualifying purchase, if any,
  carries it on; steps already sent are never sent again: their keys are done).

Marketing by default (:class:`~shopsync.core.aftercare_actions.EducationMessage`): consent, the
holdout, quiet hours and the frequency cap apply as to every marketing program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from shopsync.core._candidates import Candidates, key_column, soonest
from shopsync.core._data import DAY_US, Frames
from shopsync.core.actions import Action
from shopsync.core.aftercare_actions import EducationCrossSell, EducationMessage
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import ShopStats

__all__ = ["education_candidates", "education_messages", "education_next_due"]

_FAILED = ("cancelled", "canceled", "failure", "error")
_COMMON: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "kind": pl.String(),
    "due": pl.Int64(),
    "key": pl.String(),
    "marketing": pl.Boolean(),
}


def education_messages(
    frames: Frames, paid: pl.DataFrame, stats: ShopStats, policy: Policy
) -> list[Action]:
    return education_candidates(frames, paid, stats, policy).actions()


def education_candidates(
    frames: Frames, paid: pl.DataFrame, stats: ShopStats, policy: Policy
) -> Candidates:
    """The education steps due at ``frames.as_of`` (``paid``: :func:`paid_orders`)."""
    e = policy.education
    build = _builder(frames)
    none = Candidates(pl.DataFrame(schema=_COMMON), build)
    if not e.enabled or not e.series or paid.height == 0:
        return none
    at = frames.as_of
    lines = (
        frames.lines.lazy()
        .filter(pl.col("product_id").is_not_null())
        .with_columns(pl.col("product_type").fill_null(""))
    )
    pairs = _series_of(lines, stats, policy)
    if pairs.height == 0:
        return none
    matching = lines.join(pairs.lazy(), on=["product_id", "product_type"])
    ok = (pl.col("created_at") <= at) & ~pl.col("status").str.to_lowercase().is_in(_FAILED)
    shipments = frames.fulfillments.lazy().filter(ok)
    # only customers with a purchase received recently enough for a step to be due can have
    # one; their whole history then decides which purchase was their first
    longest = max(step.days for series in e.series for step in series.steps)
    since = at - (longest + e.max_late_days) * DAY_US
    recent = shipments.filter(
        (pl.col("created_at") >= since)
        | ((pl.col("delivered_at") >= since) & (pl.col("delivered_at") <= at))
    ).select("order_id")
    owners = (
        paid.lazy().filter(pl.col("net") > 0).select(pl.col("id").alias("order_id"), "customer_id")
    )
    customers = (
        matching.join(recent, on="order_id", how="semi")
        .join(owners, on="order_id")
        .select("customer_id")
        .unique()
    )
    theirs = owners.join(customers, on="customer_id", how="semi")
    received = (
        shipments.join(theirs, on="order_id", how="semi")
        .group_by("order_id")
        .agg(
            pl.col("created_at").max().alias("shipped"),
            pl.col("delivered_at").filter(pl.col("delivered_at") <= at).max().alias("arrived"),
            pl.len().alias("n"),
            (pl.col("delivered_at") <= at).sum().alias("delivered"),
        )
        .with_columns(
            pl.when(pl.col("delivered") == pl.col("n"))
            .then(pl.col("arrived"))
            .otherwise(pl.col("shipped"))
            .alias("anchor"),
            (pl.col("delivered") == pl.col("n")).alias("after_delivery"),
        )
        .select("order_id", "anchor", "after_delivery")
    )
    matched = (
        matching.join(theirs, on="order_id")
        .group_by("customer_id", "order_id", "product_id", "series")
        .agg((pl.col("quantity") - pl.col("refunded_quantity")).sum().alias("kept"))
        .filter(pl.col("kept") > 0)
        .join(received, on="order_id")
        .collect(engine="in-memory")
    )
    if matched.height == 0:
        return none
    first = (
        matched.sort(["customer_id", "series", "anchor", "order_id"])
        .group_by("customer_id", "series", maintain_order=True)
        .agg(pl.col("order_id").first(), pl.col("anchor").first(), pl.col("after_delivery").first())
    )
    products = (
        matched.join(
            first.select("customer_id", "series", "order_id"),
            on=["customer_id", "series", "order_id"],
        )
        .group_by("customer_id", "series")
        .agg(pl.col("product_id").unique().sort().alias("product_ids"))
    )
    steps = pl.DataFrame(
        [
            (s.name, n, step.template, step.days, step.recommend)
            for s in e.series
            for n, step in enumerate(s.steps, start=1)
        ],
        schema={
            "series": pl.String,
            "step": pl.Int64,
            "template": pl.String,
            "days": pl.Int64,
            "recommend": pl.Boolean,
        },
        orient="row",
    )
    due = (
        first.join(steps, on="series")
        .with_columns((pl.col("anchor") + pl.col("days") * DAY_US).alias("due"))
        .filter(pl.col("due") <= at)
        .sort(["customer_id", "series", "step"])
        .group_by("customer_id", "series", maintain_order=True)
        .last()
        .filter(at - pl.col("due") <= e.max_late_days * DAY_US)
        .join(products, on=["customer_id", "series"])
        .with_columns(pl.lit("education").alias("kind"), pl.lit(True).alias("marketing"))
    )
    due = key_column(
        due, "education", frames.shop, pl.col("customer_id"), pl.col("series"), pl.col("template")
    )
    return Candidates(due, build)


def education_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new education step due (issue 19): any shipment's or delivery's date plus any step's
    days (a superset of :func:`education_candidates`' anchors: never later than the truth)."""
    e = policy.education
    at = frames.as_of
    if not e.enabled or not e.series:
        return soonest([], at)
    days = {step.days for series in e.series for step in series.steps}
    ships = frames.fulfillments.lazy().join(
        frames.orders.lazy().select(pl.col("id").alias("order_id"), "customer_id"), on="order_id"
    )
    return soonest(
        [
            ships.select("customer_id", (pl.col(col) + d * DAY_US).alias("moment"))
            for col in ("created_at", "delivered_at")
            for d in sorted(days)
        ],
        at,
    )


def _series_of(lines: pl.LazyFrame, stats: ShopStats, policy: Policy) -> pl.DataFrame:
    """product_id, product_type (the line's, "" for none), series: each product (with the
    type its lines carry) and the series its type, else the catalogue's, or its tags name."""
    series = [
        (s.name, {t.casefold() for t in s.product_types}, {t.casefold() for t in s.tags})
        for s in policy.education.series
    ]
    kinds = lines.select("product_id", "product_type").unique().collect(engine="in-memory")
    pairs: list[tuple[str, str, str]] = []
    for pid, ptype in kinds.iter_rows():
        kind = (ptype or stats.product_types.get(pid) or "").casefold()
        tags = {t.casefold() for t in stats.product_tags.get(pid, ())}
        for name, types, wanted in series:
            if (kind and kind in types) or tags & wanted:
                pairs.append((pid, ptype, name))
    return pl.DataFrame(
        pairs,
        schema={"product_id": pl.String, "product_type": pl.String, "series": pl.String},
        orient="row",
    )


def _builder(frames: Frames) -> Callable[[dict[str, Any]], Action]:
    base = {"platform": frames.platform, "shop": frames.shop}

    def build(row: dict[str, Any]) -> Action:
        when = "delivered" if row["after_delivery"] else "shipped"
        products = tuple(row["product_ids"])
        cls = EducationCrossSell if row["recommend"] else EducationMessage
        return cls(
            **base,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"{row['days']} days after order {row['order_id']} was {when}: step "
                f"{row['step']} of the {row['series']} series ({row['template']})"
            ),
            facts={
                "series": row["series"],
                "step": row["step"],
                "template": row["template"],
                "days": row["days"],
                "order_id": row["order_id"],
                "received": when,
                "product_ids": list(products),
            },
            idempotency_key=row["key"],
            series=row["series"],
            step=row["step"],
            template=row["template"],
            order_id=row["order_id"],
            product_ids=products,
        )

    return build
