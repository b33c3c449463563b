"""The rows the retention programs read, as Polars frames cut at ``as_of``.

:func:`shopsync.frames.load` fills them from the store's read model, for the whole-shop plan
(columnar bulk reads) and for the one-customer re-plan (indexed selects with bound parameters),
and both hand the rules the same frames, so a customer's plan is the same whichever way it was
computed. Nothing here reads the store: a test builds frames by hand.

What "as of" means here, table by table: orders placed after ``as_of`` are left out (and
counted in :attr:`Frames.future_orders`, so a plan can say so); refunds, fulfilments,
deliveries, cancellations, reviews, consent and outbox deliveries count only if they happened
by then. Line items and products have no history in the store: their current values are used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shopsync._instants import to_micros
from shopsync.core.features import (
    DAY_US,
    PURCHASE_COLUMNS,
    counts_as_purchase,
    is_purchase,
    paid_value,
)

__all__ = [
    "DAY_US",
    "FAILED_SHIPMENTS",
    "FEW_ROWS",
    "SHIPMENT_SCHEMA",
    "Frames",
    "column_rows",
    "consent_at",
    "nulls_first",
    "paid_orders",
    "refunded_by_order",
    "refunded_by_order_rows",
    "shipments_by_order",
    "shipments_by_order_rows",
    "to_us",
]

I64, TEXT = pl.Int64(), pl.String()
FEW_ROWS = 512
"""Rows up to which a rule walks a frame in Python, or asks in Python whether a query can
find anything, rather than run a Polars query: one customer's (``plan_customer``, a webhook's
re-plan), where each query's fixed cost (~0.1-0.5 ms) is most of the work (issue 18). Larger
frames take the query; tests/core/test_plan_shortcuts.py forces every rule to its query and
compares."""


def nulls_first(value: Any) -> tuple[bool, Any]:
    """A sort key putting None first, as Polars' sort does (the Python paths' row order)."""
    return (value is not None, value)


def column_rows(frame: pl.DataFrame, *names: str) -> Iterator[tuple[Any, ...]]:
    """``frame``'s ``names`` columns as Python tuples, row by row: Series read as lists, not a
    Polars query (a :data:`FEW_ROWS` frame's)."""
    return zip(*(frame[name].to_list() for name in names), strict=True)


SHIPMENT_SCHEMA: dict[str, pl.DataType] = {
    "order_id": TEXT,
    "id": TEXT,
    "created_at": I64,
    "status": TEXT,
    "delivered_at": I64,
    "tracking_company": TEXT,
    "tracking_numbers": pl.List(TEXT),
    "tracking_urls": pl.List(TEXT),
}
"""The recent shipments with their tracking (:attr:`Frames.shipments`)."""


def _no_shipments() -> pl.DataFrame:
    return pl.DataFrame(schema=SHIPMENT_SCHEMA)


CHECKOUTS: dict[str, pl.DataType] = {
    "id": TEXT,
    "customer_id": TEXT,
    "email": TEXT,
    "created_at": I64,
    "completed_at": I64,
    "total": I64,
    "currency": TEXT,
    "product_ids": pl.List(TEXT),
}
"""The checkouts frame: micros and ten-thousandths; ``completed_at`` null until it became
an order (by ``as_of``)."""

BROWSE: dict[str, pl.DataType] = {
    "customer_id": TEXT,
    "product_id": TEXT,
    "kind": TEXT,
    "occurred_at": I64,
}
"""The browse events frame (``product_viewed``, ``product_added_to_cart``, ``checkout_started``)
of identified customers only: an anonymous visitor never reaches a program."""


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    return to_micros(value.astimezone(dt.timezone.utc))


@dataclass
class Frames:
    """Everything the programs read for one shop (or one customer of it)."""

    platform: str
    shop: str
    as_of: int
    """Microseconds since the epoch, UTC."""
    currency: str
    customers: pl.DataFrame
    orders: pl.DataFrame
    refunds: pl.DataFrame
    lines: pl.DataFrame
    """Line items; ``quantity`` and ``refunded_quantity`` in ten-thousandths (QUANTITY_SCALE),
    so a line sold by weight (1.5 kg = 15000) is exact."""
    fulfillments: pl.DataFrame
    consent: pl.DataFrame
    products: pl.DataFrame
    reviews: pl.DataFrame
    advocates: pl.DataFrame
    """Customers with a referral rewarded by the loyalty ledger (column ``customer_id``)."""
    sent: pl.DataFrame | None
    """Marketing messages the outbox delivered (customer_id, key, at); None: no outbox."""
    suppressed: pl.DataFrame
    """Customers who unsubscribed through shopsync (column ``customer_id``)."""
    future_orders: int
    requests_delivered: dict[str, int] = field(default_factory=dict)
    """Review request key -> when the outbox delivered it (micros): reminders wait on it."""
    shipments: pl.DataFrame = field(default_factory=_no_shipments)
    """Recent shipments with their tracking (:data:`SHIPMENT_SCHEMA`), read only when the
    shipping program asks (``shopsync.frames.load(shipments_since=...)``): tracking has no
    history in the store, so its current value is used."""
    checkouts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CHECKOUTS))
    """Checkouts started by ``as_of`` (:data:`CHECKOUTS`; issue 22)."""
    browse: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=BROWSE))
    """Identified customers' browse events by ``as_of`` (:data:`BROWSE`; issue 22)."""
    erased: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"customer_id": TEXT}))
    """Customers erased (GDPR) whose orders remain for the shop's figures: no program plans
    for them, not even held (a customer deleted on the platform is not here: planned)."""

    def feature_inputs(self) -> dict[str, pl.DataFrame]:
        """The frames :func:`shopsync.core.features.compute_features` takes."""
        return {
            "customers": self.customers.select("id", "created_at", "birthday"),
            "orders": self.orders.select(PURCHASE_COLUMNS),
            "refunds": self.refunds.filter(pl.col("created_at") <= self.as_of).select(
                "order_id", "amount"
            ),
            "line_items": self.lines.select("order_id", "product_id", "product_type"),
            "consent": self.consent,
        }


