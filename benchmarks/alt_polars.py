"""The Polars-on-Parquet alternative to shopsync's feature computation (issue 18): the same
per-customer features written as one would in plain Polars, scanning Parquet files of the
store's tables.

    python benchmarks/alt_polars.py DB

``DB`` is a fixture written by ``benchmarks/features.py --keep``. The tables the features
read (customers, orders, refunds, line items with their product's type, consent history)
are exported to ``DB.alt-parquet/`` once (uncompressed, as shopsync's own snapshot; not
timed, reused while the database file is older than the export). The timed part is a lazy
query over ``scan_parquet`` following the rules of :mod:`shopsync.core.features` (paid and
not cancelled by as-of, refunds capped at the order total, gaps between consecutive orders,
products and categories bought, the latest consent), collected once; it prints the digest
``features.py`` prints for shopsync's frame, so the two must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import time
from pathlib import Path
from typing import Any

AS_OF_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z, as in features.py
DAY_US = 86_400_000_000
YEAR_US = 365 * DAY_US
PAID_WITHOUT_DATE = ["paid", "partially_paid", "partially_refunded", "refunded"]
TABLES = {
    "customers": "SELECT id AS customer_id, created_at, birthday FROM customers",
    "orders": "SELECT id, customer_id, created_at, paid_at, processed_at, cancelled_at,"
    " financial_status, currency, total FROM orders WHERE customer_id IS NOT NULL",
    "refunds": "SELECT order_id, created_at, amount FROM refunds",
    "lines": "SELECT l.order_id, l.product_id, COALESCE(NULLIF(l.product_type, ''),"
    " p.product_type) AS product_type FROM line_items l LEFT JOIN products p"
    " ON p.shop_id = l.shop_id AND p.id = l.product_id",
    "consent": "SELECT customer_id, channel, CASE WHEN consent_updated_at IS NOT NULL AND"
    " consent_updated_at < observed_at THEN consent_updated_at ELSE observed_at END"
    " AS observed_at, state FROM consent_history",
}
_CHUNK = 500_000


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def export(db: str) -> Path:
    """The tables as Parquet files beside ``db`` (written once; not part of the timing)."""
    import polars as pl

    out = Path(db + ".alt-parquet")
    done = out / "done"
    if done.exists() and done.stat().st_mtime >= os.path.getmtime(db):
        return out
    out.mkdir(exist_ok=True)
    con = sqlite3.connect(db)
    for name, sql in TABLES.items():
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        parts = []
        while rows := cursor.fetchmany(_CHUNK):
            parts.append(pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None))
        frame = pl.concat(parts) if parts else pl.DataFrame(schema=columns)
        frame.write_parquet(out / f"{name}.parquet", compression="uncompressed")
    con.close()
    done.touch()
    return out


def features(path: str) -> dict[str, Any]:
    """The feature table from Parquet in plain Polars; returns timings and a digest."""
    import polars as pl

    files = export(path)
    start = time.perf_counter()
    at = AS_OF_US

    def scan(name: str) -> pl.LazyFrame:
        return pl.scan_parquet(files / f"{name}.parquet")

    moment = pl.coalesce(
        "paid_at",
        pl.when(pl.col("financial_status").is_in(PAID_WITHOUT_DATE)).then(
            pl.coalesce("processed_at", "created_at")
        ),
    )
    paid = scan("orders").filter(
        (pl.col("created_at") <= at)
        & (moment <= at)
        & (pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
        & (pl.col("total") > 0)
    )
    currency = (
        paid.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
    ).collect()["currency"]
    main = currency[0] if len(currency) else ""
    foreign = (
        paid.filter(pl.col("currency") != main)
        .group_by("customer_id")
        .agg(pl.len().alias("foreign_currency_orders"))
    )
    refunds = (
        scan("refunds")
        .filter(pl.col("created_at") <= at)
        .group_by("order_id")
        .agg(pl.col("amount").sum().alias("refunded"))
    )
    orders = (
        paid.filter(pl.col("currency") == main)
        .join(refunds, left_on="id", right_on="order_id", how="left")
        .with_columns(pl.min_horizontal(pl.col("refunded").fill_null(0), "total").alias("refunded"))
        .with_columns(net=pl.col("total") - pl.col("refunded"))
        .sort("customer_id", "created_at", "id")
        .with_columns(gap=pl.col("created_at").diff().over("customer_id").cast(pl.Float64) / DAY_US)
    )
    per = orders.group_by("customer_id").agg(
        paid_orders=pl.len(),
        first_us=pl.col("created_at").min(),
        last_us=pl.col("created_at").max(),
        gross=pl.col("total").sum(),
        refunded=pl.col("refunded").sum(),
        net=pl.col("net").sum(),
        net_12m=pl.col("net").filter(pl.col("created_at") > at - YEAR_US).sum(),
        gap_median_days=pl.col("gap").median(),
        gap_mean_days=pl.col("gap").mean(),
    )
    bought = orders.select("id", "customer_id")
    lines = scan("lines").join(bought, left_on="order_id", right_on="id")
    products = (
        lines.drop_nulls("product_id")
        .group_by("customer_id")
        .agg(products=pl.col("product_id").unique().sort())
    )
    categories = (
        lines.filter(pl.col("product_type").is_not_null() & (pl.col("product_type") != ""))
        .group_by("customer_id")
        .agg(categories=pl.col("product_type").unique().sort())
    )
    email = (
        scan("consent")
        .filter((pl.col("observed_at") <= at) & (pl.col("channel") == "email"))
        .sort("customer_id", "observed_at")
        .group_by("customer_id")
        .agg(email_consent=pl.col("state").last())
    )
    f = (
        scan("customers")
        .filter(pl.col("created_at") <= at)
        .join(per, on="customer_id", how="left")
        .join(foreign, on="customer_id", how="left")
        .join(products, on="customer_id", how="left")
        .join(categories, on="customer_id", how="left")
        .join(email, on="customer_id", how="left")
        .with_columns(
            pl.col("paid_orders").fill_null(0),
            pl.col("email_consent").fill_null("unknown"),
            days_since_last_order=(at - pl.col("last_us")) / DAY_US,
            refund_rate=pl.col("refunded") / pl.col("gross"),
            birthday=pl.col("birthday").str.to_date("%Y-%m-%d", strict=False),
        )
        .sort("customer_id")
        .collect()
    )
    seconds = time.perf_counter() - start
    digest = {
        "rows": f.height,
        "paid_orders": int(f["paid_orders"].sum()),
        "net_units": int(f["net"].fill_null(0).sum()),
        "gap_median_sum": round(float(f["gap_median_days"].sum()), 3),
        "products": int(f["products"].list.len().fill_null(0).sum()),
        "subscribed": int((f["email_consent"] == "subscribed").sum()),
    }
    return {"seconds": round(seconds, 2), "peak_mb": _peak_mb(), "digest": digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    args = parser.parse_args()
    print(json.dumps(features(args.db)))


if __name__ == "__main__":
    main()
