"""NPS / CSAT surveys on hand-built frames (docs/programs.md, "Satisfaction surveys"): three
days after delivery or ten after the last shipment, fully fulfilled and not cancelled,
voided or fully refunded, once per customer per 90 days, never late, never to someone who
unsubscribed, and guarded by consent, the holdout and the cap like every marketing kind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync.core.actions import Action
from shopsync.core.planner import in_holdout, plan_frames
from shopsync.core.surveys import SurveyRequest, band
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)
SHIPPED = T0 + DAY  # the kit ships a day after the order
DUE = SHIPPED + 10 * DAY  # no delivery date: ten days after the shipment


def rules(**settings: Any) -> Any:
    return policy(
        surveys={"enabled": True, **settings},
        frequency_cap={"email_hours": 0, "max_emails": 99},
    )


def planned(shop: Shop, at: dt.datetime, **settings: Any) -> list[Action]:
    return [a for a in plan_frames(shop.frames(at), rules(**settings), at)]


def one(shop: Shop, at: dt.datetime, **settings: Any) -> SurveyRequest:
    [action] = planned(shop, at, **settings)
    assert isinstance(action, SurveyRequest)
    return action


def bought(**order: Any) -> Shop:
    return Shop().customer("c1").order("o1", "c1", T0, **order)


def test_ten_days_after_the_last_shipment_when_delivery_is_unknown() -> None:
    assert planned(bought(), DUE - US) == []
    survey = one(bought(), DUE)
    assert survey.due_at == DUE and survey.order_id == "o1" and survey.scale == "nps"
    assert survey.idempotency_key == "survey_request:acme:o1"
    assert survey.facts["after"] == "fulfilment" and survey.marketing


def test_three_days_after_delivery_when_it_is_known() -> None:
    shop = bought(delivered=T0 + 4 * DAY)
    assert planned(shop, T0 + 7 * DAY - US) == []
    assert one(shop, T0 + 7 * DAY).facts["after"] == "delivery"
    # the delays are the policy's
    assert planned(shop, T0 + 8 * DAY - US, days_after_delivery=4) == []
    assert one(shop, T0 + 5 * DAY, days_after_delivery=1, scale="csat").scale == "csat"


def test_a_delivery_after_as_of_is_not_known_yet() -> None:
    shop = bought(delivered=DUE + DAY)
    assert one(shop, DUE).facts["after"] == "fulfilment"


def test_unfulfilled_failed_cancelled_voided_or_refunded_orders_get_none() -> None:
    assert planned(bought(fulfilled=False), DUE) == []
    assert planned(bought(shipment="failure"), DUE) == []
    assert planned(bought(cancelled=T0 + 2 * DAY), DUE) == []
    assert planned(bought(status="voided"), DUE) == []
    assert planned(bought(refund=(T0 + 5 * DAY, "20")), DUE) == []
    assert planned(bought(refund=(T0 + 5 * DAY, "5")), DUE) != []
    assert planned(bought(cancelled=DUE + DAY), DUE) != []


def test_dropped_when_late() -> None:
    assert one(bought(), DUE + 14 * DAY).due_at == DUE
    assert planned(bought(), DUE + 14 * DAY + US) == []
    assert planned(bought(), DUE + 20 * DAY, max_late_days=30) != []


def test_once_per_customer_per_period_however_often_they_buy() -> None:
    shop = bought()
    for n, day in enumerate((20, 50, 95, 120, 200), start=2):
        shop.order(f"o{n}", "c1", T0 + day * DAY)
    # every order's survey due date, and the ones a plan on that day would send
    keys = []
    for day in (0, 20, 50, 95, 120, 200):
        at = T0 + (day + 11) * DAY
        keys += [a.idempotency_key for a in planned(shop, at)]
    # o1 (due day 11) kept; o2 (31), o3 (61), o4 (106: 95 days after o1... within? no: 106-11
    # = 95 > 90) kept; o5 (131) within 90 of o4; o6 (211) more than 90 after o4
    assert keys == ["survey_request:acme:o1", "survey_request:acme:o4", "survey_request:acme:o6"]


def test_a_survey_exactly_one_period_after_the_last_is_allowed() -> None:
    shop = bought().order("o2", "c1", T0 + 90 * DAY)
    assert [a.idempotency_key for a in planned(shop, DUE + 90 * DAY)] == ["survey_request:acme:o2"]
    shop = bought().order("o2", "c1", T0 + 90 * DAY - US)
    assert planned(shop, DUE + 90 * DAY) == []


def test_the_period_is_per_customer() -> None:
    shop = bought().customer("c2").order("o2", "c2", T0 + DAY)
    assert sorted(a.customer_id for a in planned(shop, DUE + DAY)) == ["c1", "c2"]


def test_consent_holdout_cap_and_unsubscribes_come_from_the_planner() -> None:
    shop = Shop().customer("c1", consent="unsubscribed").order("o1", "c1", T0)
    plan = plan_frames(shop.frames(DUE), rules(), DUE)
    assert list(plan) == [] and plan.held_counts == {"consent": 1}
    holdout = policy(surveys={"enabled": True}, holdout={"share": 0.5})
    many = Shop()
    for n in range(12):
        many.customer(f"c{n}").order(f"o{n}", f"c{n}", T0)
    plan = plan_frames(many.frames(DUE), holdout, DUE)
    control = {f"c{n}" for n in range(12) if in_holdout(holdout, "shopify", "acme", f"c{n}")}
    assert 0 < len(control) < 12
    assert {a.customer_id for a in plan} == {f"c{n}" for n in range(12)} - control
    assert plan.held_counts == {"holdout": len(control)}
    capped = policy(surveys={"enabled": True}, frequency_cap={"email_hours": 72})
    plan = plan_frames(
        bought().sent("c1", "winback:acme:c1:x:1", DUE - DAY).frames(DUE), capped, DUE
    )
    assert list(plan) == [] and plan.held_counts == {"frequency_cap": 1}


def test_transactional_by_override_still_never_to_someone_who_unsubscribed() -> None:
    transactional = {"marketing": {"survey_request": False}}
    shop = Shop().customer("c1", consent="unsubscribed").order("o1", "c1", T0)
    rules_ = policy(surveys={"enabled": True}, messaging=transactional)
    [survey] = plan_frames(shop.frames(DUE), rules_, DUE)
    assert survey.marketing is False  # sent without consent, as the shop chose
    assert list(plan_frames(bought().suppress("c1").frames(DUE), rules_, DUE)) == []


def test_off_by_default() -> None:
    from shopsync.core.policy import Policy

    assert Policy().surveys.enabled is False
    assert planned(bought(), DUE, enabled=False) == []


@pytest.mark.parametrize(
    ("scale", "score", "expected"),
    [
        ("nps", 0, "detractor"),
        ("nps", 6, "detractor"),
        ("nps", 7, "passive"),
        ("nps", 8, "passive"),
        ("nps", 9, "promoter"),
        ("csat", 1, "detractor"),
        ("csat", 2, "detractor"),
        ("csat", 3, "passive"),
        ("csat", 4, "passive"),
        ("csat", 5, "promoter"),
    ],
)
def test_bands(scale: str, score: int, expected: str) -> None:
    assert band(scale, score) == expected


@pytest.mark.parametrize("seed", range(6))
def test_once_per_period_matches_a_plain_walk(seed: int) -> None:
    """Random order histories: the surveys kept are what walking each customer's due dates in
    order gives (keep the first, then each at least a period after the last one kept)."""
    import random

    rng = random.Random(seed)
    shop = Shop()
    dues: dict[str, list[tuple[dt.datetime, str]]] = {}
    for c in range(4):
        cid = f"c{c}"
        shop.customer(cid)
        for n in range(rng.randint(1, 12)):
            at = T0 + dt.timedelta(days=rng.randint(0, 700), hours=rng.randint(0, 23))
            shop.order(f"{cid}-{n}", cid, at)
            dues.setdefault(cid, []).append((at + DAY + 10 * DAY, f"{cid}-{n}"))
    expected: set[str] = set()
    for items in dues.values():
        last: dt.datetime | None = None
        for due, oid in sorted(items):
            if last is None or due - last >= 90 * DAY:
                expected.add(f"survey_request:acme:{oid}")
                last = due
    end = max(d for items in dues.values() for d, _ in items)
    got = {a.idempotency_key for a in planned(shop, end, max_late_days=1000)}
    assert got == expected
