"""The pure parts of an incremental plan (issue 19): who must be planned, and their frames.

A plan is a function of each customer's own rows and the shop's day statistics
(:class:`~shopsync.core.shop_stats.ShopStats`): the programs, the safety rules (consent,
holdout, quiet periods, the per-customer frequency cap) and the loyalty derivation all work
customer by customer. So planning a set of customers alone (:func:`restrict`) gives exactly
the whole-shop plan restricted to them, and the only question is which customers can have
something new to send:

- customers whose rows changed (the store's change notes, :mod:`shopsync.store.changes`);
- customers with a program candidate (a review request, a win-back stage, a replenishment
  or warranty reminder due by ``as_of``) whose idempotency key the outbox does not hold yet,
  unless consent, a shopsync unsubscription or the holdout holds it (:func:`time_fired`
  finds them for the whole shop): those lift only with a change, which is noted;
- customers whose loyalty notices time alone changes by ``as_of``
  (:func:`~shopsync.core.loyalty_blocks.loyalty_due` of their last derivation: an approval,
  a tier review, a birthday, an expiry or its warning).

Once a customer was planned and settled, the second group is read from a stored moment
instead of a shop-wide pass: :func:`program_due` gives, per planned customer, the earliest
moment after ``as_of`` at which time alone can make a new program candidate appear (each
program's ``*_next_due`` function, from the same thresholds as its candidates, and
:func:`row_moments`: the customer's own rows that ``as_of`` still hides or that change a
rule's answer when their date comes). It may come early (the customer is planned once more
for nothing), never late.

Candidates a rule time lifts are held, not dropped: quiet hours end at :func:`quiet_ends` (the
same moment for the whole shop) and the frequency cap lifts no earlier than
:func:`cap_lifts`; a delivery that starts a clock of its own (:data:`DELIVERY_STARTS`) notes
its customer as changed in the transaction that records it delivered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

import polars as pl

from shopsync._instants import instant
from shopsync.core._candidates import soonest
from shopsync.core._data import DAY_US, Frames, paid_orders, to_us
from shopsync.core.abandoned import abandoned_next_due
from shopsync.core.actions import Action
from shopsync.core.browse import browse_next_due
from shopsync.core.education import education_next_due
from shopsync.core.planner import (
    PAID_COLUMNS,
    Draft,
    _bought,
    _decide,
    program_candidates,
    quiet_reason,
)
from shopsync.core.policy import Policy
from shopsync.core.replenish import replenishment_next_due, warranty_next_due
from shopsync.core.review_requests import review_next_due
from shopsync.core.shipping import shipping_next_due
from shopsync.core.shop_stats import ShopStats
from shopsync.core.surveys import survey_next_due
from shopsync.core.winback import winback_next_due

__all__ = [
    "DELIVERY_STARTS",
    "PERMANENT_RULES",
    "candidate_ends",
    "cap_lifts",
    "program_due",
    "quiet_ends",
    "restrict",
    "row_moments",
    "time_fired",
]

PERMANENT_RULES = ("consent", "suppressed", "holdout")
"""Rules that time alone never lifts: a candidate they hold does not need planning again
until its customer changes (consent and unsubscriptions are noted writes; the holdout is a
fixed hash)."""

DELIVERY_STARTS = ("review_request", "browse_abandonment")
"""Kinds whose delivery starts a clock of its own (the review reminder, the browse
cooldown): the store notes the customer as changed when it records one delivered."""
_QUIET_STEPS = 24 * 800


def time_fired(frames: Frames, policy: Policy, stats: ShopStats) -> pl.DataFrame:
    """``customer_id``, ``key`` of every program candidate due by the frames' ``as_of``
    that no permanent rule holds (loyalty notices excluded: see
    :func:`~shopsync.core.loyalty_blocks.loyalty_due`)."""
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    _, bought = _bought(frames, policy, stats, paid)
    found = [c for c in program_candidates(frames, policy, stats, paid, bought) if c.frame.height]
    empty = pl.DataFrame(schema={"customer_id": pl.String, "key": pl.String})
    if not found:
        return empty
    # the planner's own rules: consent, suppression and the holdout decide alike here
    table = _decide(found, frames, policy, instant(frames.as_of), paid)
    return table.filter(
        pl.col("rule").is_null() | ~pl.col("rule").is_in(list(PERMANENT_RULES))
    ).select("customer_id", "key")


def restrict(frames: Frames, customer_ids: Collection[str]) -> Frames:
    """The frames of ``customer_ids`` alone (the catalogue and the outbox's review-request
    deliveries stay whole: they are keyed by product and by order)."""
    ids = pl.Series(sorted(customer_ids), dtype=pl.String).implode()
    mine = pl.col("customer_id").is_in(ids)
    orders = frames.orders.filter(mine)
    own = pl.col("order_id").is_in(orders["id"].implode())
    return dataclasses.replace(
        frames,
        customers=frames.customers.filter(pl.col("id").is_in(ids)),
        orders=orders,
        refunds=frames.refunds.filter(own),
        lines=frames.lines.filter(own),
        fulfillments=frames.fulfillments.filter(own),
        consent=frames.consent.filter(mine),
        reviews=frames.reviews.filter(mine),
        advocates=frames.advocates.filter(mine),
        sent=None if frames.sent is None else frames.sent.filter(mine),
        suppressed=frames.suppressed.filter(mine),
    )


def row_moments(frames: Frames, policy: Policy) -> pl.DataFrame:
    """``customer_id, due``: the first moment after ``as_of`` at which one of the customer's
    rows the frames hold answers a rule differently: a refund, a shipment, a delivery or a
    cancellation dated later (the rules compare them with ``as_of``), and a delivered
    message leaving the frequency cap's window. Rows the read cuts at ``as_of`` (orders,
    consent, reviews, checkouts, browse events, outbox deliveries) are the store's to date
    (:func:`shopsync.store.incremental.next_rows`)."""
    at = frames.as_of
    owners = frames.orders.lazy().select(pl.col("id").alias("order_id"), "customer_id")
    refunds = frames.refunds.lazy().join(owners, on="order_id")
    ships = frames.fulfillments.lazy().join(owners, on="order_id")
    moments = [
        refunds.select("customer_id", pl.col("created_at").alias("moment")),
        ships.select("customer_id", pl.col("created_at").alias("moment")),
        ships.select("customer_id", pl.col("delivered_at").alias("moment")),
        frames.orders.lazy().select("customer_id", pl.col("cancelled_at").alias("moment")),
    ]
    if frames.sent is not None:
        window = policy.frequency_cap.window_days * DAY_US
        moments.append(
            frames.sent.lazy().select("customer_id", (pl.col("at") + window).alias("moment"))
        )
    return soonest(moments, at)


def program_due(
    frames: Frames,
    policy: Policy,
    stats: ShopStats,
    drafted: Draft | None = None,
) -> pl.DataFrame:
    """``customer_id, due`` (micros): per customer of ``frames``, the earliest moment after
    ``as_of`` at which time alone can bring a new program candidate (loyalty notices aside:
    :func:`loyalty_due`); a customer without one is left out (never, until a change).

    The minimum over every program's ``*_next_due`` and :func:`row_moments`; run on the
    planned customers' frames (:func:`restrict`) with the shop's day statistics; with
    their ``drafted`` candidates, its paid orders, purchases and win-back rhythm are reused."""
    if drafted is None:
        paid = paid_orders(frames, columns=PAID_COLUMNS)
        _, bought = _bought(frames, policy, stats, paid)
        pace = None  # win-back finds its own
    else:
        paid, bought, pace = drafted.paid, drafted.bought, drafted.pace
    found = [
        review_next_due(frames, policy),
        winback_next_due(frames, paid, stats, policy, pace),
        replenishment_next_due(frames, paid, stats, policy, bought),
        warranty_next_due(frames, paid, stats, policy, bought),
        shipping_next_due(frames, policy),
        education_next_due(frames, policy),
        survey_next_due(frames, policy),
        abandoned_next_due(frames, policy),
        browse_next_due(frames, policy),
        row_moments(frames, policy),
    ]
    moments = [f.select("customer_id", pl.col("due").alias("moment")) for f in found]
    return soonest(moments, frames.as_of)


def quiet_ends(policy: Policy, as_of: dt.datetime) -> int | None:
    """The first moment (micros) from ``as_of`` on at which :func:`quiet_reason` holds
    nothing back; ``as_of`` itself outside quiet hours and periods. Both change only at a
    local hour's start (a period at a local midnight), so the walk visits those alone."""
    if quiet_reason(policy, as_of) is None:
        return to_us(as_of)
    zone = ZoneInfo(policy.quiet.timezone)
    moment = as_of.astimezone(dt.timezone.utc)
    for _ in range(_QUIET_STEPS):
        local = moment.astimezone(zone)
        period = next((p for p in policy.quiet.periods if p.start <= local.date() <= p.end), None)
        if period is not None:  # the local midnight after its last day
            after = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), zone)
            moment = max(after.astimezone(dt.timezone.utc), moment + dt.timedelta(microseconds=1))
        else:  # the next local hour's start
            into = dt.timedelta(
                minutes=local.minute, seconds=local.second, microseconds=local.microsecond
            )
            moment += dt.timedelta(hours=1) - into
        if quiet_reason(policy, moment) is None:
            return to_us(moment)
    return None


