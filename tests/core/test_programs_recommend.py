""" "Also bought" on hand-built frames (docs/programs.md, '"Also bought"'): cosine over distinct
buyers, pairs with at least 3 co-buyers and a lift above 1, never a product the customer owns or
one gone from the catalogue, and only on actions that are sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shopsync.core.actions import Replenish
from shopsync.core.planner import plan_frames
from tests.core.frames_kit import DAY, T0, Shop, policy

COFFEE = {"usage_days_by_type": {"Coffee": 21}}
AT = T0 + 60 * DAY
WHEN = T0 + 56 * DAY  # c1's coffee reminder is due (2 x 21 - 5 after T0 + 19 d)


def shop(co_buyers: int = 3, loners: int = 3) -> Shop:
    """``co_buyers`` customers bought beans and a grinder, ``loners`` bought only a mug (so
    the pair's lift is above 1), and c1 bought beans twice: due for a reminder."""
    s = Shop().product("beans", "Coffee").product("grinder").product("mug")
    for i in range(co_buyers):
        cid = f"co{i}"
        s.customer(cid).order(f"{cid}-o", cid, T0, [("beans", 1, "10"), ("grinder", 1, "40")])
    for i in range(loners):
        cid = f"lo{i}"
        s.customer(cid).order(f"{cid}-o", cid, T0, [("mug", 1, "8")])
    s.customer("c1").order("c1-o", "c1", T0 + 19 * DAY, [("beans", 2, "10")], ptype="Coffee")
    return s


def recommended(s: Shop, at: dt.datetime = WHEN, **settings: Any) -> tuple[str, ...] | None:
    rules = policy(replenishment=COFFEE, recommendations=settings, frequency_cap={"email_hours": 0})
    result = plan_frames(s.frames(at), rules, at)
    mine = [a for a in result if isinstance(a, Replenish) and a.customer_id == "c1"]
    return mine[0].recommendations if mine else None


def test_a_pair_bought_by_three_customers_is_recommended() -> None:
    assert recommended(shop()) == ("grinder",)


def test_two_co_buyers_are_not_enough() -> None:
    assert recommended(shop(co_buyers=2)) == ()
    assert recommended(shop(co_buyers=2), min_co_buyers=2) == ("grinder",)


def test_a_pair_no_likelier_than_chance_is_left_out() -> None:
    # without the mug buyers every customer who bought anything bought beans: lift = 1
    assert recommended(shop(loners=0)) == ()


def test_never_a_product_the_customer_owns() -> None:
    s = shop()
    s.order("c1-g", "c1", T0 + 18 * DAY, [("grinder", 1, "40")])
    assert recommended(s) == ()


def test_never_a_product_gone_from_the_catalogue() -> None:
    s = shop().product("grinder", status="archived")
    assert recommended(s) == ()
    s = shop().product("grinder", status="draft")
    assert recommended(s) == ()


def test_no_catalogue_means_no_filter() -> None:
    s = shop()
    s._products.clear()
    s.product("unrelated")  # a catalogue without the grinder: gone
    assert recommended(s) == ()
    s._products.clear()  # no catalogue synced at all: nothing is filtered
    assert recommended(s) == ("grinder",)


def test_held_actions_carry_no_recommendations_and_per_action_zero_turns_them_off() -> None:
    assert recommended(shop(), per_action=0) == ()
    s = shop()
    s.consent("c1", "unsubscribed", T0 + 30 * DAY)
    rules = policy(replenishment=COFFEE, recommendations={})
    result = plan_frames(s.frames(WHEN), rules, WHEN)
    [held] = [h.action for h in result.held if h.action.customer_id == "c1"]
    assert held.recommendations == ()  # type: ignore[attr-defined]


def test_a_review_request_is_seeded_by_its_order_a_win_back_by_everything_bought() -> None:
    s = shop().product("saucer").product("cup")
    for i in range(3):  # a second pair: cup and saucer
        cid = f"cs{i}"
        s.customer(cid).order(f"{cid}-o", cid, T0, [("cup", 1, "6"), ("saucer", 1, "4")])
    s.order("c1-cup", "c1", T0 + 19 * DAY - 40 * DAY, [("cup", 1, "6")])
    due = T0 + 19 * DAY + 15 * DAY  # c1's coffee order was shipped a day later: request due
    rules = policy(reviews={}, recommendations={}, frequency_cap={"email_hours": 0})
    [request] = [a for a in plan_frames(s.frames(due), rules, due) if a.customer_id == "c1"]
    assert request.kind == "review_request" and request.recommendations == ("grinder",)  # type: ignore[attr-defined]
    lapse = T0 + 19 * DAY + 60 * DAY  # 1.5 x c1's 40-day gap between cup and beans
    rules = policy(winback={}, recommendations={}, frequency_cap={"email_hours": 0})
    found = [a for a in plan_frames(s.frames(lapse), rules, lapse) if a.customer_id == "c1"]
    assert [a.kind for a in found] == ["winback"]
    assert set(found[0].recommendations) == {"grinder", "saucer"}  # type: ignore[attr-defined]
