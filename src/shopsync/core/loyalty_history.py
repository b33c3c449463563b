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

from shopsync.core.features import paid_moment
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

__all__ = ["facts_by_customer", "history_of", "inputs_by_kind"]


def facts_by_customer(
    frames: dict[str, pl.DataFrame], policy: Policy
) -> dict[str, list[OrderFacts]]:
    earn = policy.loyalty.earn
    value = pl.col("subtotal")
    if earn.include_shipping:
        value = value + pl.col("total_shipping")
    if earn.include_tax:
        value = value + pl.col("total_tax")
    paid = paid_moment()
    table = (
        frames["orders"]
        .lazy()
        .select(
            "customer_id",
            "id",
            "created_at",
            paid.alias("paid"),
            "cancelled_at",
            "currency",
            value.alias("value"),
            "total",
        )
        .sort(["customer_id", "created_at", "id"])
        .collect(engine="in-memory")
    )
    refunds: dict[str, list[tuple[str, int, int]]] = {}
    for order_id, refund_id, at, amount in (
        frames["refunds"].sort(["order_id", "created_at", "id"]).iter_rows()
    ):
        refunds.setdefault(order_id, []).append((refund_id, at, amount))
    categories: dict[str, tuple[str, ...]] = {}
    if "line_items" in frames:
        grouped = (
            frames["line_items"]
            .filter(pl.col("product_type").is_not_null() & (pl.col("product_type") != ""))
            .group_by("order_id")
            .agg(pl.col("product_type").unique().sort())
        )
        categories = {oid: tuple(types) for oid, types in grouped.iter_rows()}
    out: dict[str, list[OrderFacts]] = {}
    no_refunds: tuple[tuple[str, int, int], ...] = ()
    for customer_id, oid, created, paid_at, cancelled, currency, val, total in table.iter_rows():
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
            )
        )
    return out


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
) -> History:
    """One customer's history: their orders' facts, and their inputs by kind."""
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
    )


def _month_day(value: str) -> tuple[int, int]:
    date = dt.date.fromisoformat(value)
    return date.month, date.day