FAILED_SHIPMENTS = ("cancelled", "canceled", "failure", "error")
"""Fulfilment statuses (lower case) of a shipment that never went out."""


def refunded_by_order(frames: Frames, at: int) -> pl.LazyFrame:
    """``order_id``, ``refunded``: the money each order had refunded by ``at``."""
    return (
        frames.refunds.lazy()
        .filter(pl.col("created_at") <= at)
        .group_by("order_id")
        .agg(pl.col("amount").sum().alias("refunded"))
    )


def shipments_by_order(frames: Frames, at: int) -> pl.LazyFrame:
    """Per order, its shipments made by ``at`` (failed ones left out): ``fulfilled_at`` (the
    last), ``delivered_at`` (the last delivery by ``at``), ``shipments`` and ``delivered``
    (how many, and how many of them delivered)."""
    return (
        frames.fulfillments.lazy()
        .filter(
            (pl.col("created_at") <= at)
            & ~pl.col("status").str.to_lowercase().is_in(FAILED_SHIPMENTS)
        )
        .group_by("order_id")
        .agg(
            pl.col("created_at").max().alias("fulfilled_at"),
            pl.col("delivered_at").filter(pl.col("delivered_at") <= at).max().alias("delivered_at"),
            pl.len().alias("shipments"),
            (pl.col("delivered_at") <= at).sum().alias("delivered"),
        )
    )


def shipments_by_order_rows(frames: Frames, at: int) -> dict[str, tuple[int, int | None, int, int]]:
    """:func:`shipments_by_order` of a :data:`FEW_ROWS` frame, in Python: order -> (last
    shipment, last delivery by ``at``, shipments, delivered)."""
    found: dict[str, tuple[int, int | None, int, int]] = {}
    rows = column_rows(frames.fulfillments, "order_id", "created_at", "status", "delivered_at")
    for order_id, created, status, delivered_at in rows:
        if created is None or created > at or status is None or order_id is None:
            continue
        if status.lower() in FAILED_SHIPMENTS:
            continue
        last, delivery, count, delivered = found.get(order_id, (created, None, 0, 0))
        if delivered_at is not None and delivered_at <= at:
            delivery = delivered_at if delivery is None else max(delivery, delivered_at)
            delivered += 1
        found[order_id] = (max(last, created), delivery, count + 1, delivered)
    return found


