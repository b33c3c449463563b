"""Review requests and their one reminder, on hand-built frames (docs/programs.md, "Review
requests"): 14 days after the last shipment or 7 after delivery, +7 abroad, fully fulfilled
and not cancelled, voided or fully refunded, three products most expensive first, once per
product per 12 months, a reminder 7 days after the request was delivered."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shopsync.core._data import to_us
from shopsync.core.actions import Action
from shopsync.core.planner import plan_frames
from tests.core.frames_kit import DAY, T0, Shop, policy

US = dt.timedelta(microseconds=1)
SHIPPED = T0 + DAY  # the kit ships a day after the order
DUE = SHIPPED + 14 * DAY


def planned(shop: Shop, at: dt.datetime, **settings: Any) -> list[Action]:
    rules = policy(reviews=settings, frequency_cap={"email_hours": 0, "max_emails": 99})
    return list(plan_frames(shop.frames(at), rules, at))


def one(shop: Shop, at: dt.datetime, **settings: Any) -> Action:
    [action] = planned(shop, at, **settings)
    return action


def bought(**order: Any) -> Shop:
    return Shop().customer("c1").order("o1", "c1", T0, **order)


def test_fourteen_days_after_the_last_shipment_never_earlier() -> None:
    assert planned(bought(), DUE - US) == []
    request = one(bought(), DUE)
    assert request.kind == "review_request" and request.due_at == DUE
    assert request.idempotency_key == "review_request:acme:o1"


def test_seven_days_after_delivery_when_every_shipment_was_delivered() -> None:
    shop = bought(delivered=T0 + 3 * DAY)
    assert planned(shop, T0 + 10 * DAY - US) == []
    assert one(shop, T0 + 10 * DAY).due_at == T0 + 10 * DAY


def test_a_delivery_after_as_of_is_not_known_yet() -> None:
    shop = bought(delivered=T0 + 20 * DAY)  # delivered later than the 14-day fulfilment rule
    assert one(shop, DUE).facts["after"] == "fulfilment"


def test_abroad_waits_seven_more_days_only_with_a_home_country() -> None:
    shop = bought(country="FR")
    assert planned(shop, DUE + 7 * DAY - US, home_country="US") == []
    assert one(shop, DUE + 7 * DAY, home_country="US").due_at == DUE + 7 * DAY
    assert one(shop, DUE).due_at == DUE  # no home country set: no extra wait
    assert one(bought(country="US"), DUE, home_country="US").due_at == DUE


def test_never_too_late_the_request_closes_thirty_days_after_it_was_due() -> None:
    assert one(bought(), DUE + 30 * DAY).kind == "review_request"
    assert planned(bought(), DUE + 30 * DAY + US) == []


def test_unfulfilled_failed_cancelled_voided_or_fully_refunded_orders_get_none() -> None:
    assert planned(bought(fulfilled=False), DUE) == []
    assert planned(bought(shipment="failure"), DUE) == []
    assert planned(bought(cancelled=T0 + 2 * DAY), DUE) == []
    assert planned(bought(status="voided"), DUE) == []
    assert planned(bought(refund=(T0 + 5 * DAY, "20")), DUE) == []
    # a partial refund, or a cancellation after as_of, does not stop it
    assert planned(bought(refund=(T0 + 5 * DAY, "5")), DUE) != []
    assert planned(bought(cancelled=DUE + DAY), DUE) != []


def test_three_products_most_expensive_first_without_returned_or_productless_lines() -> None:
    lines = [("a", 1, "5"), ("b", 1, "50"), ("c", 1, "20"), ("d", 1, "30"), (None, 1, "99")]
    request = one(bought(lines=lines), DUE)
    assert request.product_ids == ("b", "d", "c")  # type: ignore[attr-defined]
    returned = one(bought(lines=lines, returned={"b": 1}), DUE)
    assert returned.product_ids == ("d", "c", "a")  # type: ignore[attr-defined]
    assert planned(bought(lines=[("a", 1, "5")], returned={"a": 1}), DUE) == []


def test_a_product_is_asked_about_once_per_twelve_months() -> None:
    again = T0 + 100 * DAY
    shop = bought(lines=[("a", 1, "5")]).order("o2", "c1", again, [("a", 1, "5"), ("b", 1, "9")])
    at = again + 15 * DAY
    request = one(shop, at)
    assert request.order_id == "o2" and request.product_ids == ("b",)  # type: ignore[attr-defined]
    alone = bought(lines=[("a", 1, "5")]).order("o2", "c1", again, [("a", 1, "5")])
    assert planned(alone, at) == []  # nothing left: no request at all
    year = T0 + 370 * DAY  # the first request (T0 + 15 d) is more than 12 months before
    later = bought(lines=[("a", 1, "5")]).order("o2", "c1", year, [("a", 1, "5")])
    assert one(later, year + 15 * DAY).product_ids == ("a",)  # type: ignore[attr-defined]


def test_a_product_reviewed_in_the_last_twelve_months_is_left_out() -> None:
    shop = bought(lines=[("a", 1, "5"), ("b", 1, "9")]).review("c1", "a", T0 - 30 * DAY)
    assert one(shop, DUE).product_ids == ("b",)  # type: ignore[attr-defined]
    old = bought(lines=[("a", 1, "5")]).review("c1", "a", T0 - 400 * DAY)
    assert one(old, DUE).product_ids == ("a",)  # type: ignore[attr-defined]


def test_consent_off_holds_the_request() -> None:
    shop = Shop().customer("c1", consent="unsubscribed").order("o1", "c1", T0)
    rules = policy(reviews={})
    result = plan_frames(shop.frames(DUE), rules, DUE)
    assert list(result) == [] and [h.rule for h in result.held] == ["consent"]


def test_the_reminder_comes_seven_days_after_the_request_was_delivered() -> None:
    sent = DUE + 2 * DAY
    shop = bought().delivered("review_request:acme:o1", sent)
    assert [a.kind for a in planned(shop, sent + 7 * DAY - US)] == ["review_request"]
    reminder = one(shop, sent + 7 * DAY)
    assert reminder.kind == "review_reminder" and reminder.due_at == sent + 7 * DAY
    assert reminder.idempotency_key == "review_reminder:acme:o1"
    assert planned(shop, sent + 37 * DAY + US) == []  # late: dropped


def test_no_reminder_for_a_request_that_was_never_delivered() -> None:
    for at in (DUE + 7 * DAY, DUE + 20 * DAY):
        assert [a.kind for a in planned(bought(), at)] == ["review_request"]
    # delivered after as_of: not known at as_of
    later = bought().delivered("review_request:acme:o1", DUE + 25 * DAY)
    assert [a.kind for a in planned(later, DUE + 20 * DAY)] == ["review_request"]


def test_no_reminder_once_a_requested_product_was_reviewed() -> None:
    sent = DUE + DAY
    shop = bought().delivered("review_request:acme:o1", sent).review("c1", "p1", sent + DAY)
    assert planned(shop, sent + 7 * DAY) == []


def test_a_regular_buyer_is_asked_again_twelve_months_after_the_last_request() -> None:
    # docs/programs.md: a product is left out when the customer bought it "in another order
    # whose request fell in the previous 12 months (so a product is asked about at most once
    # per 12 months)". o2 (only "a") gets no request at all: nothing left to ask about.
    shop = bought(lines=[("a", 1, "5")])
    shop.order("o2", "c1", T0 + 180 * DAY, [("a", 1, "5")])
    shop.order("o3", "c1", T0 + 380 * DAY, [("a", 1, "5")])
    assert planned(shop, T0 + 195 * DAY) == []  # o1's request was 180 days before
    # o3 is due T0 + 395 d: the last request about "a" (o1's, T0 + 15 d) is 380 days old
    request = one(shop, T0 + 395 * DAY)
    assert request.order_id == "o3"  # type: ignore[attr-defined]


def test_a_customer_with_no_recent_shipment_skips_the_pipeline(monkeypatch: Any) -> None:
    """The bound on every due moment (last shipment + delay) stops the work early; it never
    stops a request or reminder that is still due (the tests above)."""
    from shopsync.core import review_requests

    def refused(*args: Any) -> Any:
        raise AssertionError("the pipeline ran for a customer with nothing due")

    monkeypatch.setattr(review_requests, "shipments_by_order", refused)
    assert planned(bought(), DUE + 400 * DAY) == []
    assert planned(Shop().customer("c1"), DUE) == []  # no order, no shipment
    monkeypatch.undo()
    late = DUE + 30 * DAY + 7 * DAY  # a reminder can come that long after a late request
    frames, rules = bought().frames(late), policy()
    assert review_requests._nothing_due_since(frames, rules, to_us(DUE + US))
    assert not review_requests._nothing_due_since(frames, rules, to_us(DUE))
