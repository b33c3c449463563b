"""Abandoned checkouts: remind a customer of the checkout they started and did not finish.

The rule, as Shopify's own Flow template and Klaviyo's flow run it (research retention §1.2,
§8):

- **which checkouts**: started by an identified customer (a guest has nobody the planner
  may check consent for), with at least one product, at least ``min_total``, not completed;
  only the customer's **latest** checkout counts (Shopify's "hasn't ... abandoned another
  checkout since starting": a newer checkout replaces the older one's sequence);
- **stop on purchase**: any order of the customer placed at or after the checkout started
  ends the sequence, except the checkout's own pending order on WooCommerce (there the
  checkout *is* an unpaid order, so it ends when that order is paid). The outbox checks the
  same again just before delivery (:func:`shopsync.store.checkout_recovery.recovered`), so a
  reminder planned before the purchase is cancelled, not sent;
- **when**: step *n* is due ``steps_hours[n]`` after the checkout started; only the step due
  now is planned, and not once it is ``late_hours`` past due (a run that missed a step skips
  it, as Klaviyo does not reschedule skipped messages); one key per step
  (``abandoned_checkout:{shop}:{checkout}:stage{n}``), so re-planning sends nothing twice;
- **cool-down**: a customer reminded about another checkout within ``cooldown_days`` before
  this one started gets no new sequence;
- **code**: with ``code_percent`` set, the steps in ``code_steps`` (default the last) carry a
  single-use code for this customer (``discount_percent``: the sinks derive the code from the
  key and create it on the platform before the email quotes it).

The reminders are marketing (Klaviyo and Shopify both offer "email subscribers only"; EU
practice adds the consent filter): the planner's guard applies consent, caps, quiet hours,
priorities and the holdout as for every program.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from shopsync.core._candidates import Candidates, key_column, soonest
from shopsync.core._data import Frames
from shopsync.core.actions import Action, UTCDateTime
from shopsync.core.loyalty import from_micros
from shopsync.core.policy import Policy
from shopsync.models import Money

__all__ = [
    "AbandonedCheckoutReminder",
    "CheckoutRecovery",
    "abandoned_candidates",
    "abandoned_checkouts",
    "abandoned_next_due",
    "checkout_recovery",
]

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
KIND = "abandoned_checkout"
_UNIT = 10_000


class AbandonedCheckoutReminder(Action):
    """One step of the reminders for a checkout the customer did not finish."""

    kind: Literal["abandoned_checkout"] = "abandoned_checkout"
    marketing: bool = True
    checkout_id: str
    stage: int
    """1-based step."""
    steps: int
    """How many steps the sequence has."""
    started_at: UTCDateTime
    product_ids: tuple[str, ...]
    total: Money
    discount_percent: int | None = None
    """None: no code in this step."""


def abandoned_checkouts(frames: Frames, paid: pl.DataFrame, policy: Policy) -> list[Action]:
    """The reminders due at ``frames.as_of``."""
    return abandoned_candidates(frames, paid, policy).actions()


def abandoned_candidates(frames: Frames, paid: pl.DataFrame, policy: Policy) -> Candidates:
    """:func:`abandoned_checkouts` as candidates; ``paid`` is
    :func:`~shopsync.core._data.paid_orders` of the frames."""
    s = policy.abandoned_checkout
    at = frames.as_of
    if not s.enabled or frames.checkouts.height == 0:
        return _none(frames, policy)
    started = frames.checkouts.filter(
        pl.col("customer_id").is_not_null() & (pl.col("created_at") <= at)
    )
    latest = started.sort(["customer_id", "created_at", "id"]).group_by("customer_id").last()
    open_ = latest.filter(
        pl.col("completed_at").is_null()
        & (pl.col("product_ids").list.len() > 0)
        & (pl.col("total") >= s.min_total * _UNIT)
    )
    # stop on purchase: an order of the customer placed since (its own unpaid order aside)
    paid_ids = paid.get_column("id").implode()
    orders = frames.orders.filter(pl.col("created_at") <= at).select(
        pl.col("id").alias("order_id"), "customer_id", pl.col("created_at").alias("order_at")
    )
    bought = (
        open_.select("id", "customer_id", "created_at")
        .join(orders, on="customer_id")
        .filter(
            (pl.col("order_at") >= pl.col("created_at"))
            & ((pl.col("order_id") != pl.col("id")) | pl.col("order_id").is_in(paid_ids))
        )
        .get_column("id")
        .unique()
        .implode()
    )
    open_ = open_.filter(~pl.col("id").is_in(bought))
    steps = [h * HOUR_US for h in s.steps_hours]
    stage: pl.Expr = pl.lit(0)
    for n, offset in enumerate(steps, start=1):
        stage = pl.when(pl.col("created_at") + offset <= at).then(pl.lit(n)).otherwise(stage)
    due: pl.Expr = pl.lit(None, dtype=pl.Int64)
    for n, offset in enumerate(steps, start=1):
        due = pl.when(pl.col("stage") == n).then(pl.col("created_at") + offset).otherwise(due)
    found = (
        open_.with_columns(stage.alias("stage"))
        .filter(pl.col("stage") > 0)
        .with_columns(due.alias("due"))
        .filter(at - pl.col("due") <= s.late_hours * HOUR_US)
    )
    found = _cooled_down(found, frames, s.cooldown_days)
    if found.height == 0:
        return _none(frames, policy)
    found = key_column(
        found, KIND, frames.shop, pl.col("id"), pl.lit("stage") + pl.col("stage").cast(pl.String)
    )
    frame = found.with_columns(pl.lit(KIND).alias("kind"), pl.lit(True).alias("marketing"))
    return Candidates(frame.sort("customer_id", "id"), _builder(frames, policy))


def abandoned_next_due(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the earliest moment after ``as_of`` at which time alone can make
    a new reminder due (issue 19): a checkout's start plus any step's delay."""
    s = policy.abandoned_checkout
    at = frames.as_of
    if not s.enabled:
        return soonest([], at)
    started = frames.checkouts.lazy().filter(pl.col("customer_id").is_not_null())
    return soonest(
        [
            started.select("customer_id", (pl.col("created_at") + h * HOUR_US).alias("moment"))
            for h in sorted(set(s.steps_hours))
        ],
        at,
    )


