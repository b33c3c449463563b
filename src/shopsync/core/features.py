"""Per-customer features as of any instant, computed in Polars from frames of the shop.

:func:`compute_features` (pure) returns one row per customer account that existed at
``as_of``; :func:`shopsync.frames.customer_features` reads the frames from the store
first. Nothing that happened after ``as_of`` is used: an order counts only if
it was placed and paid by then and not cancelled by then, refunds count only if made by then,
and consent is the last state the store had observed by then (its ``consent_history``).

The rules that decide what counts (each one tested):

- **paid order**: paid by ``as_of`` (``paid_at``; an order the platform marks paid,
  partially paid, partially refunded or refunded without a payment date counts as paid when
  processed), not cancelled by ``as_of``, with a total above zero. Zero-value (free) orders
  are left out, as Klaviyo leaves them out of CLV; a negative total cannot come from the
  platform models and is left out the same way.
- **currency**: money features are in the shop currency (``currency=``, else the currency
  most of the customers' orders use). A paid order in another currency is left out of every
  feature and counted in ``foreign_currency_orders`` instead; nothing is converted.
- **refunds**: refunds made by ``as_of`` reduce the order's value; refunds larger than the
  order are capped at the order total, so net spend never goes below zero.
- **dates**: first/last order and the gaps between orders use when orders were placed
  (``created_at``). Gaps are in days, between consecutive paid orders.
- **spend in the last 12 months**: net spend of paid orders placed in the 365 days up to and
  including ``as_of``.
- **refund rate**: refunded money / paid money (null without paid orders).
- **consent** counts from the platform's own consent date when it has one (Shopify's
  ``consentUpdatedAt``), else from when a sync first saw it; the latest seen state wins.
- **birthday** is the stored value: the store keeps no history of it.
- **merged or deleted customers**: only accounts present in the store appear. When a
  platform merges two customers it moves the orders, and the next sync moves them here too.

Money columns come out as ``Decimal(38, 4)``; they are summed as integers (ten-thousandths of
the unit) and converted once at the end, so every engine gives the same figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from shopsync._instants import to_micros
from shopsync.core._codes import coded
from shopsync.models import MONEY_DECIMALS as MONEY_SCALE

__all__ = [
    "FEATURE_SCHEMA",
    "PURCHASE_COLUMNS",
    "RULE_COLUMNS",
    "compute_features",
    "counts_as_purchase",
    "is_purchase",
    "paid_value",
    "shop_currency",
]

DAY_US = 86_400_000_000

PURCHASE_COLUMNS = (
    "id",
    "customer_id",
    "created_at",
    "paid_at",
    "processed_at",
    "cancelled_at",
    "financial_status",
    "currency",
    "total",
)
"""The order columns the purchase rule (:func:`counts_as_purchase`) and the features read."""
RULE_COLUMNS = ("paid_at", "processed_at", "cancelled_at", "financial_status")
"""The order columns only the purchase rule reads: a read that applies it as it scans
(``compute_features(purchases=True)``) never materialises them (10M orders: 280 MB)."""
YEAR_US = 365 * DAY_US
_READ = ("id", "customer_id", "created_at", "currency", "total")  # the features' order columns
_PAID_WITHOUT_DATE = ("paid", "partially_paid", "partially_refunded", "refunded")

# -- what counts as a purchase: the one rule every program and metric uses ------------------
# The store half is shopsync.store.read.REAL_ORDERS_SQL (no test order reaches a frame).


def paid_moment() -> pl.Expr:
    """When an order was bought: ``paid_at``, else (a status that says paid without a date)
    when it was processed or created; null while it is not paid."""
    return _PAID_MOMENT


_PAID_MOMENT = pl.coalesce(
    "paid_at",
    pl.when(pl.col("financial_status").is_in(_PAID_WITHOUT_DATE)).then(
        pl.coalesce("processed_at", "created_at")
    ),
)
"""Built once: an expression is immutable, and building this one cost ~90 us a time."""


def counts_as_purchase(at: int) -> pl.Expr:
    """The frame half of the rule: paid by ``at``, not cancelled by then, total above zero
    (test orders are already out: :data:`shopsync.store.read.REAL_ORDERS_SQL`)."""
    moment = paid_moment()
    return (
        moment.is_not_null()
        & (moment <= at)
        & (pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
        & (pl.col("total") > 0)
    )


def paid_value(paid_at: Any, processed_at: Any, created_at: Any, status: Any) -> Any:
    """:func:`paid_moment` of one order's values, in Python (a few rows, no query)."""
    if paid_at is not None:
        return paid_at
    if status in _PAID_WITHOUT_DATE:
        return processed_at if processed_at is not None else created_at
    return None


def is_purchase(at: int, moment: Any, cancelled_at: Any, total: Any) -> bool | None:
    """:func:`counts_as_purchase` of one order's values (``moment``: :func:`paid_value`), in
    Python; None where the expression gives null (no total)."""
    if moment is None or moment > at or (cancelled_at is not None and cancelled_at <= at):
        return False
    return None if total is None else bool(total > 0)


