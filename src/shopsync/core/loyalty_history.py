"""A customer's loyalty history from frames: what :func:`shopsync.core.loyalty.derive` reads.

Pure: the order frames of a shop (or of one customer) and the loyalty inputs recorded for
it (birthdays, redemptions, adjustments, as rows with ``kind``, ``key``, ``occurred_at`` and
``data``) become one :class:`~shopsync.core.loyalty.History` per customer. The shop-wide
derivation and the one-customer plan build histories here, so they derive the same points.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from shopsync.core._data import FEW_ROWS, column_rows, nulls_first
from shopsync.core.features import counts_as_purchase, is_purchase, paid_moment, paid_value
from shopsync.core.loyalty import (
    Adjustment,
    BirthdayInput,
    Bonus,
    History,
    OrderFacts,
    Redemption,
)

if TYPE_CHECKING:
    from shopsync.core.policy import Policy

__all__ = [
    "earned_by_customer",
    "facts_by_customer",
    "facts_table",
    "history_of",
    "inputs_by_kind",
    "pending_by_customer",
    "with_purchase",
]

_FOREVER = 2**62  # micros: "once paid", whenever that is


def with_purchase(orders: pl.LazyFrame) -> pl.LazyFrame:
    """Adds ``paid`` (:func:`~shopsync.core.features.paid_moment`) and ``purchase``: whether
    the order counts as a purchase once paid, by the one rule
    (:func:`~shopsync.core.features.counts_as_purchase`), a cancellation after payment set
    aside.

    Why the set-aside: the features ask "is it a purchase at ``as_of``?", and an order
    cancelled by then is not. Loyalty asks "did it earn when it was paid?": an order cancelled
    after payment did, and its cancellation takes the points back (a claw-back, as a refund
    does), so the ledger derived in one go equals the one built event by event. Everything
    else (test orders, unpaid, cancelled before payment, a total not above zero) is the rule.
    """
    kept = pl.col("cancelled_at")
    return (
        orders.with_columns(paid_moment().alias("paid"), kept.alias("_cancelled"))
        .with_columns(
            pl.when(kept > pl.col("paid")).then(None).otherwise(kept).alias("cancelled_at")
        )
        .with_columns(counts_as_purchase(_FOREVER).alias("purchase"))
        .with_columns(pl.col("_cancelled").alias("cancelled_at"))
        .drop("_cancelled")
    )


def facts_table(frames: dict[str, pl.DataFrame], policy: Policy) -> pl.DataFrame:
    """One row per order with what the rules read of it (``customer_id``, ``id``,
    ``created_at``, ``paid``, ``cancelled_at``, ``currency``, ``value``, ``total``,
    ``purchase``), by customer then placement: the rows of :func:`facts_by_customer` and of
    :func:`shopsync.core.loyalty_columns.derive_columns`."""
    earn = policy.loyalty.earn
    orders = frames["orders"]
    if orders.height <= FEW_ROWS:
        return pl.DataFrame(_fact_rows(orders, policy), schema=_facts_schema(orders), orient="row")
    value = pl.col("subtotal")
    if earn.include_shipping:
        value = value + pl.col("total_shipping")
    if earn.include_tax:
        value = value + pl.col("total_tax")
    return (
        with_purchase(frames["orders"].lazy())
        .select(
            "customer_id",
            "id",
            "created_at",
            "paid",
            "cancelled_at",
            "currency",
            value.alias("value"),
            "total",
            "purchase",
        )
        .sort(["customer_id", "created_at", "id"])
        .collect(engine="in-memory")
    )


_FACT_READS = (
    "customer_id",
    "id",
    "created_at",
    "paid_at",
    "processed_at",
    "financial_status",
    "cancelled_at",
    "currency",
    "total",
    "subtotal",
)


def _fact_rows(orders: pl.DataFrame, policy: Policy) -> list[tuple[Any, ...]]:
    """:func:`facts_table`'s rows of a few orders, in Python (no query), sorted as it sorts."""
    earn = policy.loyalty.earn
    valued = ("total_shipping",) * earn.include_shipping + ("total_tax",) * earn.include_tax
    rows = []
    for (
        cid,
        oid,
        created,
        paid_at,
        processed,
        status,
        cancelled,
        currency,
        total,
        *parts,
    ) in column_rows(orders, *_FACT_READS, *valued):
        paid = paid_value(paid_at, processed, created, status)
        after = cancelled is not None and paid is not None and cancelled > paid
        kept = None if after else cancelled  # cancelled after payment: set aside (with_purchase)
        value = None if None in parts else sum(parts)
        purchase = is_purchase(_FOREVER, paid, kept, total)
        rows.append((cid, oid, created, paid, cancelled, currency, value, total, purchase))
    rows.sort(key=lambda r: (nulls_first(r[0]), nulls_first(r[2]), nulls_first(r[1])))
    return rows


def _facts_schema(orders: pl.DataFrame) -> dict[str, pl.DataType]:
    """:func:`facts_table`'s columns and dtypes."""
    schema = orders.schema
    money = schema["subtotal"]
    return {
        "customer_id": schema["customer_id"],
        "id": schema["id"],
        "created_at": schema["created_at"],
        "paid": schema["paid_at"],
        "cancelled_at": schema["cancelled_at"],
        "currency": schema["currency"],
        "value": money,
        "total": schema["total"],
        "purchase": pl.Boolean(),
    }


