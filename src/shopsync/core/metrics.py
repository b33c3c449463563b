"""Retention metrics and the predictive CLV, with their definitions spelled out.

Platforms disagree on these numbers (research retention §5.6), so every function states what
it counts. The order filter is the features' one everywhere: an order counts when it was
paid by ``as_of``, not cancelled by then and above zero; money is net of refunds made by
then, in the shop currency (orders in other currencies are left out of money figures and
counted nowhere else either). Periods are half-open, ``start < placed <= end``.

- **retention rate** (the classic (E - N) / S): S = customers *active* at ``start``, E =
  active at ``end``, N = customers whose first order falls in the period; "active" = a paid
  order in the ``active_days`` (365) before the moment. None when S is 0.
- **repeat purchase rate** (industry, not Shopify's "returning customer rate"): customers
  with two or more orders inside the period / customers with an order inside it.
- **purchase frequency**: orders / ordering customers inside the period.
- **average order value**: net revenue / orders inside the period.
- **historical CLV**: each customer's net spend so far; the shop figure is the mean over
  customers with an order.
- **cohort retention**: customers grouped by the month of their first order; column ``m{k}``
  is the share of the cohort with an order in the k-th month after (``m0`` = 1.0).
- **predictive CLV**: MBG/NBD for purchases and Gamma-Gamma for order value (shopsync.clv),
  fitted on the shop's daily purchase summary, over ``horizon_days`` (365) discounted 1 % a
  month (research retention §8), with a 0.001 penalizer on the MBG/NBD fit. Behind
  Klaviyo's data gate (at least 500 customers with orders, 180 days of history, some customer
  with three or more orders); below it the call raises :class:`InsufficientDataError`
  unless ``force=True``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl

from shopsync import clv
from shopsync.core._data import DAY_US, Frames, paid_orders, to_us
from shopsync.errors import ShopSyncError

__all__ = [
    "InsufficientDataError",
    "PeriodMetrics",
    "average_order_value",
    "cohort_retention",
    "historical_clv",
    "period_metrics",
    "predictive_clv",
    "purchase_frequency",
    "repeat_purchase_rate",
    "retention_rate",
]

_UNIT = Decimal(10_000)
_Q = Decimal("0.0001")


class InsufficientDataError(ShopSyncError):
    """Too little data for a model; ``gate`` says which condition failed."""

    def __init__(self, message: str, gate: dict[str, object]) -> None:
        super().__init__(message)
        self.gate = gate


def _shop_paid(frames: Frames) -> pl.DataFrame:
    return paid_orders(frames).filter(pl.col("currency") == frames.currency)


def _between(paid: pl.DataFrame, start: int, end: int) -> pl.DataFrame:
    return paid.filter((pl.col("created_at") > start) & (pl.col("created_at") <= end))


def _period(frames: Frames, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    lo, hi = to_us(start), to_us(end)
    if hi <= lo:
        raise ValueError("end must be after start")
    if hi > frames.as_of:
        raise ValueError("the period must end by the frames' as_of")
    return lo, hi


def retention_rate(
    frames: Frames, start: dt.datetime, end: dt.datetime, *, active_days: int = 365
) -> float | None:
    lo, hi = _period(frames, start, end)
    paid = _shop_paid(frames)
    span = active_days * DAY_US

    def active(at: int) -> set[str]:
        window = paid.filter((pl.col("created_at") > at - span) & (pl.col("created_at") <= at))
        return set(window["customer_id"].unique().to_list())

    at_start, at_end = active(lo), active(hi)
    first = paid.group_by("customer_id").agg(pl.col("created_at").min().alias("first"))
    new = set(
        first.filter((pl.col("first") > lo) & (pl.col("first") <= hi))["customer_id"].to_list()
    )
    if not at_start:
        return None
    return (len(at_end) - len(new & at_end)) / len(at_start)


def repeat_purchase_rate(frames: Frames, start: dt.datetime, end: dt.datetime) -> float | None:
    lo, hi = _period(frames, start, end)
    counts = _between(paid_orders(frames), lo, hi).group_by("customer_id").len()
    if counts.height == 0:
        return None
    return counts.filter(pl.col("len") >= 2).height / counts.height


def purchase_frequency(frames: Frames, start: dt.datetime, end: dt.datetime) -> float | None:
    lo, hi = _period(frames, start, end)
    window = _between(paid_orders(frames), lo, hi)
    buyers = window["customer_id"].n_unique()
    return window.height / buyers if buyers else None


def average_order_value(frames: Frames, start: dt.datetime, end: dt.datetime) -> Decimal | None:
    lo, hi = _period(frames, start, end)
    window = _between(_shop_paid(frames), lo, hi)
    if window.height == 0:
        return None
    total = Decimal(int(window["net"].sum())) / _UNIT
    return (total / window.height).quantize(_Q, ROUND_HALF_UP)


def historical_clv(frames: Frames) -> pl.DataFrame:
    """customer_id, orders, net_spend (Decimal): net spend of every customer with an order."""
    return (
        _shop_paid(frames)
        .group_by("customer_id")
        .agg(pl.len().alias("orders"), pl.col("net").sum().alias("net_units"))
        .with_columns((pl.col("net_units").cast(pl.Decimal(38, 4)) / 10_000).alias("net_spend"))
        .drop("net_units")
        .sort("customer_id")
    )


@dataclass(frozen=True)
class PeriodMetrics:
    start: dt.datetime
    end: dt.datetime
    currency: str
    customers: int
    """Customers with an order in the period."""
    orders: int
    retention_rate: float | None
    repeat_purchase_rate: float | None
    purchase_frequency: float | None
    average_order_value: Decimal | None
    historical_clv: Decimal | None
    """Mean net spend so far of customers with an order, as of the end."""


def period_metrics(frames: Frames, start: dt.datetime, end: dt.datetime) -> PeriodMetrics:
    lo, hi = _period(frames, start, end)
    window = _between(paid_orders(frames), lo, hi)
    spend = historical_clv(frames)
    mean = None
    if spend.height:
        total = sum((v for v in spend["net_spend"].to_list()), Decimal(0))
        mean = (total / spend.height).quantize(_Q, ROUND_HALF_UP)
    return PeriodMetrics(
        start=start,
        end=end,
        currency=frames.currency,
        customers=window["customer_id"].n_unique(),
        orders=window.height,
        retention_rate=retention_rate(frames, start, end),
        repeat_purchase_rate=repeat_purchase_rate(frames, start, end),
        purchase_frequency=purchase_frequency(frames, start, end),
        average_order_value=average_order_value(frames, start, end),
        historical_clv=mean,
    )


def cohort_retention(frames: Frames, *, months: int = 12) -> pl.DataFrame:
    """cohort (``YYYY-MM``), customers, m0..m{months}: share of the cohort ordering in each
    month after the first; null for months that had not begun by as_of."""
    paid = paid_orders(frames).with_columns(
        pl.col("created_at").cast(pl.Datetime("us", "UTC")).dt.truncate("1mo").alias("month")
    )
    index = pl.col("month").dt.year() * 12 + pl.col("month").dt.month()
    paid = paid.with_columns(index.alias("mi"))
    first = paid.group_by("customer_id").agg(pl.col("mi").min().alias("ci"))
    joined = paid.join(first, on="customer_id").with_columns(
        (pl.col("mi") - pl.col("ci")).alias("k")
    )
    sizes = first.group_by("ci").len().rename({"len": "customers"})
    active = (
        joined.filter(pl.col("k") <= months)
        .group_by("ci", "k")
        .agg(pl.col("customer_id").n_unique().alias("n"))
    )
    now = (
        pl.DataFrame({"t": [frames.as_of]})
        .select(
            pl.col("t").cast(pl.Datetime("us", "UTC")).dt.year() * 12
            + pl.col("t").cast(pl.Datetime("us", "UTC")).dt.month()
        )
        .item()
    )
    rows = []
    table = {(ci, k): n for ci, k, n in active.iter_rows()}
    for ci, size in sizes.sort("ci").iter_rows():
        year, month = divmod(ci - 1, 12)
        row: dict[str, object] = {"cohort": f"{year:04d}-{month + 1:02d}", "customers": size}
        for k in range(months + 1):
            row[f"m{k}"] = None if ci + k > now else round(table.get((ci, k), 0) / size, 6)
        rows.append(row)
    schema = {"cohort": pl.String, "customers": pl.Int64} | {
        f"m{k}": pl.Float64 for k in range(months + 1)
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def predictive_clv(
    frames: Frames,
    *,
    horizon_days: int = 365,
    monthly_discount: float = 0.01,
    min_customers: int = 500,
    min_history_days: int = 180,
    force: bool = False,
    penalizer: float = 0.001,
) -> pl.DataFrame:
    """customer_id, frequency, recency, T (weeks), p_alive, expected_orders, expected_value,
    clv (shop currency, float) for every customer with an order."""
    paid = _shop_paid(frames).filter(pl.col("net") > 0)
    at_day = frames.as_of // DAY_US
    gate: dict[str, object] = {"customers": paid["customer_id"].n_unique()}
    gate["history_days"] = int(at_day - paid["created_at"].min() // DAY_US) if paid.height else 0  # type: ignore[operator]
    per = paid.group_by("customer_id").len()
    gate["most_orders"] = int(per["len"].max() or 0) if per.height else 0  # type: ignore[arg-type]
    problems = []
    if gate["customers"] < min_customers:  # type: ignore[operator]
        problems.append(f"{gate['customers']} customers with orders (need {min_customers})")
    if gate["history_days"] < min_history_days:  # type: ignore[operator]
        problems.append(f"{gate['history_days']} days of history (need {min_history_days})")
    if gate["most_orders"] < 3:  # type: ignore[operator]
        problems.append("no customer with three or more orders")
    if problems and (not force or paid.height == 0):
        raise InsufficientDataError(
            "too little data for predictive CLV: " + "; ".join(problems), gate
        )
    summary = clv.summary_from_transactions(
        paid["customer_id"],
        paid["created_at"].cast(pl.Datetime("us", "UTC")),
        (paid["net"].cast(pl.Float64) / 10_000),
        as_of=dt.date(1970, 1, 1) + dt.timedelta(days=int(at_day)),
        period="W",  # weeks: the closed forms are better conditioned than in days
    )
    fit = summary.T > 0
    # a small penalty keeps a and b finite when hardly anyone drops out (seen on generated
    # shops: unpenalised, a and b ran to 1e5-1e7 and the expectations overflowed)
    purchases = clv.fit_mbgnbd(
        summary.frequency[fit], summary.recency[fit], summary.T[fit], penalizer=penalizer
    )
    assert summary.monetary_value is not None
    spend = clv.fit_gamma_gamma(summary.frequency, summary.monetary_value)
    T = np.maximum(summary.T, summary.recency)
    weeks = horizon_days / 7
    value = clv.customer_lifetime_value(
        purchases,
        spend,
        summary.frequency,
        summary.recency,
        T,
        summary.monetary_value,
        horizon=weeks,
        step=weeks / 12,
        discount_rate=monthly_discount,
    )
    return pl.DataFrame(
        {
            "customer_id": summary.customer_id.astype(str),
            "frequency": summary.frequency,
            "recency": summary.recency,
            "T": summary.T,
            "p_alive": clv.probability_alive(purchases, summary.frequency, summary.recency, T),
            "expected_orders": clv.expected_purchases(
                purchases, summary.frequency, summary.recency, T, t=weeks
            ),
            "expected_value": clv.expected_order_value(
                spend, summary.frequency, summary.monetary_value
            ),
            "clv": value,
        }
    ).sort("customer_id")
