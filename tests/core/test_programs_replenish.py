"""Replenishment reminders and warranty notices on hand-built frames (docs/programs.md,
"Replenishment and warranty"): last purchase + kept units x usage period - 5 days, until 14 days
after the run-out; SKU, then tag, then type, then learned; a warranty notice 30 days before the
warranty (from the order date) ends, until it ends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from shopsync.core.actions import Action, Replenish, WarrantyNotice
from shopsync.core.planner import plan_frames
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)
COFFEE = {"usage_days_by_type": {"Coffee": 21}}
YEAR = {"days_by_type": {"Kettle": 365}}


def planned(shop: Shop, at: dt.datetime, **sections: Any) -> list[Action]:
    rules = policy(**sections, frequency_cap={"email_hours": 0, "max_emails": 99})
    return list(plan_frames(shop.frames(at), rules, at))


def reminders(shop: Shop, at: dt.datetime, **settings: Any) -> list[Replenish]:
    found = planned(shop, at, replenishment={**COFFEE, **settings})
    return [a for a in found if isinstance(a, Replenish)]


def notices(shop: Shop, at: dt.datetime, **settings: Any) -> list[WarrantyNotice]:
    found = planned(shop, at, warranty={**YEAR, **settings})
    return [a for a in found if isinstance(a, WarrantyNotice)]


def coffee(quantity: Any = 2, **order: Any) -> Shop:
    return (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0, [("beans", quantity, "12")], ptype="Coffee", **order)
    )


# -- replenishment ------------------------------------------------------------------------------


def test_kept_units_times_the_period_minus_five_days_never_earlier() -> None:
    due = T0 + 37 * DAY  # 2 x 21 - 5
    assert reminders(coffee(), due - US) == []
    [r] = reminders(coffee(), due)
    assert r.due_at == due and r.runs_out_at == T0 + 42 * DAY and r.quantity == 2
    assert r.idempotency_key == "replenishment:acme:c1:beans:o1"


def test_never_later_than_fourteen_days_after_the_run_out() -> None:
    assert reminders(coffee(), T0 + 56 * DAY)
    assert reminders(coffee(), T0 + 56 * DAY + US) == []


def test_a_fractional_quantity_lasts_that_fraction_of_the_period() -> None:
    [r] = reminders(coffee("1.5"), T0 + 27 * DAY + 12 * dt.timedelta(hours=1))  # 31.5 - 5 - 5
    assert r.quantity == Decimal("1.5")
    assert r.runs_out_at == T0 + 31 * DAY + 12 * dt.timedelta(hours=1)
    assert reminders(coffee("1.5"), r.due_at - US) == []


def test_returned_units_do_not_count_and_a_fully_returned_line_gets_none() -> None:
    [r] = reminders(coffee(returned={"beans": 1}), T0 + 16 * DAY)  # 1 x 21 - 5
    assert r.quantity == 1
    assert reminders(coffee(returned={"beans": 2}), T0 + 16 * DAY) == []


def test_a_cancelled_or_unpaid_order_is_no_purchase() -> None:
    assert reminders(coffee(cancelled=T0 + DAY), T0 + 37 * DAY) == []
    assert reminders(coffee(paid=False), T0 + 37 * DAY) == []
    # cancelled after as_of: still a purchase at as_of
    assert reminders(coffee(cancelled=T0 + 40 * DAY), T0 + 37 * DAY)


def test_buying_again_moves_the_reminder_to_the_newer_order() -> None:
    shop = coffee(1).order("o2", "c1", T0 + 10 * DAY, [("beans", 1, "12")], ptype="Coffee")
    assert reminders(shop, T0 + 26 * DAY - US) == []  # o1's reminder (T0 + 16 d) is gone
    [r] = reminders(shop, T0 + 26 * DAY)
    assert r.order_id == "o2"


def test_sku_beats_tag_beats_type_and_the_catalogue_type_counts() -> None:
    shop = (
        Shop()
        .customer("c1")
        .product("beans", "Coffee", ("big", "small"))
        .order("o1", "c1", T0, [("beans", 1, "12")], sku="SKU1")
    )
    by = {"usage_days_by_tag": {"big": 90, "small": 30}}
    [r] = reminders(shop, T0 + 5 * DAY, usage_days_by_sku={"SKU1": 10}, **by)
    assert r.facts["period_source"] == "configured for SKU SKU1"
    [r] = reminders(shop, T0 + 25 * DAY, **by)  # the shortest matching tag
    assert r.facts["period_source"] == "configured for tag small"
    [r] = reminders(shop, T0 + 16 * DAY)  # the line has no type: the catalogue's
    assert r.facts["period_source"] == "configured for type Coffee"


def test_a_product_without_a_period_gets_none_until_enough_pairs_teach_one() -> None:
    shop = Shop()
    for i in range(3):  # three customers bought tea twice, 20 days apart
        cid = f"c{i}"
        shop.customer(cid).order(f"{cid}-a", cid, T0, [("tea", 1, "5")])
        shop.order(f"{cid}-b", cid, T0 + 20 * DAY, [("tea", 1, "5")])
    at = T0 + 35 * DAY  # 20 + 20 - 5
    assert reminders(shop, at) == []  # 30 pairs needed by default
    found = reminders(shop, at, min_repeat_pairs=3)
    assert len(found) == 3 and found[0].facts["period_source"] == "learned from 3 repeat purchases"
    assert reminders(shop, at - US, min_repeat_pairs=3) == []
    assert reminders(shop, at, min_repeat_pairs=3, learn=False) == []


def test_consent_off_holds_the_reminder() -> None:
    shop = Shop().customer("c1", consent="unsubscribed")
    shop.order("o1", "c1", T0, [("beans", 1, "12")], ptype="Coffee")
    at = T0 + 16 * DAY
    result = plan_frames(shop.frames(at), policy(replenishment=COFFEE), at)
    assert list(result) == [] and [h.rule for h in result.held] == ["consent"]


# -- warranty -----------------------------------------------------------------------------------


def kettle(**order: Any) -> Shop:
    return Shop().customer("c1").order("o1", "c1", T0, [("k1", 1, "80")], ptype="Kettle", **order)


def test_thirty_days_before_the_warranty_ends_and_until_it_ends() -> None:
    ends = T0 + 365 * DAY
    assert notices(kettle(), ends - 30 * DAY - US) == []
    [n] = notices(kettle(), ends - 30 * DAY)
    assert n.expires_at == ends and n.due_at == ends - 30 * DAY
    assert n.idempotency_key == "warranty_notice:acme:o1:k1"
    assert notices(kettle(), ends - US)
    assert notices(kettle(), ends) == []  # the warranty has ended


def test_the_warranty_runs_from_the_order_date_not_the_delivery() -> None:
    [n] = notices(kettle(delivered=T0 + 20 * DAY), T0 + 340 * DAY)
    assert n.expires_at == T0 + 365 * DAY


def test_a_returned_or_cancelled_kettle_has_no_warranty_to_remind_of() -> None:
    at = T0 + 340 * DAY
    assert notices(kettle(returned={"k1": 1}), at) == []
    assert notices(kettle(cancelled=T0 + DAY), at) == []


def test_warranty_lengths_by_sku_then_tag_then_type_nothing_learned() -> None:
    shop = Shop().customer("c1").product("k1", "Kettle", ("electric",))
    shop.order("o1", "c1", T0, [("k1", 1, "80")], sku="K-1")
    [n] = notices(shop, T0 + 70 * DAY, days_by_sku={"K-1": 100})
    assert n.facts["warranty_source"] == "SKU K-1"
    [n] = notices(shop, T0 + 170 * DAY, days_by_tag={"electric": 200})
    assert n.facts["warranty_source"] == "tag electric"
    untyped = Shop().customer("c1").order("o1", "c1", T0, [("x", 1, "80")])
    assert notices(untyped, T0 + 340 * DAY) == []


def test_warranty_notices_can_be_made_transactional() -> None:
    shop = Shop().customer("c1", consent="unsubscribed")
    shop.order("o1", "c1", T0, [("k1", 1, "80")], ptype="Kettle")
    at = T0 + 340 * DAY
    held = plan_frames(shop.frames(at), policy(warranty=YEAR), at)
    assert list(held) == [] and [h.rule for h in held.held] == ["consent"]
    rules = policy(warranty=YEAR, messaging={"marketing": {"warranty_notice": False}})
    assert [a.kind for a in plan_frames(shop.frames(at), rules, at)] == ["warranty_notice"]