def facts_by_customer(
    frames: dict[str, pl.DataFrame], policy: Policy, table: pl.DataFrame | None = None
) -> dict[str, list[OrderFacts]]:
    """Each customer's :class:`OrderFacts`; ``table`` is :func:`facts_table`'s (possibly
    restricted to some customers) when the caller has it."""
    rows: Iterable[tuple[Any, ...]]
    if table is not None:
        rows = table.iter_rows()
    elif frames["orders"].height <= FEW_ROWS:  # a few: no frame built
        rows = _fact_rows(frames["orders"], policy)
    else:
        rows = facts_table(frames, policy).iter_rows()
    refunds: dict[str, list[tuple[str, int, int]]] = {}
    for order_id, refund_id, at, amount in _sorted_refunds(frames["refunds"]):
        refunds.setdefault(order_id, []).append((refund_id, at, amount))
    categories: dict[str, tuple[str, ...]] = {}
    if "line_items" in frames:
        categories = _categories(frames["line_items"])
    out: dict[str, list[OrderFacts]] = {}
    no_refunds: tuple[tuple[str, int, int], ...] = ()
    for row in rows:
        customer_id, oid, created, paid_at, cancelled, currency, val, total, purchase = row
        out.setdefault(customer_id, []).append(
            OrderFacts(
                oid,
                created,
                paid_at,
                cancelled,
                currency,
                val,
                total,
                tuple(refunds[oid]) if oid in refunds else no_refunds,
                categories.get(oid, ()),
                purchase,
            )
        )
    return out


def _sorted_refunds(refunds: pl.DataFrame) -> Iterable[tuple[Any, ...]]:
    """The refund rows (order_id, id, created_at, amount) by order, then time, then id."""
    if refunds.height > FEW_ROWS:
        return refunds.sort(["order_id", "created_at", "id"]).iter_rows()
    rows = column_rows(refunds, "order_id", "id", "created_at", "amount")
    return sorted(rows, key=lambda r: (nulls_first(r[0]), nulls_first(r[2]), nulls_first(r[1])))


def _categories(lines: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    """Each order's distinct product types (none or empty left out), sorted."""
    if lines.height > FEW_ROWS:
        grouped = (
            lines.filter(pl.col("product_type").is_not_null() & (pl.col("product_type") != ""))
            .group_by("order_id")
            .agg(pl.col("product_type").unique().sort())
        )
        return {oid: tuple(types) for oid, types in grouped.iter_rows()}
    found: dict[str, set[str]] = {}
    for oid, ptype in zip(
        lines["order_id"].to_list(), lines["product_type"].to_list(), strict=True
    ):
        if ptype:
            found.setdefault(oid, set()).add(ptype)
    return {oid: tuple(sorted(types)) for oid, types in found.items()}


def earned_by_customer(earned: pl.DataFrame | None) -> dict[str, dict[str, int]]:
    """The points the ledger's earn entries hold (``customer_id``, ``order_id``, ``points``)
    by customer, then order: :attr:`History.earned` of each."""
    found: dict[str, dict[str, int]] = {}
    if earned is not None:
        names = ("customer_id", "order_id", "points")
        rows: Iterable[tuple[Any, ...]] = (
            earned.select(names).iter_rows()
            if earned.height > FEW_ROWS
            else column_rows(earned, *names)
        )
        for customer_id, order_id, points in rows:
            found.setdefault(customer_id, {})[order_id] = points
    return found


def pending_by_customer(earned: pl.DataFrame | None) -> dict[str, frozenset[str]] | None:
    """Of the orders :func:`earned_by_customer` finds, those whose earn entry holds its points
    pending (``pending``), by customer: :attr:`History.pending_earns` of each (a customer
    missing: none); None without the column (the return window decides)."""
    if earned is None or "pending" not in earned.columns:
        return None
    found: dict[str, set[str]] = {}
    if earned.height > FEW_ROWS:
        rows: Iterable[tuple[Any, ...]] = (
            earned.filter(pl.col("pending")).select("customer_id", "order_id").iter_rows()
        )
    else:  # Series, not a query
        held = column_rows(earned, "customer_id", "order_id", "pending")
        rows = [(c, o) for c, o, pending in held if pending]
    for customer_id, order_id in rows:
        found.setdefault(customer_id, set()).add(order_id)
    return {customer_id: frozenset(ids) for customer_id, ids in found.items()}


def inputs_by_kind(inputs: Iterable[Any]) -> dict[str, dict[str, list[Any]]]:
    """Input rows by customer, then by kind, in the order given (oldest first)."""
    found: dict[str, dict[str, list[Any]]] = {}
    for r in inputs:
        found.setdefault(r.customer_id, {}).setdefault(r.kind, []).append(r)
    return found


def history_of(
    customer_id: str,
    facts: Iterable[OrderFacts],
    inputs: Mapping[str, list[Any]],
    bonuses: Iterable[Bonus] = (),
    earned: Mapping[str, int] | None = None,
    pending_earns: frozenset[str] | None = None,
) -> History:
    """One customer's history: their orders' facts, and their inputs by kind; ``earned``,
    the points the ledger's earn entries hold by order id (:attr:`History.earned`), and
    ``pending_earns`` (:attr:`History.pending_earns`)."""
    return History(
        customer_id,
        tuple(facts),
        tuple(
            BirthdayInput(r.occurred_at, *_month_day(r.data["birthday"]))
            for r in inputs.get("birthday", ())
        ),
        tuple(Redemption(r.key, r.occurred_at, r.data["points"]) for r in inputs.get("redeem", ())),
        tuple(
            Adjustment(r.key, r.occurred_at, r.data["points"], r.data["reason"])
            for r in inputs.get("adjust", ())
        ),
        tuple(bonuses),
        dict(earned or {}),
        pending_earns,
    )


def _month_day(value: str) -> tuple[int, int]:
    date = dt.date.fromisoformat(value)
    return date.month, date.day
