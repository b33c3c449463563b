"""Lifecycle stages and RFM groups, as of any date.

**Stages** (research retention §8), the first that applies:

=============  ==============================================================================
``prospect``   no paid order yet
``lapsed``     time since the last order passed ``lifecycle.lapsed_multiple`` x the customer's
               win-back delay (see :func:`shopsync.core.winback.rhythm`)
``at_risk``    past the win-back delay itself
``ambassador`` has reviewed a product or brought a friend whose referral was rewarded
``loyal``      ``lifecycle.loyal_orders_12m`` or more paid orders in the last 365 days
``returning``  two or more paid orders
``new``        one paid order
=============  ==============================================================================

**RFM.** Each customer with a paid order gets three scores from 1 to 5 by quintile within
the shop: recency (days since the last order; recent = 5), frequency (paid orders) and
monetary (net spend in the shop currency). Ties share the lowest quintile they reach, so
when most customers bought once they all have frequency 1. The group follows Shopify's
``CustomerRfmGroup`` enum (eleven groups, research retention §2.5). Shopify publishes the
groups' meaning, not their score bounds; shopsync maps recency R and FM = the half-up mean of
F and M like this:

====  ====================  ====================  ====================
R     FM 4-5                FM 3                  FM 1-2
====  ====================  ====================  ====================
5     champions             active                new
4     loyal                 active                promising
3     loyal                 needs_attention       promising
1-2   previously_loyal (FM 5), at_risk (FM 3-4)   almost_lost (R 2), dormant (R 1)
====  ====================  ====================  ====================

and ``prospects`` for customers with no paid order.
"""

from __future__ import annotations

import polars as pl

from shopsync.core._data import DAY_US, Frames
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import ShopStats
from shopsync.core.winback import rhythm

__all__ = ["RFM_GROUPS", "STAGES", "lifecycle", "rfm_scores"]

STAGES = ("prospect", "new", "returning", "loyal", "at_risk", "lapsed", "ambassador")
RFM_GROUPS = (
    "prospects",
    "new",
    "promising",
    "active",
    "needs_attention",
    "loyal",
    "champions",
    "at_risk",
    "previously_loyal",
    "almost_lost",
    "dormant",
)


def _score(value: pl.Expr, n: pl.Expr) -> pl.Expr:
    rank = value.rank("min")
    return ((5 * (rank - 1)) // n + 1).cast(pl.Int8)


def rfm_scores(features: pl.DataFrame) -> pl.DataFrame:
    """customer_id, recency_score, frequency_score, monetary_score, rfm_group (all
    customers; scores null for prospects)."""
    buyers = features.filter(pl.col("paid_orders") > 0)
    n = pl.len()
    scored = buyers.select(
        "customer_id",
        _score(-pl.col("days_since_last_order"), n).alias("recency_score"),
        _score(pl.col("paid_orders"), n).alias("frequency_score"),
        _score(pl.col("net_spend").cast(pl.Float64), n).alias("monetary_score"),
    )
    r = pl.col("recency_score")
    fm = (pl.col("frequency_score").cast(pl.Int16) + pl.col("monetary_score") + 1) // 2
    group = (
        pl.when(r == 5)
        .then(
            pl.when(fm >= 4)
            .then(pl.lit("champions"))
            .when(fm == 3)
            .then(pl.lit("active"))
            .otherwise(pl.lit("new"))
        )
        .when(r == 4)
        .then(
            pl.when(fm >= 4)
            .then(pl.lit("loyal"))
            .when(fm == 3)
            .then(pl.lit("active"))
            .otherwise(pl.lit("promising"))
        )
        .when(r == 3)
        .then(
            pl.when(fm >= 4)
            .then(pl.lit("loyal"))
            .when(fm == 3)
            .then(pl.lit("needs_attention"))
            .otherwise(pl.lit("promising"))
        )
        .otherwise(
            pl.when(fm == 5)
            .then(pl.lit("previously_loyal"))
            .when(fm >= 3)
            .then(pl.lit("at_risk"))
            .when(r == 2)
            .then(pl.lit("almost_lost"))
            .otherwise(pl.lit("dormant"))
        )
    )
    scored = scored.with_columns(group.alias("rfm_group"))
    return (
        features.select("customer_id")
        .join(scored, on="customer_id", how="left")
        .with_columns(pl.col("rfm_group").fill_null("prospects"))
        .sort("customer_id")
    )


def lifecycle(
    frames: Frames,
    features: pl.DataFrame,
    paid: pl.DataFrame,
    stats: ShopStats,
    policy: Policy,
) -> pl.DataFrame:
    """One row per customer: stage, the facts behind it, and the RFM scores and group."""
    at = frames.as_of
    pace = rhythm(paid, stats, policy, at).select("customer_id", "threshold_days")
    recent = (
        paid.filter(pl.col("created_at") > at - 365 * DAY_US)
        .group_by("customer_id")
        .agg(pl.len().alias("orders_12m"))
    )
    reviewers = (
        frames.reviews.select("customer_id").unique().with_columns(pl.lit(True).alias("reviewed"))
    )
    advocates = (
        frames.advocates.select("customer_id").unique().with_columns(pl.lit(True).alias("referred"))
    )
    lapsed_multiple = float(policy.lifecycle.lapsed_multiple)
    days = pl.col("days_since_last_order")
    stage = (
        pl.when(pl.col("paid_orders") == 0)
        .then(pl.lit("prospect"))
        .when(days > pl.col("threshold_days") * lapsed_multiple)
        .then(pl.lit("lapsed"))
        .when(days > pl.col("threshold_days"))
        .then(pl.lit("at_risk"))
        .when(pl.col("reviewed") | pl.col("referred"))
        .then(pl.lit("ambassador"))
        .when(pl.col("orders_12m") >= policy.lifecycle.loyal_orders_12m)
        .then(pl.lit("loyal"))
        .when(pl.col("paid_orders") >= 2)
        .then(pl.lit("returning"))
        .otherwise(pl.lit("new"))
    )
    return (
        features.select("customer_id", "paid_orders", "days_since_last_order", "net_spend")
        .join(pace, on="customer_id", how="left")
        .join(recent, on="customer_id", how="left")
        .join(reviewers, on="customer_id", how="left")
        .join(advocates, on="customer_id", how="left")
        .with_columns(
            pl.col("orders_12m").fill_null(0),
            pl.col("reviewed").fill_null(False),
            pl.col("referred").fill_null(False),
        )
        .with_columns(stage.alias("stage"))
        .join(rfm_scores(features), on="customer_id", how="left")
        .sort("customer_id")
    )
