"""Tier qualification for the loyalty rules: the metric (net spend or points earned) over
the configured window, and the highest tier it reaches. Used by
:func:`shopsync.core.loyalty.derive`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
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
    """Qualification for tiers, evaluated on the customer's history as of a moment.

    The spend metric is asked at every earn, approval and tier review, so it must not scan
    every order each time (that scan made the derivation quadratic in a customer's orders:
    measured 70 % of a shop's derivation). Orders never refunded nor cancelled, the vast
    majority, are summed from prefix sums over their payment times (two bisections); the
    few others are added one by one. Thresholds are compared as integers (store units or
    points, the threshold rounded up), which is exact for an integer metric.
    """

    def __init__(self, settings: LoyaltySettings, orders: Sequence[_Order]) -> None:
        self.settings = settings.tiers
        self.tiers: tuple[Tier, ...] = settings.tiers.tiers
        self.orders = orders
        self.multipliers = tuple(Fraction(t.multiplier) for t in self.tiers)
        scale = UNIT if self.settings.metric == "spend" else 1
        self._floors = tuple(math.ceil(Fraction(t.threshold) * scale) for t in self.tiers)
        plain = sorted(
            (o.facts.paid_at, o.facts.total)
            for o in orders
            if o.facts.paid_at is not None and not o.refunds and o.cancel_at is None
        )
        self._paid = [p for p, _ in plain]
        self._sums = [0, *itertools.accumulate(t for _, t in plain)]
        self._others = [
            o
            for o in orders
            if o.facts.paid_at is not None and (o.refunds or o.cancel_at is not None)
        ]

    def _start(self, at: int) -> int | None:
        window = self.settings.window
        if window == "rolling_12_months":
            return at - 365 * DAY
        if window == "calendar_year":
            return to_micros(dt.datetime(from_micros(at).year, 1, 1, tzinfo=dt.timezone.utc)) - 1
        return None

    def units(self, at: int, entries: Sequence[Entry]) -> int:
        """The metric at ``at``: net spend in store units, or points earned."""
        start = self._start(at)
        if self.settings.metric == "points":
            return sum(
                e.pending + e.approved
                for e in entries
                if e.kind in ("earn", "bonus", "clawback")
                and e.at <= at
                and (start is None or e.at > start)
            )
        high = bisect.bisect_right(self._paid, at)
        low = 0 if start is None else min(bisect.bisect_right(self._paid, start), high)
        spend = self._sums[high] - self._sums[low]
        for order in self._others:
            paid = order.facts.paid_at
            assert paid is not None
            if paid > at or (start is not None and paid <= start):
                continue
            if order.cancel_at is not None and order.cancel_at <= at:
                continue
            refunded = sum(amount for _, when, amount in order.refunds if when <= at)
            spend += order.facts.total - min(refunded, order.facts.total)
        return spend

    def metric(self, at: int, entries: Sequence[Entry]) -> Fraction:
        """The metric at ``at`` in its unit: shop-currency units of spend, or points."""
        units = self.units(at, entries)
        return Fraction(units, UNIT) if self.settings.metric == "spend" else Fraction(units)

    def qualified(self, value: Fraction) -> int | None:
        best = None
        for index, tier in enumerate(self.tiers):
            if value >= Fraction(tier.threshold):
                best = index
        return best

    def level(self, at: int, entries: Sequence[Entry]) -> int | None:
        """The highest tier the metric at ``at`` reaches: ``qualified(metric(at, entries))``."""
        units = self.units(at, entries)
        best = None
        for index, floor in enumerate(self._floors):
            if units >= floor:
                best = index
        return best
