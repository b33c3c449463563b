"""The features before the integer keys (commit 56ab262), kept verbatim as the oracle the
property test in ``test_features_frames.py`` compares :func:`compute_features` with."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shopsync._instants import to_micros
from shopsync.core.features import (
    _UTC,
    DAY_US,
    FEATURE_SCHEMA,
    YEAR_US,
    _money,
    counts_as_purchase,
    shop_currency,
)


def old_compute_features(
    frames: dict[str, pl.DataFrame], as_of: dt.datetime, *, currency: str | None = None
) -> pl.DataFrame:
    """``compute_features`` as it was before the integer keys (56ab262), verbatim."""
    at = to_micros(as_of)
    currency = currency or shop_currency(frames["orders"]) or ""

    refunds = (
        frames["refunds"].lazy().group_by("order_id").agg(pl.col("amount").sum().alias("refunded"))
    )
    paid = frames["orders"].lazy().filter(counts_as_purchase(at))
    foreign = (
        paid.filter(pl.col("currency") != currency)
        .group_by("customer_id")
        .agg(pl.len().cast(pl.Int64).alias("foreign_currency_orders"))
    )
    orders = (
        paid.filter(pl.col("currency") == currency)
        .join(refunds, left_on="id", right_on="order_id", how="left")
        .with_columns(
            pl.min_horizontal(pl.col("refunded").fill_null(0), pl.col("total")).alias("refunded")
        )
        .with_columns((pl.col("total") - pl.col("refunded")).alias("net"))
        .sort(["customer_id", "created_at", "id"])
        .with_columns(
            pl.when(pl.col("customer_id") == pl.col("customer_id").shift(1))
            .then(pl.col("created_at").diff().cast(pl.Float64) / DAY_US)
            .alias("gap")
        )
    )
    per_customer = orders.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("paid_orders"),
        pl.col("created_at").min().alias("first_us"),
        pl.col("created_at").max().alias("last_us"),
        pl.col("total").sum().alias("gross_units"),
        pl.col("refunded").sum().alias("refunded_units"),
        pl.col("net").sum().alias("net_units"),
        pl.col("net").filter(pl.col("created_at") > at - YEAR_US).sum().alias("net_12m_units"),
        pl.col("gap").median().alias("gap_median_days"),
        pl.col("gap").mean().alias("gap_mean_days"),
    )
    lines = (
        frames["line_items"]
        .lazy()
        .join(orders.select(pl.col("id"), pl.col("customer_id")), left_on="order_id", right_on="id")
    )
    products = (
        lines.filter(pl.col("product_id").is_not_null())
        .group_by("customer_id")
        .agg(pl.col("product_id").unique().sort().alias("products"))
    )
    categories = (
        lines.filter(pl.col("product_type").is_not_null() & (pl.col("product_type") != ""))
        .group_by("customer_id")
        .agg(pl.col("product_type").unique().sort().alias("categories"))
    )
    consent = (
        frames["consent"]
        .lazy()
        .sort(["customer_id", "channel", "observed_at"])
        .group_by(["customer_id", "channel"])
        .agg(pl.col("state").last())
    )
    email = consent.filter(pl.col("channel") == "email").select(
        "customer_id", pl.col("state").alias("email_consent")
    )
    sms = consent.filter(pl.col("channel") == "sms").select(
        "customer_id", pl.col("state").alias("sms_consent")
    )
    net = pl.col("net_units")
    n = pl.col("paid_orders")
    frame = (
        frames["customers"]
        .lazy()
        .rename({"id": "customer_id"})
        .join(per_customer, on="customer_id", how="left")
        .join(foreign, on="customer_id", how="left")
        .join(products, on="customer_id", how="left")
        .join(categories, on="customer_id", how="left")
        .join(email, on="customer_id", how="left")
        .join(sms, on="customer_id", how="left")
        .with_columns(
            pl.col("paid_orders").fill_null(0),
            pl.col("foreign_currency_orders").fill_null(0),
            pl.col("created_at").cast(_UTC),
            pl.col("birthday").str.to_date("%Y-%m-%d", strict=False),
            pl.col("email_consent").fill_null("unknown"),
            pl.col("sms_consent").fill_null("unknown"),
            pl.lit(currency).alias("currency"),
            pl.col("first_us").cast(_UTC).alias("first_order_at"),
            pl.col("last_us").cast(_UTC).alias("last_order_at"),
            ((at - pl.col("last_us")).cast(pl.Float64) / DAY_US).alias("days_since_last_order"),
            _money(pl.col("gross_units").fill_null(0)).alias("gross_spend"),
            _money(pl.col("refunded_units").fill_null(0)).alias("refunded"),
            _money(net.fill_null(0)).alias("net_spend"),
            # half-up on integers: exact, and identical in every engine
            _money((2 * net + n) // (2 * n)).alias("average_order_value"),
            _money(pl.col("net_12m_units").fill_null(0)).alias("spend_12m"),
            (
                pl.col("refunded_units").cast(pl.Float64) / pl.col("gross_units").cast(pl.Float64)
            ).alias("refund_rate"),
            pl.col("products").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in FEATURE_SCHEMA.items()])
        .sort("customer_id")
    )
    return frame.collect(engine="in-memory")
