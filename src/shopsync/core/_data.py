"""The rows the retention programs read, as Polars frames cut at ``as_of``.

One reader serves both the whole-shop plan (columnar bulk reads, see :mod:`._columnar`) and
the one-customer re-plan (indexed selects with bound parameters), and both hand the rules the
same frames, so a customer's plan is the same whichever way it was computed.

What "as of" means here, table by table: orders placed after ``as_of`` are left out (and
counted in :attr:`Frames.future_orders`, so a plan can say so); refunds, fulfilments,
deliveries, cancellations, reviews, consent and outbox deliveries count only if they happened
by then. Line items and products have no history in the store: their current values are used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import inspect, text

from shopsync.core._columnar import Column, read_table
from shopsync.core.features import (
    CONSENT_AT,
    CONSENT_COLUMNS,
    DAY_US,
    LINE_PRODUCT_TYPE,
    REAL_ORDERS_SQL,
    counts_as_purchase,
    shop_currency,
)
from shopsync.store import _rows
from shopsync.store._delivered import delivered_at

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["DAY_US", "Frames", "load", "paid_orders", "to_us"]

I64, TEXT = pl.Int64(), pl.String()
_UNIT = 10_000  # ten-thousandths, the store's money scale


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    return int(_rows.to_micros(value.astimezone(dt.timezone.utc)))


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

    def feature_inputs(self) -> dict[str, pl.DataFrame]:
        """The frames :func:`shopsync.core.features.compute_features` takes."""
        return {
            "customers": self.customers.select("id", "created_at", "birthday"),
            "orders": self.orders.select(
                "id",
                "customer_id",
                "created_at",
                "paid_at",
                "processed_at",
                "cancelled_at",
                "financial_status",
                "currency",
                "total",
            ),
            "refunds": self.refunds.filter(pl.col("created_at") <= self.as_of).select(
                "order_id", "amount"
            ),
            "line_items": self.lines.select("order_id", "product_id", "product_type"),
            "consent": self.consent,
        }


_CUSTOMERS = [
    Column("id", TEXT),
    Column("created_at", I64),
    Column("birthday", TEXT),
]


def _orders_columns(dialect: str) -> list[Column]:
    country = (
        "json_extract(shipping_address, '$.country_code')"
        if dialect == "sqlite"
        else "(shipping_address ->> 'country_code')"
    )
    return [
        Column("id", TEXT),
        Column("customer_id", TEXT),
        Column("created_at", I64),
        Column("paid_at", I64),
        Column("processed_at", I64),
        Column("cancelled_at", I64),
        Column("financial_status", TEXT),
        Column("fulfillment_status", TEXT),
        Column("currency", TEXT),
        Column("total", I64),
        Column("ship_country", TEXT, country),
    ]


_REFUNDS = [Column("order_id", TEXT), Column("created_at", I64), Column("amount", I64)]
_LINES = [
    Column("order_id", TEXT),
    Column("product_id", TEXT),
    Column("sku", TEXT),
    Column("product_type", TEXT, LINE_PRODUCT_TYPE),
    # Ten-thousandths of a unit, as the store keeps them (1.5 kg -> 15000): exact and integer.
    Column("quantity", I64),
    Column("unit_price", I64),
    Column("refunded_quantity", I64),
]
_FULFILLMENTS = [
    Column("order_id", TEXT),
    Column("created_at", I64),
    Column("status", TEXT),
    Column("delivered_at", I64),
]


def _products_columns(dialect: str) -> list[Column]:
    tags = "tags" if dialect == "sqlite" else "CAST(tags AS TEXT)"
    return [
        Column("id", TEXT),
        Column("product_type", TEXT),
        Column("tags", TEXT, tags),
        Column("status", TEXT),
    ]


_REVIEWS = [Column("customer_id", TEXT), Column("product_id", TEXT), Column("reviewed_at", I64)]


def _tables(store: Store) -> set[str]:
    found = getattr(store, "_shopsync_tables", None)
    if found is None:
        found = set(inspect(store.engine).get_table_names())
        store._shopsync_tables = found  # type: ignore[attr-defined]
    return set(found)


def _frame(rows: list[Any], columns: list[Column]) -> pl.DataFrame:
    schema = {c.name: c.dtype for c in columns}
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


class _Reader:
    """Whole-shop reads through the columnar reader; one-customer reads through selects."""

    def __init__(self, store: Store, shop_id: int, customer_id: str | None) -> None:
        self.store = store
        self.shop_id = shop_id
        self.customer_id = customer_id
        self.dialect = store.engine.dialect.name

    def read(self, table: str, columns: list[Column], where: str, by_customer: str) -> pl.DataFrame:
        """``where`` is trusted SQL built from integers; ``by_customer`` restricts it to the
        customer (``:cid`` is bound) when one is being re-planned."""
        if self.customer_id is None:
            return read_table(
                self.store.engine, table, columns, f"shop_id = {self.shop_id} AND {where}"
            )
        cols = ", ".join(f"{c.sql} AS {c.name}" for c in columns)
        literal = where.replace(":", "\\:")  # colons inside literals are not parameters
        sql = f"SELECT {cols} FROM {table} WHERE shop_id = :sid AND {literal} AND {by_customer}"
        with self.store.engine.connect() as conn:
            rows = conn.execute(text(sql), {"sid": self.shop_id, "cid": self.customer_id}).all()
        return _frame(list(rows), columns)


_OWN_ORDERS = "order_id IN (SELECT id FROM orders WHERE shop_id = :sid AND customer_id = :cid)"


def load(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    *,
    currency: str | None = None,
    customer_id: str | None = None,
    window_days: int = 30,
    products: pl.DataFrame | None = None,
    advocates: bool = True,
) -> Frames:
    """Read the shop (or one customer of it) as of ``as_of``.

    ``products`` skips reading the catalogue (pass one already read); ``advocates=False``
    skips the referral rewards, which only the lifecycle stages use.
    """
    at = to_us(as_of)
    shop_id = int(store.shop_id(platform, shop, create=False))
    r = _Reader(store, shop_id, customer_id)
    tables = _tables(store)
    orders = r.read(
        "orders",
        _orders_columns(r.dialect),
        f"customer_id IS NOT NULL AND created_at <= {at} AND {REAL_ORDERS_SQL}",
        "customer_id = :cid",
    )
    with store.engine.connect() as conn:
        future_sql = (
            "SELECT count(*) FROM orders WHERE shop_id = :sid AND created_at > :at"
            f" AND {REAL_ORDERS_SQL}"
        )
        if customer_id is not None:
            future_sql += " AND customer_id = :cid"
        future = conn.execute(
            text(future_sql), {"sid": shop_id, "at": at, "cid": customer_id}
        ).scalar_one()
        if currency is None and customer_id is None:
            row = conn.execute(
                text(
                    "SELECT currency FROM orders WHERE shop_id = :sid AND created_at <= :at "
                    f"AND {REAL_ORDERS_SQL} "
                    "GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1"
                ),
                {"sid": shop_id, "at": at},
            ).first()
            currency = None if row is None else str(row[0])
    rewarded = pl.DataFrame(schema={"customer_id": TEXT})
    if advocates and "loyalty_ledger" in tables:
        rewarded = r.read(
            "loyalty_ledger",
            [Column("customer_id", TEXT)],
            f"kind = 'bonus' AND source_key LIKE 'bonus:referral:%:advocate' "
            f"AND effective_at <= {at}",
            "customer_id = :cid",
        ).unique()
    sent: pl.DataFrame | None = None
    suppressed = pl.DataFrame(schema={"customer_id": TEXT})
    if "outbox" in tables:
        since = at - window_days * DAY_US
        sent = (
            r.read(
                "outbox",
                [
                    Column("customer_id", TEXT),
                    Column("key", TEXT, "idempotency_key"),
                    Column("at", I64, "finished_at"),
                ],
                f"status = 'done' AND marketing = 1 AND finished_at IS NOT NULL "
                f"AND finished_at <= {at} AND finished_at > {since}",
                "customer_id = :cid",
            )
            .group_by("customer_id", "key")
            .agg(pl.col("at").min())
        )
    if "suppressions" in tables:
        suppressed = r.read(
            "suppressions",
            [Column("customer_id", TEXT)],
            f"channel = 'email' AND created_at <= {at}",
            "customer_id = :cid",
        )
    reviews = pl.DataFrame(schema={c.name: c.dtype for c in _REVIEWS})
    if "reviews" in tables:
        reviews = r.read("reviews", _REVIEWS, f"reviewed_at <= {at}", "customer_id = :cid")
    return Frames(
        platform=platform,
        shop=shop,
        as_of=at,
        currency=currency or shop_currency(orders) or "",
        customers=r.read("customers", _CUSTOMERS, f"created_at <= {at}", "id = :cid"),
        orders=orders,
        refunds=r.read("refunds", _REFUNDS, "1 = 1", _OWN_ORDERS),
        lines=r.read("line_items", _LINES, "1 = 1", _OWN_ORDERS),
        fulfillments=r.read("fulfillments", _FULFILLMENTS, "1 = 1", _OWN_ORDERS),
        consent=r.read(
            "consent_history", CONSENT_COLUMNS, f"{CONSENT_AT} <= {at}", "customer_id = :cid"
        ),
        products=_products(store, shop_id, r.dialect) if products is None else products,
        reviews=reviews,
        advocates=rewarded,
        sent=sent,
        suppressed=suppressed,
        future_orders=int(future),
        requests_delivered=delivered_at(store, shop_id, "review_request:", at, customer_id),
    )


def _products(store: Store, shop_id: int, dialect: str) -> pl.DataFrame:
    frame = read_table(store.engine, "products", _products_columns(dialect), f"shop_id = {shop_id}")
    return frame.with_columns(
        pl.col("tags").fill_null("[]").str.json_decode(pl.List(pl.String)).alias("tags")
    )


def paid_orders(frames: Frames, at: int | None = None) -> pl.DataFrame:
    """Orders that count as purchases at ``at`` (default: the frames' as_of).

    The one rule (:func:`shopsync.core.features.counts_as_purchase`), as the features use it.
    Adds ``refunded`` (money refunded by then, capped at the total) and ``net``.
    """
    at = frames.as_of if at is None else at
    refunds = (
        frames.refunds.lazy()
        .filter(pl.col("created_at") <= at)
        .group_by("order_id")
        .agg(pl.col("amount").sum().alias("refunded"))
    )
    return (
        frames.orders.lazy()
        .filter((pl.col("created_at") <= at) & counts_as_purchase(at))
        .join(refunds, left_on="id", right_on="order_id", how="left")
        .with_columns(
            pl.min_horizontal(pl.col("refunded").fill_null(0), pl.col("total")).alias("refunded")
        )
        .with_columns((pl.col("total") - pl.col("refunded")).alias("net"))
        .collect(engine="in-memory")
    )


def consent_at(frames: Frames) -> pl.DataFrame:
    """customer_id, email_consent: the last email state observed by as_of ("unknown")."""
    last = (
        frames.consent.filter(pl.col("channel") == "email")
        .sort(["customer_id", "observed_at"])
        .group_by("customer_id")
        .agg(pl.col("state").last().alias("email_consent"))
    )
    return (
        frames.customers.select(pl.col("id").alias("customer_id"))
        .join(last, on="customer_id", how="left")
        .with_columns(pl.col("email_consent").fill_null("unknown"))
    )
