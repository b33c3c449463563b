"""The alternatives to shopsync's feature computation on the same SQLite store: a plain pandas
script computing the same per-customer features, and lifetimes' RFM summary.

    python benchmarks/alt_pandas.py features DB
    python benchmarks/alt_pandas.py rfm DB

``DB`` is a fixture written by ``benchmarks/features.py --keep`` (the same as-of instant).
``features`` reads the tables with ``pandas.read_sql_query`` and follows the rules of
:mod:`shopsync.core.features` the way one would write them in pandas (paid and not
cancelled by as-of, refunds capped at the order total, gaps between consecutive orders,
products and categories bought, the latest consent); it prints a digest that must equal
the one ``features.py`` prints for shopsync's frame. ``rfm`` reads the paid orders and calls
``lifetimes.utils.summary_data_from_transaction_data`` (daily frequency, same-day orders
once), the RFM part of the features.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import time
import warnings
from typing import Any

AS_OF_US = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z, as in features.py
DAY_US = 86_400_000_000
YEAR_US = 365 * DAY_US
PAID_WITHOUT_DATE = ("paid", "partially_paid", "partially_refunded", "refunded")


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _read(con: sqlite3.Connection) -> dict[str, Any]:
    import pandas as pd

    at = AS_OF_US
    q = {
        "customers": f"SELECT id AS customer_id, created_at, birthday FROM customers"
        f" WHERE created_at <= {at}",
        "orders": "SELECT id, customer_id, created_at, paid_at, processed_at, cancelled_at,"
        f" financial_status, currency, total FROM orders WHERE customer_id IS NOT NULL"
        f" AND created_at <= {at}",
        "refunds": f"SELECT order_id, amount FROM refunds WHERE created_at <= {at}",
        "lines": "SELECT l.order_id, l.product_id, COALESCE(NULLIF(l.product_type, ''),"
        " p.product_type) AS product_type FROM line_items l LEFT JOIN products p"
        " ON p.shop_id = l.shop_id AND p.id = l.product_id",
        "consent": "SELECT customer_id, channel, observed_at, state FROM consent_history WHERE"
        " (CASE WHEN consent_updated_at IS NOT NULL AND consent_updated_at < observed_at"
        f" THEN consent_updated_at ELSE observed_at END) <= {at}",
    }
    return {name: pd.read_sql_query(sql, con) for name, sql in q.items()}


def features(path: str) -> dict[str, Any]:
    """The feature table in pandas; returns timings and a digest of the result."""
    import numpy as np
    import pandas as pd

    start = time.perf_counter()
    con = sqlite3.connect(path)
    t = _read(con)
    con.close()
    read_s = time.perf_counter() - start
    at = AS_OF_US
    o = t["orders"]
    fallback = o["processed_at"].fillna(o["created_at"])
    paid_moment = o["paid_at"].fillna(fallback.where(o["financial_status"].isin(PAID_WITHOUT_DATE)))
    o = o[
        paid_moment.notna()
        & (paid_moment <= at)
        & (o["cancelled_at"].isna() | (o["cancelled_at"] > at))
        & (o["total"] > 0)
    ]
    currency = o["currency"].value_counts().sort_index().idxmax() if len(o) else ""
    foreign = o[o["currency"] != currency].groupby("customer_id").size()
    o = o[o["currency"] == currency].copy()
    refunded = t["refunds"].groupby("order_id")["amount"].sum()
    o["refunded"] = np.minimum(o["id"].map(refunded).fillna(0).astype("int64"), o["total"])
    o["net"] = o["total"] - o["refunded"]
    o["net_12m"] = o["net"].where(o["created_at"] > at - YEAR_US, 0)
    o = o.sort_values(["customer_id", "created_at", "id"])
    o["gap"] = o.groupby("customer_id")["created_at"].diff() / DAY_US
    per = o.groupby("customer_id").agg(
        paid_orders=("id", "size"),
        first_us=("created_at", "min"),
        last_us=("created_at", "max"),
        gross=("total", "sum"),
        refunded=("refunded", "sum"),
        net=("net", "sum"),
        net_12m=("net_12m", "sum"),
        gap_median_days=("gap", "median"),
        gap_mean_days=("gap", "mean"),
    )
    lines = t["lines"].merge(o[["id", "customer_id"]], left_on="order_id", right_on="id")
    products = (
        lines.dropna(subset=["product_id"])
        .groupby("customer_id")["product_id"]
        .agg(lambda s: sorted(set(s)))
    )
    types = lines[lines["product_type"].notna() & (lines["product_type"] != "")]
    categories = types.groupby("customer_id")["product_type"].agg(lambda s: sorted(set(s)))
    consent = (
        t["consent"]
        .sort_values(["customer_id", "channel", "observed_at"])
        .groupby(["customer_id", "channel"])["state"]
        .last()
        .unstack()
    )
    f = t["customers"].set_index("customer_id").join(per, how="left")
    f["foreign_currency_orders"] = foreign.reindex(f.index).fillna(0).astype("int64")
    f["paid_orders"] = f["paid_orders"].fillna(0).astype("int64")
    f["products"] = products.reindex(f.index)
    f["categories"] = categories.reindex(f.index)
    f["email_consent"] = consent.get("email", pd.Series(dtype=object)).reindex(f.index)
    f["email_consent"] = f["email_consent"].fillna("unknown")
    f["days_since_last_order"] = (at - f["last_us"]) / DAY_US
    n = f["paid_orders"]
    f["average_order_value"] = (2 * f["net"] + n) // (2 * n)
    f["refund_rate"] = f["refunded"] / f["gross"]
    f["birthday"] = pd.to_datetime(f["birthday"], format="%Y-%m-%d", errors="coerce")
    f = f.sort_index()
    seconds = time.perf_counter() - start
    digest = {
        "rows": len(f),
        "paid_orders": int(f["paid_orders"].sum()),
        "net_units": int(f["net"].fillna(0).sum()),
        "gap_median_sum": round(float(f["gap_median_days"].sum()), 3),
        "products": int(f["products"].dropna().map(len).sum()),
        "subscribed": int((f["email_consent"] == "subscribed").sum()),
    }
    return {
        "seconds": round(seconds, 2),
        "read_seconds": round(read_s, 2),
        "peak_mb": _peak_mb(),
        "digest": digest,
    }


def rfm(path: str) -> dict[str, Any]:
    """lifetimes' RFM summary of the paid orders (read with pandas)."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

    start = time.perf_counter()
    con = sqlite3.connect(path)
    tx = pd.read_sql_query(paid_orders_sql(), con)
    con.close()
    tx["date"] = pd.to_datetime(tx["created_at"], unit="us")
    read_s = time.perf_counter() - start
    compute = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summary_data_from_transaction_data(
            tx,
            "customer_id",
            "date",
            observation_period_end=pd.Timestamp(AS_OF_US, unit="us"),
            freq="D",
        )
    end = time.perf_counter()
    return {
        "seconds": round(end - start, 2),
        "read_seconds": round(read_s, 2),
        "compute_seconds": round(end - compute, 2),
        "peak_mb": _peak_mb(),
        "digest": {"customers": len(summary), "frequency": int(summary["frequency"].sum())},
    }


def paid_orders_sql() -> str:
    """Paid, not cancelled orders with a positive total placed by as-of (the RFM input)."""
    return (
        "SELECT customer_id, created_at FROM orders WHERE customer_id IS NOT NULL"
        f" AND paid_at IS NOT NULL AND paid_at <= {AS_OF_US} AND cancelled_at IS NULL"
        f" AND total > 0 AND created_at <= {AS_OF_US}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["features", "rfm"])
    parser.add_argument("db")
    args = parser.parse_args()
    result = features(args.db) if args.what == "features" else rfm(args.db)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