def cap_lifts(
    frames: Frames, policy: Policy, customer_ids: Collection[str] | None = None
) -> dict[str, int]:
    """Per customer of ``frames`` (of ``customer_ids`` among them, when given) with a
    delivered marketing message in the frequency cap's window: the first moment after
    ``as_of`` at which one of those deliveries stops counting (it leaves the window, or the
    minimum gap after it has passed). A candidate the cap holds for those deliveries alone
    is not released earlier; one it holds for another candidate kept in the same plan waits
    on that one's delivery, which these moments do not see."""
    if frames.sent is None or frames.sent.height == 0:
        return {}
    at, cap = frames.as_of, policy.frequency_cap
    window, gap = cap.window_days * DAY_US, cap.email_hours * DAY_US // 24
    sent = frames.sent
    if customer_ids is not None:  # a filter of the one frame used, not a restrict of them all
        wanted = pl.Series(list(customer_ids), dtype=pl.String).implode()
        sent = sent.filter(pl.col("customer_id").is_in(wanted))
    ends = sent.select(
        "customer_id",
        pl.concat_list(pl.col("at") + window, pl.col("at") + gap).alias("moment"),
    ).explode("moment")
    soon = ends.filter(pl.col("moment") > at).group_by("customer_id").agg(pl.col("moment").min())
    return dict(soon.iter_rows())


def candidate_ends(action: Action, policy: Policy) -> int | None:
    """The first moment (micros) at which time alone makes ``action`` no longer a candidate
    of its program, as the program's own window cuts it: a review request or reminder
    ``max_late_days`` after its due date, a replenishment reminder ``late_days`` after the
    product runs out, a warranty notice when the warranty ends. None for the other kinds
    (their windows are not derived here). A change to the customer's rows can end it
    earlier: those are noted writes."""
    if action.kind in ("review_request", "review_reminder"):
        return to_us(action.due_at) + policy.reviews.max_late_days * DAY_US + 1
    if action.kind == "replenishment":
        runs_out = getattr(action, "runs_out_at", None)
        if isinstance(runs_out, dt.datetime):
            return to_us(runs_out) + policy.replenishment.late_days * DAY_US + 1
    if action.kind == "warranty_notice":
        expires = getattr(action, "expires_at", None)
        if isinstance(expires, dt.datetime):
            return to_us(expires)
    return None
