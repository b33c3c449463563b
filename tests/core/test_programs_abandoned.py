"""Abandoned-checkout reminders on hand-built frames (docs/programs.md, "Abandoned checkouts"):
steps at 4 h / 24 h / 72 h by default, only the step due now, stop on a purchase or a newer
checkout, identified customers only, a code only where the policy says, and the planner's
guard (consent, holdout, quiet hours) as for every program."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync.core._data import paid_orders
from shopsync.core.abandoned import AbandonedCheckoutReminder, checkout_recovery
from shopsync.core.actions import Action
from shopsync.core.planner import in_holdout, plan_frames
from shopsync.core.policy import Policy, PolicyError
from tests.core.frames_kit import DAY, T0, Shop, policy

H = dt.timedelta(hours=1)
US = dt.timedelta(microseconds=1)


def planned(shop: Shop, at: dt.datetime, **settings: Any) -> list[Action]:
    rules = policy(abandoned_checkout=settings, frequency_cap={"email_hours": 0, "max_emails": 99})
    return list(plan_frames(shop.frames(at), rules, at))


def one(shop: Shop, at: dt.datetime, **settings: Any) -> AbandonedCheckoutReminder | None:
    found = planned(shop, at, **settings)
    assert len(found) <= 1, found
    if not found:
        return None
    assert isinstance(found[0], AbandonedCheckoutReminder)
    return found[0]


def started() -> Shop:
    return Shop().customer("c1").checkout("k1", "c1", T0, ("p1", "p2"), total="55.5")


def test_each_step_is_due_at_its_hour_and_only_the_current_one_is_planned() -> None:
    shop = started()
    assert one(shop, T0 + 4 * H - US) is None
    first = one(shop, T0 + 4 * H)
    assert first is not None and first.stage == 1 and first.steps == 3
    assert (
        first.due_at == T0 + 4 * H and first.idempotency_key == "abandoned_checkout:acme:k1:stage1"
    )
    assert first.product_ids == ("p1", "p2") and str(first.total.amount) == "55.5"
    assert first.marketing and first.discount_percent is None
    second = one(shop, T0 + 30 * H)
    assert second is not None and second.stage == 2 and second.due_at == T0 + 24 * H
    third = one(shop, T0 + 72 * H)
    assert third is not None and third.stage == 3


def test_a_step_late_by_more_than_late_hours_is_skipped() -> None:
    shop = started()
    assert one(shop, T0 + 72 * H + 24 * H) is not None
    assert one(shop, T0 + 72 * H + 24 * H + US) is None
    # a first plan two days after the start sends step 2, never the missed step 1
    found = one(shop, T0 + 48 * H)
    assert found is not None and found.stage == 2


def test_steps_are_configurable() -> None:
    found = one(started(), T0 + H, steps_hours=[1, 24, 72])
    assert found is not None and found.stage == 1 and found.due_at == T0 + H


def test_a_later_order_by_the_customer_stops_the_sequence() -> None:
    shop = started().order("o1", "c1", T0 + 30 * H)
    assert one(shop, T0 + 24 * H) is not None  # before the order: step 2 is due
    assert one(shop, T0 + 30 * H) is None
    assert one(shop, T0 + 72 * H) is None


def test_an_order_placed_before_the_checkout_does_not_stop_it() -> None:
    shop = started().order("o0", "c1", T0 - DAY)
    assert one(shop, T0 + 4 * H) is not None


def test_an_unpaid_or_cancelled_later_order_also_stops_it_placed_order_is_enough() -> None:
    shop = started().order("o1", "c1", T0 + 5 * H, paid=False)
    assert one(shop, T0 + 24 * H) is None


def test_woocommerce_the_checkout_is_its_own_pending_order_until_paid() -> None:
    # WooCommerce: the draft/pending order has the checkout's id; unpaid it does not stop
    # the reminders, paid it does
    pending = started().order("k1", "c1", T0, paid=False, fulfilled=False)
    assert one(pending, T0 + 4 * H) is not None
    paid = started().order("k1", "c1", T0, paid=T0 + 10 * H, fulfilled=False)
    assert one(paid, T0 + 4 * H) is not None
    assert one(paid, T0 + 24 * H) is None


def test_a_completed_checkout_gets_nothing() -> None:
    shop = Shop().customer("c1").checkout("k1", "c1", T0, completed=T0 + 2 * H)
    assert one(shop, T0 + 4 * H) is None


def test_a_newer_checkout_replaces_the_older_sequence() -> None:
    shop = started().checkout("k2", "c1", T0 + 20 * H, ("p3",))
    found = one(shop, T0 + 24 * H)
    assert found is not None and found.checkout_id == "k2" and found.stage == 1
    assert one(shop, T0 + 20 * H + 4 * H - US) is None  # k1's step 2 is not sent either


def test_guests_empty_and_small_checkouts_get_nothing() -> None:
    shop = (
        Shop()
        .customer("c1")
        .customer("c2")
        .checkout("guest", None, T0)
        .checkout("empty", "c1", T0, ())
        .checkout("small", "c2", T0, total="9.99")
    )
    assert [a.idempotency_key for a in planned(shop, T0 + 4 * H)] == [
        "abandoned_checkout:acme:small:stage1"
    ]
    assert planned(shop, T0 + 4 * H, min_total=10) == []


def test_the_code_comes_in_the_last_step_only_when_the_policy_says_so() -> None:
    shop = started()
    assert one(shop, T0 + 72 * H).discount_percent is None  # type: ignore[union-attr]
    last = one(shop, T0 + 72 * H, code_percent=10)
    assert last is not None and last.discount_percent == 10
    assert last.facts["expires_at"] == (T0 + 72 * H + 7 * DAY).isoformat()
    assert one(shop, T0 + 4 * H, code_percent=10).discount_percent is None  # type: ignore[union-attr]
    early = one(shop, T0 + 4 * H, code_percent=15, code_steps=[1])
    assert early is not None and early.discount_percent == 15


def test_a_customer_reminded_of_another_checkout_within_the_cool_down_gets_none() -> None:
    shop = (
        Shop()
        .customer("c1")
        .checkout("k1", "c1", T0 - 5 * DAY)
        .sent("c1", "abandoned_checkout:acme:k1:stage1", T0 - 5 * DAY + 4 * H)
        .checkout("k2", "c1", T0)
    )
    assert one(shop, T0 + 4 * H) is None
    assert one(shop, T0 + 4 * H, cooldown_days=3) is not None


def test_consent_is_required_and_the_holdout_and_quiet_hours_apply() -> None:
    shop = Shop().customer("c1", consent="unsubscribed").checkout("k1", "c1", T0)
    at = T0 + 4 * H
    result = plan_frames(shop.frames(at), policy(abandoned_checkout={}), at)
    assert list(result) == [] and [h.rule for h in result.held] == ["consent"]
    everyone = policy(abandoned_checkout={}, holdout={"share": "0.999"})
    assert in_holdout(everyone, "shopify", "acme", "c1")
    held = plan_frames(started().frames(at), everyone, at)
    assert list(held) == [] and [h.rule for h in held.held] == ["holdout"]
    quiet = policy(abandoned_checkout={}, quiet={"hours": [0, 23], "timezone": "UTC"})
    night = plan_frames(started().frames(at), quiet, at)
    assert list(night) == [] and [h.rule for h in night.held] == ["quiet"]


def test_it_outranks_other_marketing_by_default() -> None:
    assert Policy().messaging.priority[0] == "abandoned_checkout"


def test_it_can_be_switched_off() -> None:
    assert planned(started(), T0 + 4 * H, enabled=False) == []


@pytest.mark.parametrize(
    "settings",
    [
        {"steps_hours": []},
        {"steps_hours": [24, 4]},
        {"steps_hours": [4, 4]},
        {"steps_hours": [1, 2, 3, 4, 5, 6]},
        {"code_steps": [4]},
        {"code_percent": 0},
    ],
)
def test_bad_settings_are_refused_with_the_key(settings: dict[str, Any]) -> None:
    with pytest.raises(PolicyError, match="abandoned_checkout"):
        Policy.from_dict({"abandoned_checkout": settings})


def test_the_recovery_rate_counts_checkouts_that_became_a_purchase_within_the_window() -> None:
    at = T0 + 40 * DAY
    shop = (
        Shop()
        .customer("c1")
        .customer("c2")
        .customer("c3")
        .checkout("k1", "c1", T0 + 10 * DAY)
        .order("o1", "c1", T0 + 11 * DAY)  # bought a day later: recovered
        .checkout("k2", "c2", T0 + 12 * DAY, completed=T0 + 12 * DAY + H)  # completed
        .checkout("k3", "c3", T0 + 14 * DAY)
        .order("o3", "c3", T0 + 30 * DAY)  # sixteen days later: not within 7 days
        .checkout("k4", None, T0 + 15 * DAY)  # a guest who never came back
        .checkout("old", "c3", T0 - 30 * DAY)  # before the period
        .checkout("new", "c3", at - 2 * DAY)  # its window has not passed yet
    )
    frames = shop.frames(at)
    found = checkout_recovery(frames, paid_orders(frames), days=30, window_days=7)
    assert (found.checkouts, found.recovered) == (4, 2) and found.rate == 0.5
    assert checkout_recovery(Shop().frames(at), paid_orders(Shop().frames(at))).rate is None
