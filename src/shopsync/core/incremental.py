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
  unless consent, a shopsync unsubscription or the holdout holds it (:func:`time_fired`):
  those lift only with a change, which is noted. The candidates are found for the whole
  shop in a few column passes; what costs (building actions, the loyalty derivation) is
  then done for the chosen customers only;
- customers whose loyalty notices time alone changes by ``as_of`` (:func:`loyalty_due` of
  their last derivation: an approval, a tier review, a birthday, an expiry or its warning).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import polars as pl

from shopsync._instants import instant
from shopsync.core._data import Frames, paid_orders
from shopsync.core.loyalty import DAY, Derivation
from shopsync.core.planner import PAID_COLUMNS, _bought, _decide, program_candidates
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import ShopStats

__all__ = ["PERMANENT_RULES", "loyalty_due", "restrict", "time_fired"]

PERMANENT_RULES = ("consent", "suppressed", "holdout")
"""Rules that time alone never lifts: a candidate they hold does not need planning again
until its customer changes (consent and unsubscriptions are noted writes; the holdout is a
fixed hash)."""


def time_fired(frames: Frames, policy: Policy, stats: ShopStats) -> pl.DataFrame:
    """``customer_id``, ``key`` of every program candidate due by the frames' ``as_of``
    that no permanent rule holds (loyalty notices excluded: see :func:`loyalty_due`)."""
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


def loyalty_due(derivation: Derivation, policy: Policy, at: int) -> int | None:
    """The first moment after ``at`` (micros) at which time alone changes the customer's
    loyalty notices: the ledger's next change (approval, expiry, tier review, birthday, an
    order paid later) or an expiry warning's date; None: never."""
    moments = [] if derivation.next_change is None else [derivation.next_change]
    expires = derivation.expires_at
    if expires is not None and derivation.approved > 0:
        moments += [expires] + [
            expires - days * DAY for days in policy.loyalty.expiry.warn_days_before
        ]
    later = [m for m in moments if m > at]
    return min(later) if later else None
