"""VIP milestones (issue 17.5): order and anniversary rewards, progress towards the next tier."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from shopsync.core.loyalty import (
    DAY,
    UNIT,
    Derivation,
    History,
    OrderFacts,
    add_months,
    derive,
    to_micros,
)
from shopsync.core.milestones import MilestoneReward, TierProgress, notices, ordinal
from shopsync.core.planner import in_holdout
from shopsync.core.policy import Policy, PolicyError
from shopsync.planning import plan
from shopsync.store import Store
from tests.core import retention_helpers as h

T0 = to_micros(dt.datetime(2024, 1, 10, tzinfo=dt.timezone.utc))
REWARDS = Policy.from_dict(
    {
        "loyalty": {
            "tiers": {"tiers": []},
            "milestones": {
                "orders": [{"orders": 1, "points": 100}, {"orders": 3, "points": 500}],
                "anniversary_points": 250,
            },
        }
    }
)
POINT_TIERS = Policy.from_dict(
    {
        "loyalty": {
            "earn": {"pending_days": 0},
            "tiers": {
                "metric": "points",
                "tiers": [
                    {"name": "Bronze", "threshold": 0},
                    {"name": "Gold", "threshold": 1000},
                ],
            },
        }
    }
)


def paid(
    oid: str, at: int, value: str = "10", refunded: tuple[int, str] | None = None
) -> OrderFacts:
    units = int(Decimal(value) * UNIT)
    refunds = (
        () if refunded is None else (("r" + oid, refunded[0], int(Decimal(refunded[1]) * UNIT)),)
    )
    return OrderFacts(oid, at, at, None, "USD", units, units, refunds)


def run(history: History, as_of: int, policy: Policy = REWARDS) -> Derivation:
    return derive(history, policy.loyalty, as_of, currency="USD")


def milestones(d: Derivation) -> list[tuple[str, int, int]]:
    return [(e.key, e.at, e.approved) for e in d.entries if e.detail.get("milestone")]


def test_order_milestones_pay_once_at_the_kept_order_s_approval() -> None:
    orders = tuple(paid(str(i), T0 + i * 10 * DAY) for i in range(4))
    d = run(History("c", orders), T0 + 200 * DAY)
    assert milestones(d)[:2] == [
        ("bonus:milestone:c:order_1", T0 + 14 * DAY, 100),  # approval of the first order
        ("bonus:milestone:c:order_3", T0 + 34 * DAY, 500),  # approval of the third
    ]
    # the same derivation later, or again, keys the same entries: paid once
    again = run(History("c", orders), T0 + 300 * DAY)
    assert milestones(again)[:2] == milestones(d)[:2]


def test_a_fully_refunded_order_is_not_a_milestone() -> None:
    gone = paid("0", T0, refunded=(T0 + DAY, "10"))  # refunded inside the return window
    d = run(History("c", (gone, paid("1", T0 + 30 * DAY))), T0 + 100 * DAY)
    assert [k for k, _, _ in milestones(d)] == ["bonus:milestone:c:order_1"]
    assert milestones(d)[0][1] == T0 + 44 * DAY  # the second order is the first kept one


def test_anniversaries_of_the_first_order_once_a_year() -> None:
    d = run(History("c", (paid("1", T0),)), add_months(T0, 25))
    years = [(k, at) for k, at, _ in milestones(d) if "anniversary" in k]
    assert years == [
        ("bonus:anniversary:c:2025-01-10", add_months(T0, 12)),
        ("bonus:anniversary:c:2026-01-10", add_months(T0, 24)),
    ]
    assert d.next_change is not None and d.next_change <= add_months(T0, 36)
    # no kept order: no anniversary
    gone = run(History("c", (paid("1", T0, refunded=(T0 + DAY, "10")),)), add_months(T0, 13))
    assert milestones(gone) == []


def test_milestones_are_off_by_default() -> None:
    orders = tuple(paid(str(i), T0 + i * DAY) for i in range(12))
    d = derive(History("c", orders), Policy().loyalty, add_months(T0, 30), currency="USD")
    assert milestones(d) == []


def test_progress_notice_when_an_order_brings_the_next_tier_within_reach() -> None:
    # 5 points per unit: 160.00 earns 800 points, 200 short of Gold (within 20 % of 1000)
    h1 = History("c", (paid("1", T0, "160"),))
    d = derive(h1, POINT_TIERS.loyalty, T0 + DAY, currency="USD")
    (p,) = d.progress
    assert (p.tier, p.points_to_go, p.order_id, p.at) == ("Gold", 200, "1", T0)
    (notice,) = [
        a
        for a in notices("shopify", "acme", "c", d, POINT_TIERS, T0 + DAY, T0 - DAY)
        if isinstance(a, TierProgress)
    ]
    assert notice.reason == "200 points from Gold" and notice.marketing
    assert notice.idempotency_key == "loyalty_tier_progress:acme:c:Gold:1"
    # far from the tier: nothing; within the cool-down: nothing new
    far = derive(History("c", (paid("1", T0, "100"),)), POINT_TIERS.loyalty, T0, currency="USD")
    assert far.progress == []
    two = History("c", (paid("1", T0, "160"), paid("2", T0 + 10 * DAY, "10")))
    assert len(derive(two, POINT_TIERS.loyalty, T0 + 20 * DAY, currency="USD").progress) == 1
    # once Gold is reached the notice is no longer planned
    reached = History("c", (paid("1", T0, "160"), paid("2", T0 + DAY, "60")))
    d = derive(reached, POINT_TIERS.loyalty, T0 + 2 * DAY, currency="USD")
    assert d.tier == "Gold"
    assert not [
        a
        for a in notices("shopify", "acme", "c", d, POINT_TIERS, T0 + 2 * DAY, T0 - DAY)
        if isinstance(a, TierProgress)
    ]


def test_spend_tiers_say_how_much_spend_and_how_many_points() -> None:
    policy = Policy()  # Silver at 500.00 net spend over 12 months
    d = derive(History("c", (paid("1", T0, "420"),)), policy.loyalty, T0, currency="USD")
    (notice,) = [
        a
        for a in notices("shopify", "acme", "c", d, policy, T0, T0 - DAY)
        if isinstance(a, TierProgress)
    ]
    assert notice.reason == "80.00 more in spend (400 points) reaches Silver"
    assert notice.facts == {"to_tier": "Silver", "metric": "spend", "short": "80.00"}


def test_milestone_notices_replace_the_plain_award() -> None:
    d = run(History("c", (paid("1", T0),)), T0 + 15 * DAY)
    found = notices("shopify", "acme", "c", d, REWARDS, T0 + 15 * DAY, T0)
    (reward,) = [a for a in found if isinstance(a, MilestoneReward)]
    assert reward.milestone == "order_1" and reward.points == 100 and reward.marketing
    assert reward.idempotency_key == "loyalty_milestone:acme:bonus:milestone:c:order_1"
    assert reward.reason == "first order milestone: 100 bonus points"


def test_policy_checks_milestones() -> None:
    with pytest.raises(PolicyError):
        Policy.from_dict({"loyalty": {"milestones": {"orders": [{"orders": 2, "points": 1}] * 2}}})
    with pytest.raises(PolicyError):
        Policy.from_dict({"loyalty": {"milestones": {"progress_within_percent": 150}}})
    assert [ordinal(n) for n in (1, 2, 3, 4, 5, 11, 21, 112)] == [
        "first",
        "second",
        "third",
        "4th",
        "5th",
        "11th",
        "21st",
        "112th",
    ]


def test_progress_notices_go_through_consent_and_holdout(store: Store) -> None:
    store.upsert(
        [
            h.customer("yes"),
            h.customer("no", consent="unsubscribed"),
            h.order("o1", "yes", h.T0, [("p1", 1, "420")]),
            h.order("o2", "no", h.T0, [("p1", 1, "420")]),
        ]
    )
    at = h.T0 + h.DAY
    result = plan(store, Policy.from_dict({"holdout": {"share": 0}}), at)
    assert [a.customer_id for a in result if a.kind == "loyalty_tier_progress"] == ["yes"]
    held = [(x.action.customer_id, x.rule) for x in result.held]
    assert ("no", "consent") in held
    mostly = Policy.from_dict({"holdout": {"share": 0.999}})
    assert in_holdout(mostly, h.P, h.S, "yes")  # a stable hash, not a draw
    everyone_held = plan(store, mostly, at)
    assert not [a for a in everyone_held if a.kind == "loyalty_tier_progress"]
    assert ("yes", "holdout") in [(x.action.customer_id, x.rule) for x in everyone_held.held]
