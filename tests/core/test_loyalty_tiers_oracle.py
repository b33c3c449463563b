"""The tier metric by prefix sums (:class:`shopsync.core.loyalty_tiers._Tiers`) derives the
same ledger as the scan over every order it replaced (kept here as the oracle)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core import loyalty as loyalty_rules
from shopsync.core.loyalty import DAY, UNIT, Entry, History, derive, from_micros, to_micros
from shopsync.core.policy import LoyaltySettings, Policy
from tests.core.test_loyalty_rules import T0, histories
from tests.core.test_loyalty_rules import order as order_facts


class _ScanTiers:
    """The tier qualification before prefix sums: every order scanned at each question."""

    def __init__(self, settings: LoyaltySettings, orders: Sequence[Any]) -> None:
        self.settings = settings.tiers
        self.tiers = settings.tiers.tiers
        self.orders = orders
        self.multipliers = tuple(Fraction(t.multiplier) for t in self.tiers)

    def metric(self, at: int, entries: Sequence[Entry]) -> Fraction:
        window = self.settings.window
        if window == "rolling_12_months":
            start: int | None = at - 365 * DAY
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

    def level(self, at: int, entries: Sequence[Entry]) -> int | None:
        return self.qualified(self.metric(at, entries))


def _rules(metric: str, window: str, thresholds: list[Decimal], hold: int) -> LoyaltySettings:
    tiers = [
        {"name": f"t{i}", "threshold": str(t), "multiplier": str(Decimal(100 + 25 * i) / 100)}
        for i, t in enumerate(sorted(set(thresholds)))
    ]
    return Policy.from_dict(
        {
            "loyalty": {
                "tiers": {"metric": metric, "window": window, "hold_months": hold, "tiers": tiers},
                "milestones": {"progress_within_percent": 20},
            }
        }
    ).loyalty


thresholds = st.lists(
    st.integers(0, 900_000).map(lambda n: Decimal(n) / 1000), min_size=1, max_size=4
)


@settings(max_examples=150, deadline=None)
@given(
    history=histories(),
    metric=st.sampled_from(["spend", "points"]),
    window=st.sampled_from(["rolling_12_months", "calendar_year", "lifetime"]),
    levels=thresholds,
    hold=st.integers(1, 14),
    days=st.integers(0, 1300),
    data=st.data(),
)
def test_prefix_sums_derive_what_the_scan_derived(
    history: History,
    metric: str,
    window: str,
    levels: list[Decimal],
    hold: int,
    days: int,
    data: st.DataObject,
) -> None:
    # thresholds the metric meets exactly: sums of order totals, or whole points
    totals = [o.total for o in history.orders]
    subset = data.draw(st.lists(st.sampled_from(totals), max_size=3) if totals else st.just([]))
    exact = Decimal(sum(subset)) / UNIT if metric == "spend" else Decimal(sum(subset) * 5 // UNIT)
    rules = _rules(metric, window, [*levels, exact], hold)
    at = T0 + days * DAY
    fast = derive(history, rules, at, currency="USD")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loyalty_rules, "_Tiers", _ScanTiers)
        slow = derive(history, rules, at, currency="USD")
    assert fast == slow


@pytest.mark.parametrize(
    ("metric", "threshold"), [("spend", Decimal("100")), ("points", Decimal("500"))]
)
@pytest.mark.parametrize("window", ["rolling_12_months", "calendar_year", "lifetime"])
def test_a_threshold_met_exactly_qualifies_as_it_did(
    metric: str, threshold: Decimal, window: str
) -> None:
    rules = _rules(metric, window, [Decimal(0), threshold], 12)
    history = History("c", (order_facts("1", T0, "60"), order_facts("2", T0 + 3 * DAY, "40")))
    at = T0 + 30 * DAY
    fast = derive(history, rules, at, currency="USD")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loyalty_rules, "_Tiers", _ScanTiers)
        slow = derive(history, rules, at, currency="USD")
    assert fast == slow
    assert fast.tier == "t1"
