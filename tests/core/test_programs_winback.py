"""Win-back on hand-built frames (docs/programs.md, "Win-back"): the customer's own rhythm
(1.5 x their median gap, at least 30 days), the shop's for one-time buyers (90 days while fewer
than 30 customers came back), three stages over 21 days, no coupon within 30 days of any order,
and a newer order ends the sequence."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from shopsync import clv
from shopsync.core._data import paid_orders
from shopsync.core.actions import Action, WinBack
from shopsync.core.planner import plan_frames
from shopsync.core.shop_stats import ShopStats
from shopsync.core.winback import winback
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)


def planned(shop: Shop, at: dt.datetime, **settings: Any) -> list[Action]:
    rules = policy(winback=settings, frequency_cap={"email_hours": 0, "max_emails": 99})
    return list(plan_frames(shop.frames(at), rules, at))


def stage(shop: Shop, at: dt.datetime, customer: str = "c1", **settings: Any) -> WinBack | None:
    found = [a for a in planned(shop, at, **settings) if a.customer_id == customer]
    assert len(found) <= 1
    return found[0] if found and isinstance(found[0], WinBack) else None


def rhythm(gaps: list[int], customer: str = "c1", shop: Shop | None = None) -> Shop:
    """Orders of ``customer`` at T0 and then after each gap (days); returns the shop."""
    shop = (shop or Shop()).customer(customer)
    at = T0
    shop.order(f"{customer}-o0", customer, at)
    for i, gap in enumerate(gaps, 1):
        at += gap * DAY
        shop.order(f"{customer}-o{i}", customer, at)
    return shop


def test_a_repeat_buyer_lapses_at_one_and_a_half_times_their_own_median_gap() -> None:
    shop = rhythm([40, 40])  # last order T0 + 80 d, median gap 40 -> 60 days
    start = T0 + 140 * DAY
    assert stage(shop, start - US) is None
    found = stage(shop, start)
    assert found is not None and found.stage == 1 and found.due_at == start
    assert found.facts["basis"] == "own rhythm" and found.facts["threshold_days"] == 60
    assert found.idempotency_key == "winback:acme:c1:c1-o2:stage1"


def test_each_customer_has_their_own_rhythm_and_at_least_thirty_days() -> None:
    shop = rhythm([40, 40], "slow")
    rhythm([10, 10], "fast", shop)  # 1.5 x 10 = 15, raised to 30 days
    fast_start = T0 + 20 * DAY + 30 * DAY
    assert stage(shop, fast_start - US, "fast") is None
    fast = stage(shop, fast_start, "fast")
    assert fast is not None and fast.facts["threshold_days"] == 30
    assert stage(shop, fast_start, "slow") is None  # the slow buyer is not lapsing yet


def test_the_median_not_the_mean_gap_sets_the_rhythm() -> None:
    shop = rhythm([30, 40, 200])  # median 40 -> 60 days after the last order (T0 + 270 d)
    assert stage(shop, T0 + 330 * DAY - US) is None
    found = stage(shop, T0 + 330 * DAY)
    assert found is not None and found.facts["median_gap_days"] == 40


def test_a_one_time_buyer_waits_the_shops_fallback_while_few_came_back() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    assert stage(shop, T0 + 90 * DAY - US) is None
    found = stage(shop, T0 + 90 * DAY)
    assert found is not None and found.facts["basis"] == "shop rhythm"
    assert stage(shop, T0 + 90 * DAY, fallback_days=120) is None


def test_a_one_time_buyer_waits_the_shops_second_order_gap_once_enough_came_back() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    for i in range(3):  # three repeat customers, 50 days to their second order
        rhythm([50], f"r{i}", shop)
    # later of 60 days and 1.5 x 50 = 75 days, once min_repeat_customers (here 3) came back
    assert stage(shop, T0 + 75 * DAY - US, min_repeat_customers=3) is None
    assert stage(shop, T0 + 75 * DAY, min_repeat_customers=3) is not None
    assert stage(shop, T0 + 75 * DAY) is None  # default 30 repeat customers: 90-day fallback


def test_three_stages_over_twenty_one_days_then_the_last_expires() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    start = T0 + 90 * DAY
    expected = [
        (start, 1, "reminder", None),
        (start + 10 * DAY + 12 * dt.timedelta(hours=1) - US, 1, "reminder", None),
        (start + 10 * DAY + 12 * dt.timedelta(hours=1), 2, "offer", 10),
        (start + 21 * DAY, 3, "last_chance", 10),
        (start + 28 * DAY, 3, "last_chance", 10),
    ]
    for at, number, name, discount in expected:
        found = stage(shop, at)
        assert found is not None, at
        assert (found.stage, found.stage_name, found.discount_percent) == (number, name, discount)
    assert stage(shop, start + 28 * DAY + US) is None  # late_days (7) after the last stage


def test_a_newer_paid_order_ends_the_sequence_and_a_later_lapse_starts_a_fresh_one() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0).order("o2", "c1", T0 + 95 * DAY)
    assert stage(shop, T0 + 96 * DAY) is None
    fresh = stage(shop, T0 + 95 * DAY + 142 * DAY + 12 * dt.timedelta(hours=1))
    # two orders 95 days apart: 1.5 x 95 = 142.5 days after o2
    assert fresh is not None and fresh.last_order_id == "o2" and fresh.stage == 1


def test_an_unpaid_uncancelled_newer_order_stops_it_a_cancelled_one_does_not() -> None:
    start = T0 + 90 * DAY
    pending = Shop().customer("c1").order("o1", "c1", T0).order("o2", "c1", start - DAY, paid=False)
    assert stage(pending, start) is None
    cancelled = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0)
        .order("o2", "c1", start - 40 * DAY, paid=False, cancelled=start - 39 * DAY)
    )
    found = stage(cancelled, start)
    assert found is not None and found.last_order_id == "o1"


def recent_cancelled_order() -> tuple[Shop, dt.datetime, dt.datetime]:
    """A one-time buyer lapsing at ``start`` who placed (and cancelled) an order at ``recent``,
    five days later: a cancelled order still opens the coupon-then-refund loop."""
    start = T0 + 90 * DAY
    recent = start + 5 * DAY
    shop = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0)
        .order("o2", "c1", recent, paid=False, cancelled=recent + DAY)
    )
    return shop, start, recent


def test_no_coupon_within_thirty_days_of_any_order() -> None:
    shop, start, recent = recent_cancelled_order()
    for at in (start + 10 * DAY + 12 * dt.timedelta(hours=1), recent + 30 * DAY - US):
        waiting = stage(shop, at)  # the offer was due, but the order is younger than 30 days
        assert waiting is not None and waiting.stage == 1 and waiting.discount_percent is None
    coupon = stage(shop, recent + 30 * DAY)
    assert coupon is not None and coupon.discount_percent == 10


def test_the_offer_waits_for_the_window_and_is_not_skipped() -> None:
    shop, _, recent = recent_cancelled_order()
    offer = stage(shop, recent + 30 * DAY)
    assert offer is not None and offer.stage == 2 and offer.due_at == recent + 30 * DAY


def test_a_cancelled_order_is_no_purchase_a_refunded_one_still_is() -> None:
    cancelled = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0)
        .order("o2", "c1", T0 + 50 * DAY, cancelled=T0 + 51 * DAY)
    )
    found = stage(cancelled, T0 + 90 * DAY)  # o2 never counted: 90 days after o1
    assert found is not None and found.last_order_id == "o1"
    # the one paid-order rule (shopsync.core.features): a refund lowers an order's value, it
    # does not unmake the purchase, so o2 is the last order and sets the rhythm (75 days)
    refunded = (
        Shop()
        .customer("c1")
        .order("o1", "c1", T0)
        .order("o2", "c1", T0 + 50 * DAY, refund=(T0 + 60 * DAY, "20"))
    )
    assert stage(refunded, T0 + 90 * DAY) is None
    again = stage(refunded, T0 + 125 * DAY)
    assert again is not None and again.last_order_id == "o2"


def test_consent_off_holds_it() -> None:
    shop = Shop().customer("c1", consent="not_subscribed").order("o1", "c1", T0)
    at = T0 + 90 * DAY
    result = plan_frames(shop.frames(at), policy(winback={}), at)
    assert list(result) == [] and [h.rule for h in result.held] == ["consent"]


def test_as_of_in_another_time_zone_is_the_same_instant() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    start = T0 + 90 * DAY
    local = start.astimezone(zoneinfo.ZoneInfo("Pacific/Auckland"))
    assert stage(shop, local) == stage(shop, start) is not None
    assert stage(shop, (start - US).astimezone(zoneinfo.ZoneInfo("America/New_York"))) is None


def test_an_order_on_the_as_of_day_before_midnight_is_not_lapsing() -> None:
    # docs/programs.md, "Bad input": a customer whose only order is on the as_of day
    midnight = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    shop = Shop().customer("c1").order("o1", "c1", midnight)
    assert planned(shop, midnight) == []
    assert planned(shop, midnight + DAY - US) == []


def test_the_shops_wait_is_measured_at_the_start_of_the_as_of_day() -> None:
    # docs/programs.md, "Shop-wide statistics": as of 00:00 UTC of as_of's day, so every
    # re-plan that day uses the same numbers
    at = T0 + 75 * DAY  # 12:00 UTC
    shop = Shop().customer("c1").order("o1", "c1", T0)
    for i in range(2):
        rhythm([50], f"r{i}", shop)
    third = at - 6 * dt.timedelta(hours=1)  # a third customer comes back at 06:00 that day
    shop.customer("r2").order("r2-a", "r2", third - 50 * DAY).order("r2-b", "r2", third)
    assert stage(shop, at, min_repeat_customers=3) is None  # still the 90-day fallback
    assert stage(shop, at + DAY - 12 * dt.timedelta(hours=1) - US, min_repeat_customers=3) is None
    assert stage(shop, at + DAY - 12 * dt.timedelta(hours=1), min_repeat_customers=3) is not None


def by_model(shop: Shop, at: dt.datetime, a: float) -> WinBack | None:
    """Win-back with a fitted MBG/NBD model handed in (r=1, alpha=10, b=1): a large ``a``
    makes a customer look gone at once, a tiny one keeps them alive for years."""
    frames = shop.frames(at)
    params = clv.MbgNbdParams(r=1.0, alpha=10.0, a=a, b=1.0, log_likelihood=0.0, n_customers=500)
    stats = ShopStats(as_of=frames.as_of, mbg=params, model_note="given")
    found = winback(frames, paid_orders(frames), stats, policy(winback={}))
    assert len(found) <= 1
    return found[0] if found and isinstance(found[0], WinBack) else None


def test_the_model_starts_it_earlier_but_never_within_thirty_days_of_the_last_order() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0)
    assert by_model(shop, T0 + 30 * DAY - US, a=10.0) is None
    early = by_model(shop, T0 + 30 * DAY, a=10.0)
    assert early is not None and early.trigger == "model" and early.due_at == T0 + 30 * DAY
    # a model that keeps them alive leaves the rhythm in charge (90-day fallback)
    assert by_model(shop, T0 + 30 * DAY, a=1e-6) is None
    late = by_model(shop, T0 + 90 * DAY, a=1e-6)
    assert late is not None and late.trigger == "rhythm"
