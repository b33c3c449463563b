"""Tier qualification for the loyalty rules: the metric (net spend or points earned) over
the configured window, and the highest tier it reaches. Used by
:func:`shopsync.core.loyalty.derive`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

from shopsync._instants import instant as from_micros
from shopsync._instants import to_micros
from shopsync.core.loyalty_records import DAY, UNIT, Entry
from shopsync.core.policy import LoyaltySettings, Tier

if TYPE_CHECKING:
    from shopsync.core.loyalty import _Order


class _Tiers:
    """Qualification for tiers, evaluated on the customer's history as of a moment."""

    def __init__(self, settings: LoyaltySettings, orders: Sequence[_Order]) -> None:
        self.settings = settings.tiers
        self.tiers: tuple[Tier, ...] = settings.tiers.tiers
        self.orders = orders

    def metric(self, at: int, entries: Sequence[Entry]) -> Fraction:
        window = self.settings.window
        if window == "rolling_12_months":
            start = at - 365 * DAY
        elif window == "calendar_year":
            start = to_micros(dt.datetime(from_micros(at).year, 1, 1, tzinfo=dt.timezone.utc)) - 1
        else:
            start = None
        if self.settings.metric == "points":
            return Fraction(
                sum(
                    e.pending + e.approved
                    for e in entries
                    if e.kind in ("earn", "bonus", "clawback")
                    and e.at <= at
                    and (start is None or e.at > start)
                )
            )
        spend = 0
        for order in self.orders:
            paid = order.facts.paid_at
            if paid is None or paid > at or (start is not None and paid <= start):
                continue
            if order.cancel_at is not None and order.cancel_at <= at:
                continue
            refunded = sum(amount for _, when, amount in order.refunds if when <= at)
            spend += order.facts.total - min(refunded, order.facts.total)
        return Fraction(spend, UNIT)

    def qualified(self, value: Fraction) -> int | None:
        best = None
        for index, tier in enumerate(self.tiers):
            if value >= Fraction(tier.threshold):
                best = index
        return best