@dataclass(frozen=True)
class CheckoutRecovery:
    """How many checkouts of a period ended in a purchase (the report's recovery rate)."""

    checkouts: int
    recovered: int
    days: int
    window_days: int

    @property
    def rate(self) -> float | None:
        return self.recovered / self.checkouts if self.checkouts else None


def checkout_recovery(
    frames: Frames, paid: pl.DataFrame, *, days: int = 30, window_days: int = 7
) -> CheckoutRecovery:
    """Checkouts started in the ``days`` before the last ``window_days`` (so each had its whole
    window by ``as_of``), and how many were recovered: completed, or followed by a paid order
    of the same customer, within ``window_days`` of the start. Guests count; they can only be
    recovered by completing. Reminders or not: the holdout comparison says what they add."""
    at, window = frames.as_of, window_days * DAY_US
    cohort = frames.checkouts.filter(
        (pl.col("created_at") > at - (days * DAY_US + window))
        & (pl.col("created_at") <= at - window)
    )
    if cohort.height == 0:
        return CheckoutRecovery(0, 0, days, window_days)
    completed = pl.col("completed_at").is_not_null() & (
        pl.col("completed_at") <= pl.col("created_at") + window
    )
    bought = (
        cohort.select("id", "customer_id", "created_at")
        .join(paid.select("customer_id", pl.col("created_at").alias("order_at")), on="customer_id")
        .filter(
            (pl.col("order_at") >= pl.col("created_at"))
            & (pl.col("order_at") <= pl.col("created_at") + window)
        )
        .get_column("id")
        .unique()
        .implode()
    )
    recovered = cohort.filter(completed | pl.col("id").is_in(bought)).height
    return CheckoutRecovery(cohort.height, recovered, days, window_days)


def _cooled_down(found: pl.DataFrame, frames: Frames, days: int) -> pl.DataFrame:
    """``found`` without the customers reminded about another checkout within ``days``
    before this one started (the outbox's deliveries, :attr:`Frames.sent`)."""
    if days <= 0 or frames.sent is None or frames.sent.height == 0 or found.height == 0:
        return found
    prefix = f"{KIND}:{frames.shop}:"
    sent = (
        frames.sent.filter(pl.col("key").str.starts_with(prefix))
        .with_columns(
            pl.col("key").str.slice(len(prefix)).str.replace(r":stage\d+$", "").alias("reminded_of")
        )
        .select("customer_id", "reminded_of", pl.col("at").alias("reminded_at"))
    )
    blocked = (
        found.select("id", "customer_id", "created_at")
        .join(sent, on="customer_id")
        .filter(
            (pl.col("reminded_of") != pl.col("id"))
            & (pl.col("reminded_at") <= pl.col("created_at"))
            & (pl.col("reminded_at") > pl.col("created_at") - days * DAY_US)
        )
        .get_column("id")
        .unique()
        .implode()
    )
    return found.filter(~pl.col("id").is_in(blocked))


def _builder(frames: Frames, policy: Policy) -> Callable[[dict[str, Any]], Action]:
    # the names, not the frames: held actions, built when first read, keep their builder
    platform, shop = frames.platform, frames.shop
    s = policy.abandoned_checkout
    coded = set(s.code_steps or (len(s.steps_hours),))
    steps = len(s.steps_hours)

    def build(row: dict[str, Any]) -> Action:
        stage = int(row["stage"])
        percent = s.code_percent if s.code_percent is not None and stage in coded else None
        started = from_micros(row["created_at"])
        due = from_micros(row["due"])
        total = Money.of(_money(row["total"]), row["currency"])
        facts: dict[str, Any] = {
            "checkout_id": row["id"],
            "started_at": started.isoformat(),
            "hours_since_start": s.steps_hours[stage - 1],
            "total": str(total.amount),
            "currency": total.currency,
        }
        if percent is not None:
            facts["expires_at"] = (due + dt.timedelta(days=s.code_days)).isoformat()
        offer = f", with {percent}% off" if percent is not None else ""
        return AbandonedCheckoutReminder(
            platform=platform,
            shop=shop,
            customer_id=row["customer_id"],
            due_at=due,
            reason=(
                f"checkout {row['id']} started {started:%Y-%m-%d %H:%M} UTC was not finished: "
                f"reminder {stage} of {steps}{offer}"
            ),
            facts=facts,
            idempotency_key=row["key"],
            checkout_id=row["id"],
            stage=stage,
            steps=steps,
            started_at=started,
            product_ids=tuple(dict.fromkeys(row["product_ids"])),
            total=total,
            discount_percent=percent,
        )

    return build


def _money(units: int) -> Decimal:
    return Decimal(units) / _UNIT


def _none(frames: Frames, policy: Policy) -> Candidates:
    frame = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "kind": pl.String,
            "due": pl.Int64,
            "key": pl.String,
            "marketing": pl.Boolean,
        }
    )
    return Candidates(frame, _builder(frames, policy))