def refunded_by_order_rows(frames: Frames, at: int) -> dict[str, int]:
    """:func:`refunded_by_order` of a :data:`FEW_ROWS` frame, in Python: order -> money
    refunded by ``at``."""
    found: dict[str, int] = {}
    for order_id, created, amount in column_rows(
        frames.refunds, "order_id", "created_at", "amount"
    ):
        if created is not None and created <= at:
            found[order_id] = found.get(order_id, 0) + (amount or 0)
    return found


def paid_orders(
    frames: Frames, at: int | None = None, columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Orders that count as purchases at ``at`` (default: the frames' as_of).

    The one rule (:func:`shopsync.core.features.counts_as_purchase`), as the features use it.
    Adds ``refunded`` (money refunded by then, capped at the total) and ``net``. ``columns``:
    only these (the planner's programs read four of the thirteen).
    """
    at = frames.as_of if at is None else at
    if frames.orders.height <= FEW_ROWS and frames.refunds.height <= FEW_ROWS:
        return _few_paid_orders(frames, at, columns)
    refunds = refunded_by_order(frames, at)
    paid = (
        frames.orders.lazy()
        .filter((pl.col("created_at") <= at) & counts_as_purchase(at))
        .join(refunds, left_on="id", right_on="order_id", how="left")
        .with_columns(
            pl.min_horizontal(pl.col("refunded").fill_null(0), pl.col("total")).alias("refunded")
        )
        .with_columns((pl.col("total") - pl.col("refunded")).alias("net"))
    )
    if columns is not None:
        paid = paid.select(columns)
    return paid.collect(engine="in-memory")


def _few_paid_orders(frames: Frames, at: int, columns: Sequence[str] | None) -> pl.DataFrame:
    """:func:`paid_orders` of a few orders and refunds, in Python: one frame built, no query."""
    refunded: dict[str, int] = {}
    for oid, moment, amount in column_rows(frames.refunds, "order_id", "created_at", "amount"):
        if oid is not None and moment is not None and moment <= at:
            refunded[oid] = refunded.get(oid, 0) + (amount or 0)
    orders = frames.orders
    kept: list[tuple[Any, ...]] = []
    rule = ("paid_at", "processed_at", "created_at", "financial_status", "cancelled_at", "total")
    for row, (oid, paid, processed, created, status, cancelled, total) in zip(
        column_rows(orders, *orders.columns), column_rows(orders, "id", *rule), strict=True
    ):
        moment = paid_value(paid, processed, created, status)
        if created is not None and created <= at and is_purchase(at, moment, cancelled, total):
            back = min(refunded.get(oid, 0), total)
            kept.append((*row, back, total - back))
    schema = {**orders.schema, "refunded": I64, "net": I64}
    paid = pl.DataFrame(kept, schema=schema, orient="row")
    return paid if columns is None else paid[list(columns)]  # columns, not a query


def consent_at(frames: Frames) -> pl.DataFrame:
    """customer_id, email_consent: the last email state observed by as_of ("unknown")."""
    return consent_lazy(frames).collect(engine="in-memory")


def consent_lazy(frames: Frames) -> pl.LazyFrame:
    """:func:`consent_at` as a lazy query, to join another (one query, not two)."""
    last = (
        frames.consent.lazy()
        .filter(pl.col("channel") == "email")
        .sort(["customer_id", "observed_at"])
        .group_by("customer_id")
        .agg(pl.col("state").last().alias("email_consent"))
    )
    return (
        frames.customers.lazy()
        .select(pl.col("id").alias("customer_id"))
        .join(last, on="customer_id", how="left")
        .with_columns(pl.col("email_consent").fill_null("unknown"))
    )