_MONEY = pl.Decimal(38, MONEY_SCALE)
_UTC = pl.Datetime("us", "UTC")

FEATURE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "created_at": _UTC,
    "birthday": pl.Date(),
    "email_consent": pl.String(),
    "sms_consent": pl.String(),
    "currency": pl.String(),
    "paid_orders": pl.Int64(),
    "foreign_currency_orders": pl.Int64(),
    "first_order_at": _UTC,
    "last_order_at": _UTC,
    "days_since_last_order": pl.Float64(),
    "gross_spend": _MONEY,
    "refunded": _MONEY,
    "net_spend": _MONEY,
    "average_order_value": _MONEY,
    "spend_12m": _MONEY,
    "refund_rate": pl.Float64(),
    "gap_median_days": pl.Float64(),
    "gap_mean_days": pl.Float64(),
    "products": pl.List(pl.String()),
    "categories": pl.List(pl.String()),
}
"""Column names and types of the feature frame, in order."""


def _money(units: pl.Expr) -> pl.Expr:
    value: pl.Expr = units.cast(_MONEY) / (10**MONEY_SCALE)
    return value


def shop_currency(orders: pl.DataFrame) -> str | None:
    """The currency most orders use (ties: alphabetical), None without orders."""
    if orders.height == 0:
        return None
    counts = orders.group_by("currency").len().sort(["len", "currency"], descending=[True, False])
    return str(counts["currency"][0])


def compute_features(
    frames: dict[str, pl.DataFrame],
    as_of: dt.datetime,
    *,
    currency: str | None = None,
    consume: bool = False,
    purchases: bool = False,
) -> pl.DataFrame:
    """The feature frame from :func:`shopsync.frames.read_inputs`' frames (pure: no I/O).
    ``consume``: each frame leaves ``frames`` once read, so a caller holding no other
    reference gets its memory back before the end (10M orders: the orders and lines read are
    most of the peak). ``purchases``: the orders are only those :func:`counts_as_purchase`
    keeps by ``as_of``, without :data:`RULE_COLUMNS` (the read applied the rule); the shop
    currency then comes from the caller (``currency``: the purchases alone cannot say it)."""
    if not consume:
        frames = dict(frames)
    at = to_micros(as_of)
    if purchases and currency is None:
        raise ValueError("purchases=True needs the currency (of every order, not the paid)")
    currency = currency if purchases else currency or shop_currency(frames["orders"])
    currency = currency or ""
    # Customers get an integer key (their rank by id) and every join and group after the
    # first ones is on it: at 10M orders, sorting and grouping on text ids cost more than
    # the rest of the work together.
    customers = frames.pop("customers").sort("id").with_row_index("key")
    keys = customers.lazy().select(pl.col("id").alias("customer_id"), "key")
    refunds = (
        frames.pop("refunds")
        .lazy()
        .group_by("order_id")
        .agg(pl.col("amount").sum().alias("refunded"))
    )
    orders = frames.pop("orders")
    if not purchases:  # the rule read here (a read that applies it never holds its columns)
        orders = orders.lazy().filter(counts_as_purchase(at)).select(_READ).collect()
    # Each order's key by its row (only accounts present have features): the orders' own
    # columns are gathered once, not carried through the joins (10M orders: a joined copy of
    # them all beside the orders read was 430 MB)
    matched = (
        orders.lazy()
        .select("customer_id", "currency")
        .with_row_index("row")
        .join(keys, on="customer_id")
        .drop("customer_id")
        .collect(engine="streaming")
    )
    foreign = (
        matched.lazy()
        .filter(pl.col("currency") != currency)
        .group_by("key")
        .agg(pl.len().cast(pl.Int64).alias("foreign_currency_orders"))
        .collect(engine="in-memory")
        .lazy()
    )
    mine = matched.filter(pl.col("currency") == currency)
    del matched
    orders = orders.select("id", "created_at", "total")  # consumed: the rest goes
    gathered = {}
    for name in orders.columns:  # one column at a time, each freed once gathered
        gathered[name] = orders.get_column(name).gather(mine["row"])
        orders = orders.drop(name)
    orders = pl.DataFrame({**gathered, "key": mine["key"]})
    del gathered, mine
    refunded = (  # refunds capped at the order's total
        orders.lazy()
        .select("id", "total")
        .join(refunds, left_on="id", right_on="order_id", how="left", maintain_order="left")
        .select(pl.min_horizontal(pl.col("refunded").fill_null(0), pl.col("total")))
        .collect(engine="streaming")  # in memory, the join cost 6x the column it gave
    )
    orders = orders.with_columns(refunded.to_series().alias("refunded"))
    del refunds, refunded
    gaps = (
        orders.lazy()
        .select("key", "created_at")
        .sort("key", "created_at")
        .with_columns(
            pl.when(pl.col("key") == pl.col("key").shift(1))
            .then(pl.col("created_at").diff().cast(pl.Float64) / DAY_US)
            .alias("gap")
        )
        .group_by("key")
        .agg(
            pl.col("gap").median().alias("gap_median_days"),
            pl.col("gap").mean().alias("gap_mean_days"),
        )
        # a float sum: the in-memory engine's, in the rows' order, not a streamed partial one's
        .collect(engine="in-memory")
        .lazy()
    )
    spent = pl.col("total") - pl.col("refunded")
    per_customer = (
        orders.lazy()
        .group_by("key")
        .agg(
            pl.len().cast(pl.Int64).alias("paid_orders"),
            pl.col("created_at").min().alias("first_us"),
            pl.col("created_at").max().alias("last_us"),
            pl.col("total").sum().alias("gross_units"),
            pl.col("refunded").sum().alias("refunded_units"),
            spent.sum().alias("net_units"),  # not a column: 80 MB at 10M orders
            spent.filter(pl.col("created_at") > at - YEAR_US).sum().alias("net_12m_units"),
        )
        .collect(engine="streaming")  # integer sums: any engine's are the same
        .lazy()
    )
    # summed: only what the lines' match needs stays (10M orders: 235 MB less beside it)
    orders = orders.select("id", "key")
    line_items = frames.pop("line_items")
    pairs = _matches(line_items["order_id"], orders["id"])
    key = orders["key"]
    del orders  # the order ids, and the lines' below, go before the gathers
    line_items = line_items.drop("order_id")
    lines = pl.DataFrame(
        {
            "key": key.gather(pairs["right_row"]),
            "product_id": coded(line_items["product_id"]).gather(pairs["left_row"]),
            "product_type": coded(line_items["product_type"], empty=False).gather(
                pairs["left_row"]
            ),
        }
    )
    del line_items, pairs, key
    products = _bought(lines, "product_id", "products")
    categories = _bought(lines, "product_type", "categories")
    # Picked on the text ids, then keyed: among states at one instant the pick is the sort's,
    # and a sort on the keys picks another (the consent frame is small beside the orders).
    consent = (
        frames.pop("consent")
        .lazy()
        .sort(["customer_id", "channel", "observed_at"])
        .group_by(["customer_id", "channel"])
        .agg(pl.col("state").last())
        .join(keys, on="customer_id")
        .collect(engine="in-memory")  # not streamed: the pick above is the in-memory sort's
        .lazy()
    )
    email = consent.filter(pl.col("channel") == "email").select(
        "key", pl.col("state").alias("email_consent")
    )
    sms = consent.filter(pl.col("channel") == "sms").select(
        "key", pl.col("state").alias("sms_consent")
    )
    net = pl.col("net_units")
    n = pl.col("paid_orders")
    frame = (
        customers.lazy()
        .rename({"id": "customer_id"})
        .join(per_customer, on="key", how="left")
        .join(gaps, on="key", how="left")
        .join(foreign, on="key", how="left")
        .join(products, on="key", how="left")
        .join(categories, on="key", how="left")
        .join(email, on="key", how="left")
        .join(sms, on="key", how="left")
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
            # the codes' lists as texts once grouped: a text list per group cost more
            pl.col("products").cast(pl.List(pl.String)).fill_null([]),
            pl.col("categories").cast(pl.List(pl.String)).fill_null([]),
        )
        .sort("key")  # the customers' order by id
        .select([pl.col(name).cast(dtype) for name, dtype in FEATURE_SCHEMA.items()])
    )
    return frame.collect(engine="streaming")


