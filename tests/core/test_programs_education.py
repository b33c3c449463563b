"""Education series on hand-built frames (docs/programs.md, "Education series"): per product
type or tag, steps on day 3 / 14 / 30 after the purchase was received, once per customer and
series, only the current step, stopped by a return; marketing (consent and the cap apply)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync.core.aftercare_actions import EducationCrossSell, EducationMessage
from shopsync.core.planner import plan_frames
from shopsync.core.policy import PolicyError
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)
SHIPPED = T0 + DAY  # the kit ships a day after the order
ESPRESSO = {"name": "espresso", "product_types": ["Espresso Machine"]}
KNIVES = {"name": "knives", "tags": ["Carbon-Steel"]}


def messages(shop: Shop, at: dt.datetime, *series: dict[str, Any], **more: Any) -> list[Any]:
    rules = policy(
        education={"series": list(series or [ESPRESSO]), **more.pop("education", {})},
        frequency_cap={"email_hours": 0, "max_emails": 99},
        **more,
    )
    return [a for a in plan_frames(shop.frames(at), rules, at) if isinstance(a, EducationMessage)]


def machine(**order: Any) -> Shop:
    return (
        Shop()
        .customer("c1")
        .product("m1", "espresso machine")
        .order("o1", "c1", T0, [("m1", 1, "400")], **order)
    )


def test_each_step_on_its_day_after_the_shipment_then_only_the_current_one() -> None:
    assert messages(machine(), SHIPPED + 3 * DAY - US) == []
    [first] = messages(machine(), SHIPPED + 3 * DAY)
    assert (first.step, first.template, first.due_at) == (
        1,
        "education_how_to_use",
        SHIPPED + 3 * DAY,
    )
    assert first.idempotency_key == "education:acme:c1:espresso:education_how_to_use"
    assert first.product_ids == ("m1",) and first.order_id == "o1" and first.marketing
    [care] = messages(machine(), SHIPPED + 14 * DAY)
    assert care.template == "education_care" and care.step == 2
    [pairs] = messages(machine(), SHIPPED + 30 * DAY + 7 * DAY)
    assert pairs.template == "education_pairs_well_with"
    assert messages(machine(), SHIPPED + 37 * DAY + US) == []  # max_late_days 7


def test_the_delivery_date_is_the_start_when_every_shipment_has_one() -> None:
    delivered = machine(delivered=SHIPPED + 4 * DAY)
    assert messages(delivered, SHIPPED + 4 * DAY + 3 * DAY - US) == []
    [m] = messages(delivered, SHIPPED + 7 * DAY)
    assert m.facts["received"] == "delivered"


def test_type_or_tag_case_insensitively_and_unmatched_products_get_nothing() -> None:
    shop = (
        Shop()
        .customer("c1")
        .product("k1", "Kitchen", tags=("carbon-steel",))
        .product("x1", "Socks")
        .order("o1", "c1", T0, [("k1", 1, "90"), ("x1", 2, "5")])
    )
    [m] = messages(shop, SHIPPED + 3 * DAY, ESPRESSO, KNIVES)
    assert m.series == "knives" and m.product_ids == ("k1",)
    line_type = (
        Shop().customer("c1").order("o1", "c1", T0, [("m9", 1, "9")], ptype="ESPRESSO MACHINE")
    )
    assert [m.series for m in messages(line_type, SHIPPED + 3 * DAY)] == ["espresso"]


def test_once_per_customer_and_series_a_second_purchase_does_not_restart_it() -> None:
    again = machine().order("o2", "c1", T0 + 40 * DAY, [("m1", 1, "400")])
    at = T0 + 41 * DAY + 3 * DAY  # three days after the second shipment
    assert messages(again, at) == []  # the first purchase's series is over
    other = again.customer("c2").order("o3", "c2", T0 + 40 * DAY, [("m1", 1, "400")])
    assert [(m.customer_id, m.order_id) for m in messages(other, at)] == [("c2", "o3")]


def test_a_return_or_a_refund_stops_the_series() -> None:
    assert messages(machine(returned={"m1": 1}), SHIPPED + 14 * DAY) == []
    refunded = machine(refund=(SHIPPED + 5 * DAY, "400"))
    assert messages(refunded, SHIPPED + 3 * DAY)  # not refunded yet on day 3
    assert messages(refunded, SHIPPED + 14 * DAY) == []
    assert messages(machine(cancelled=T0 + DAY), SHIPPED + 3 * DAY) == []
    assert messages(machine(paid=False), SHIPPED + 3 * DAY) == []
    assert messages(machine(fulfilled=False), SHIPPED + 3 * DAY) == []


def test_configurable_steps_and_validation() -> None:
    custom = {**ESPRESSO, "steps": [{"days": 1, "template": "descale"}]}
    [m] = messages(machine(), SHIPPED + DAY, custom)
    assert m.template == "descale" and m.idempotency_key.endswith(":espresso:descale")
    bad = [
        {"name": "x", "steps": [{"days": 1, "template": "a"}]},  # no type nor tag
        {**ESPRESSO, "steps": [{"days": 5, "template": "a"}, {"days": 5, "template": "b"}]},
        {**ESPRESSO, "steps": [{"days": 1, "template": "../etc"}]},
        {**ESPRESSO, "name": "Bad Name"},
    ]
    for series in bad:
        with pytest.raises(PolicyError):
            policy(education={"series": [series]})
    with pytest.raises(PolicyError, match="unique"):
        policy(education={"series": [ESPRESSO, ESPRESSO]})


def test_marketing_consent_and_the_cap_apply() -> None:
    no = (
        Shop()
        .customer("c1", consent="not_subscribed")
        .product("m1", "espresso machine")
        .order("o1", "c1", T0, [("m1", 1, "400")])
    )
    rules = policy(education={"series": [ESPRESSO]})
    plan = plan_frames(no.frames(SHIPPED + 3 * DAY), rules, SHIPPED + 3 * DAY)
    assert list(plan) == [] and plan.held_counts == {"consent": 1}
    capped = machine().sent(
        "c1", "winback:acme:c1:o0:stage1", SHIPPED + 3 * DAY - dt.timedelta(hours=1)
    )
    plan = plan_frames(capped.frames(SHIPPED + 3 * DAY), rules, SHIPPED + 3 * DAY)
    assert list(plan) == [] and plan.held_counts == {"frequency_cap": 1}
    off = policy(education={"series": [ESPRESSO]}, messaging={"marketing": {"education": False}})
    [m] = plan_frames(no.frames(SHIPPED + 3 * DAY), off, SHIPPED + 3 * DAY)
    assert m.kind == "education" and m.marketing is False


def test_only_the_pairs_well_with_step_gets_recommendations() -> None:
    shop = machine().product("cup", "Cups").customer("z").order("z1", "z", T0, [("tea", 1, "4")])
    for i in range(3):  # three other customers bought the machine and cups together
        shop = shop.customer(f"b{i}").order(
            f"x{i}", f"b{i}", T0 - 90 * DAY, [("m1", 1, "400"), ("cup", 1, "9")]
        )
    rules = {"recommendations": {"min_co_buyers": 2}}
    [how] = messages(shop, SHIPPED + 3 * DAY, **rules)
    assert "recommendations" not in type(how).model_fields  # teaching, not selling
    [pairs] = messages(shop, SHIPPED + 30 * DAY, **rules)
    assert isinstance(pairs, EducationCrossSell) and pairs.recommendations == ("cup",)
