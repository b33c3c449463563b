"""NPS / CSAT surveys: one question after delivery, once per customer per period, and the
follow-ups an answer calls for (issue 22).

The rule:

- **when**: ``days_after_delivery`` after the order's last delivery when every shipment of
  the order has a delivery date by ``as_of``, else ``days_after_fulfillment`` after its last
  shipment (the same order facts the review requests read);
- **which orders**: fully fulfilled, not cancelled or voided, not fully refunded by
  ``as_of``, with a customer (a guest order has no one to follow up with);
- **once per customer per period**: a customer's surveys are walked in due order; the first
  is kept, then each one due more than ``period_days`` after the last one kept (the same walk
  as the review requests' once-per-period rule, over the customer's whole history, so the
  chain is the same on every plan and a survey can be held or skipped but never repeated
  within a period). Key ``survey_request:{shop}:{order}``;
- **not late**: a survey more than ``max_late_days`` past its due date is dropped;
- **unsubscribed customers are never asked**, even where ``messaging.marketing`` makes the
  survey transactional.

Marketing by default: the Bundesgerichtshof held that an email asking a buyer to take part
in a customer satisfaction survey is advertising, even beside the invoice (BGH, 10 July
2018, VI ZR 225/17), so in the EU the survey needs consent (or the soft opt-in) like a
review request. Where a shop's counsel treats feedback requests as transactional (the US
CAN-SPAM "primary purpose" test), ``messaging.marketing = {survey_request = false}`` turns
consent, the holdout and the cap off for it; unsubscribes still hold (above).

The answer itself and its follow-ups (a detractor's alert to the shop's support, a
promoter's review or referral ask) are recorded by :mod:`shopsync.surveys` when the customer
clicks; the actions they become live here so the outbox can load them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import polars as pl

from shopsync.core._candidates import Candidates, key_column, soonest
from shopsync.core._data import DAY_US, Frames, refunded_by_order, shipments_by_order
from shopsync.core.actions import Action
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.core.review_requests import _once_per_period

__all__ = [
    "SCALES",
    "SurveyDetractor",
    "SurveyReferral",
    "SurveyRequest",
    "band",
    "survey_candidates",
    "survey_next_due",
    "survey_requests",
]

Scale = Literal["nps", "csat"]
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}
"""The lowest and highest score of each scale."""
_DETRACTOR = {"nps": 6, "csat": 2}
_PROMOTER = {"nps": 9, "csat": 5}


def band(scale: str, score: int) -> Literal["detractor", "passive", "promoter"]:
    """NPS: 0-6 detractor, 7-8 passive, 9-10 promoter (Reichheld); CSAT: 1-2 detractor
    (dissatisfied), 3-4 passive, 5 promoter (very satisfied)."""
    if score <= _DETRACTOR[scale]:
        return "detractor"
    if score >= _PROMOTER[scale]:
        return "promoter"
    return "passive"


class SurveyRequest(Action):
    """Ask one NPS or CSAT question about an order; each score in the email is a link."""

    kind: Literal["survey_request"] = "survey_request"
    marketing: bool = True
    order_id: str
    scale: Scale


class SurveyDetractor(Action):
    """A detractor's answer, for the shop's support (not an email to the customer)."""

    kind: Literal["survey_detractor"] = "survey_detractor"
    marketing: bool = False
    order_id: str
    scale: Scale
    score: int
    comment: str | None = None


class SurveyReferral(Action):
    """Ask a promoter to refer a friend."""

    kind: Literal["survey_referral"] = "survey_referral"
    marketing: bool = True
    order_id: str
    score: int


def survey_requests(frames: Frames, policy: Policy) -> list[Action]:
    """Surveys due at ``frames.as_of``."""
    return survey_candidates(frames, policy).actions()


def survey_candidates(frames: Frames, policy: Policy) -> Candidates:
    """:func:`survey_requests` as candidates (built into actions only when kept)."""
    s = policy.surveys
    if not s.enabled:
        return _none(frames, policy)
    at = frames.as_of
    shipments = shipments_by_order(frames, at)
    refunded = refunded_by_order(frames, at)
    all_delivered = pl.col("delivered") == pl.col("shipments")
    found = (
        frames.orders.lazy()
        .filter(
            pl.col("customer_id").is_not_null()
            & (pl.col("fulfillment_status") == "fulfilled")
            & (pl.col("cancelled_at").is_null() | (pl.col("cancelled_at") > at))
            & ~pl.col("financial_status").is_in(["voided", "cancelled"])
        )
        .join(shipments, left_on="id", right_on="order_id")
        .join(refunded, left_on="id", right_on="order_id", how="left")
        .filter((pl.col("total") == 0) | (pl.col("refunded").fill_null(0) < pl.col("total")))
        .with_columns(
            pl.when(all_delivered)
            .then(pl.col("delivered_at") + s.days_after_delivery * DAY_US)
            .otherwise(pl.col("fulfilled_at") + s.days_after_fulfillment * DAY_US)
            .alias("due"),
            all_delivered.alias("after_delivery"),
            pl.lit("").alias("product_id"),  # the walk groups by customer and product
        )
        .filter(pl.col("due") <= at)
        .select(
            pl.col("id").alias("order_id"), "customer_id", "product_id", "due", "after_delivery"
        )
        .sort(["customer_id", "due", "order_id"])
        .with_columns((pl.col("due") - s.period_days * DAY_US).alias("period_start"))
        .collect(engine="in-memory")
    )
    if found.height == 0:
        return _none(frames, policy)
    # a survey due exactly one period after the last one kept is allowed
    kept = _once_per_period(found).filter(
        (pl.col("due") >= at - s.max_late_days * DAY_US)
        & ~pl.col("customer_id").is_in(frames.suppressed["customer_id"].implode())
    )
    kept = key_column(kept, "survey_request", frames.shop, pl.col("order_id"))
    kept = kept.with_columns(
        pl.lit("survey_request").alias("kind"), pl.lit(True).alias("marketing")
    )
    return Candidates(kept, _builder(frames, policy))


def survey_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new survey due (issue 19): a shipment's or delivery's date plus the delay."""
    s = policy.surveys
    at = frames.as_of
    if not s.enabled:
        return soonest([], at)
    ships = frames.fulfillments.lazy().join(
        frames.orders.lazy().select(pl.col("id").alias("order_id"), "customer_id"), on="order_id"
    )
    return soonest(
        [
            ships.select(
                "customer_id",
                (pl.col("created_at") + s.days_after_fulfillment * DAY_US).alias("moment"),
            ),
            ships.select(
                "customer_id",
                (pl.col("delivered_at") + s.days_after_delivery * DAY_US).alias("moment"),
            ),
        ],
        at,
    )


def _none(frames: Frames, policy: Policy) -> Candidates:
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "kind": pl.String,
            "due": pl.Int64,
            "key": pl.String,
            "marketing": pl.Boolean,
        }
    )
    return Candidates(empty, _builder(frames, policy))


def _builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    s = policy.surveys
    base = {"platform": frames.platform, "shop": frames.shop}

    def build(row: dict[str, Any]) -> Action:
        order_id = row["order_id"]
        after = row["after_delivery"]
        when = "delivery" if after else "fulfilment"
        delay = s.days_after_delivery if after else s.days_after_fulfillment
        return SurveyRequest(
            **base,
            customer_id=row["customer_id"],
            due_at=from_micros(row["due"]),
            reason=(
                f"{delay} days after the {when} of order {order_id}: ask how satisfied the "
                f"customer is ({s.scale.upper()}), at most once in {s.period_days} days"
            ),
            facts={"order_id": order_id, "after": when, "delay_days": delay, "scale": s.scale},
            idempotency_key=row["key"],
            order_id=order_id,
            scale=s.scale,
        )

    return build