def _text_hash(column: str) -> pl.Expr:
    return pl.col(column).hash()


def _matches(
    left: pl.Series,
    right: pl.Series,
    *,
    hashed: Callable[[str], pl.Expr] | None = None,
    chunk: int = 1 << 20,
) -> pl.DataFrame:
    """The row pairs (``left_row``, ``right_row``) whose texts are equal, as an inner join on
    the text finds them, through 64-bit hashes of the text (faster, and it carries no text);
    exact whatever the hash, since a pair stands only where the texts are equal. Nulls match
    nothing. ``hashed`` (tests): another hash expression. The texts of the pairs are compared
    ``chunk`` pairs at a time: gathered all at once they were two text columns of every line."""
    hashed = hashed or _text_hash

    def rows(texts: pl.Series, name: str) -> pl.LazyFrame:
        frame = texts.rename("text").to_frame().lazy().with_row_index(name)
        return frame.filter(pl.col("text").is_not_null()).select(name, hashed("text").alias("h"))

    pairs = (
        rows(left, "left_row")
        .join(rows(right, "right_row"), on="h")
        .drop("h")
        .collect(engine="streaming")
    )
    same = (
        pl.concat(
            [
                (left.gather(part["left_row"]) == right.gather(part["right_row"])).fill_null(False)
                for part in pairs.iter_slices(chunk)
            ],
            rechunk=False,
        )
        if pairs.height
        else pl.Series(dtype=pl.Boolean)
    )
    return pairs if same.all() else pairs.filter(same)


def _bought(lines: pl.DataFrame, column: str, name: str) -> pl.LazyFrame:
    """Per customer key, the sorted distinct values (codes, :func:`._codes.coded`) of
    ``column``."""
    return (
        lines.lazy()
        .filter(pl.col(column).is_not_null())
        .group_by("key")
        .agg(pl.col(column).unique().sort().alias(name))
    )
