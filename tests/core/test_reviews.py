"""Review requests: timing, eligibility, products, reminders, recorded reviews."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync import reviews
from shopsync.core.actions import Action, ReviewReminder, ReviewRequest
from shopsync.core.policy import PolicyError
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks._base import DeliveryError
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, policy

NO_WINBACK = {"winback": {"enabled": False}, "replenishment": {"enabled": False}}


def asks(store: Store, at: dt.datetime, **extra: dict) -> list[ReviewRequest | ReviewReminder]:
    found = plan(store, policy(**NO_WINBACK, **extra), at)
    return [a for a in found if isinstance(a, ReviewRequest | ReviewReminder)]


def test_due_fourteen_days_after_fulfilment_then_one_reminder(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0, fulfilled=T0 + DAY)])
    assert asks(store, T0 + 14 * DAY) == []  # 13 days after fulfilment
    [req] = asks(store, T0 + 15 * DAY)
    assert isinstance(req, ReviewRequest)
    assert req.due_at == T0 + 15 * DAY
    assert req.idempotency_key == "review_request:acme:o1"
    assert req.product_ids == ("p1",) and req.marketing
    assert "14 days after fulfilment" in req.reason and req.facts["order_id"] == "o1"
    deliver(store, [req], T0 + 15 * DAY)  # the request goes out when it is due
    [rem] = asks(store, T0 + 22 * DAY)
    assert isinstance(rem, ReviewReminder) and rem.idempotency_key == "review_reminder:acme:o1"
    # too late: neither is sent more than max_late_days after it was due
    assert asks(store, T0 + 60 * DAY) == []


class _Sink:
    """A message sink that delivers, or fails every attempt (``broken``)."""

    guarantee = "at_least_once"
    contacts_customer = False

    def __init__(self, name: str, stage: int = 1, broken: bool = False) -> None:
        self.name, self.stage, self.broken = name, stage, broken

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: Any) -> dict[str, Any]:
        return {}

    def deliver(self, action: Action, context: Any) -> dict[str, Any]:
        if self.broken:
            raise DeliveryError("mail server down")
        return {"sent": True}

    def close(self) -> None:
        pass


def deliver(store: Store, actions: list[Any], at: dt.datetime, *sinks: Any) -> None:
    report = apply(actions, store, list(sinks) or [_Sink("mail")], now=at)
    assert report.delivered or not actions or any(getattr(s, "broken", 0) for s in sinks)


def test_a_first_plan_on_a_fresh_store_plans_no_reminder_for_an_unsent_request(
    store: Store,
) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0, fulfilled=T0 + DAY)])
    # the request was due on day 15 and never went out: day 22 is no reminder's day
    found = asks(store, T0 + 22 * DAY)
    assert [type(a).__name__ for a in found] == ["ReviewRequest"]


def test_the_reminder_is_timed_from_the_request_s_delivery(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0, fulfilled=T0 + DAY)])
    [req] = asks(store, T0 + 15 * DAY)
    # held back (frequency cap, an outage...) and delivered three days late
    deliver(store, [req], T0 + 18 * DAY)
    assert [a for a in asks(store, T0 + 24 * DAY) if isinstance(a, ReviewReminder)] == []
    [rem] = [a for a in asks(store, T0 + 25 * DAY) if isinstance(a, ReviewReminder)]
    assert rem.due_at == T0 + 25 * DAY  # delivered + 7 days
    assert rem.facts["request_delivered"] == (T0 + 18 * DAY).isoformat()


def test_a_request_whose_email_did_not_go_out_gets_no_reminder(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0, fulfilled=T0 + DAY)])
    [req] = asks(store, T0 + 15 * DAY)
    # the shop was tagged (stage 0) but the email (stage 1) keeps failing
    deliver(store, [req], T0 + 15 * DAY, _Sink("tags", stage=0), _Sink("mail", broken=True))
    assert [a for a in asks(store, T0 + 40 * DAY) if isinstance(a, ReviewReminder)] == []


def test_delivery_date_wins_and_abroad_waits_longer(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0, delivered=T0 + 3 * DAY),
            order("o2", "c1", T0, lines=[("p2", 1, "5")], country="FR"),
        ]
    )
    found = asks(
        store,
        T0 + 40 * DAY,
        reviews={"home_country": "DE", "max_late_days": 60, "reminder_days": None},
        frequency_cap={"email_hours": 0},
    )
    due = {a.order_id: a.due_at for a in found if isinstance(a, ReviewRequest)}
    assert due["o1"] == T0 + 10 * DAY  # delivered + 7
    assert due["o2"] == T0 + DAY + 21 * DAY  # fulfilled + 14 + 7 abroad


def test_only_whole_live_fulfilled_orders(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order("open", "c1", T0, fulfilled=False),
            order("gone", "c1", T0, cancelled=T0 + 2 * DAY),
            order("back", "c1", T0, refund=(T0 + 5 * DAY, "20")),
            order(
                "part",
                "c1",
                T0,
                lines=[("p1", 1, "20"), ("p2", 1, "10")],
                refund=(T0, "10"),
                returned={"p2": 1},
            ),
            order("guest", None, T0),
        ]
    )
    found = asks(store, T0 + 20 * DAY)
    assert [(a.order_id, a.product_ids) for a in found] == [("part", ("p1",))]


def test_most_expensive_first_and_once_per_product_per_year(store: Store) -> None:
    lines = [("a", 1, "5"), ("b", 1, "50"), ("c", 1, "20"), ("d", 1, "30")]
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0, lines=lines),
            order("o2", "c1", T0 + 100 * DAY, lines=[("b", 1, "50"), ("e", 1, "1")]),
            order("o3", "c1", T0 + 500 * DAY, lines=[("b", 1, "50")]),
        ]
    )
    [first] = [a for a in asks(store, T0 + 15 * DAY) if a.kind == "review_request"]
    assert first.product_ids == ("b", "d", "c")
    [second] = [a for a in asks(store, T0 + 115 * DAY) if a.kind == "review_request"]
    assert second.product_ids == ("e",)  # b was asked about 100 days ago
    [third] = [a for a in asks(store, T0 + 515 * DAY) if a.kind == "review_request"]
    assert third.product_ids == ("b",)  # more than 12 months after o2's request


def test_a_review_stops_the_reminder_and_later_requests(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0), order("o2", "c1", T0 + 40 * DAY)])
    assert reviews.record(store, P, S, "c1", "p1", T0 + 16 * DAY, rating=5, review_id="r-1")
    assert not reviews.record(store, P, S, "c1", "p1", T0 + 16 * DAY, review_id="r-1")  # again
    assert asks(store, T0 + 22 * DAY) == []  # no reminder
    assert asks(store, T0 + 55 * DAY) == []  # o2 holds only the reviewed product
    assert [r.rating for r in reviews.list_reviews(store, P, S, "c1")] == [5]


def test_import_rows_validates_every_row(store: Store) -> None:
    rows = [
        {"customer_id": "c1", "product_id": "p1", "reviewed_at": "2024-03-05T10:00:00Z"},
        {"customer_id": "c1", "product_id": "p2", "reviewed_at": "2024-03-05T10:00:00"},
    ]
    with pytest.raises(ValueError, match="row 2"):
        reviews.import_rows(store, P, S, rows)
    assert reviews.list_reviews(store, P, S) == []
    assert reviews.import_rows(store, P, S, rows[:1]) == 1


def test_a_reminder_cannot_come_before_the_request() -> None:
    with pytest.raises(PolicyError) as err:
        policy(reviews={"reminder_days": 0})
    assert err.value.keys == ["reviews"] and "before" in str(err.value)


def test_a_new_review_notes_its_customer_as_changed_and_a_repeat_does_not(store: Store) -> None:
    """A review changes the customer's requests and reminders: the incremental plan must see
    it (issue 19), so recording one notes the customer in the same transaction."""
    from shopsync.store import changes

    store.upsert([customer("c1"), customer("c2")])
    changes.clear_changes(store, changes.changed(store))
    assert changes.changed(store) == []
    at = T0 - DAY
    assert reviews.record(store, P, S, customer_id="c1", product_id="p1", reviewed_at=at)
    assert [c.customer_id for c in changes.changed(store)] == ["c1"]
    changes.clear_changes(store, changes.changed(store))
    assert not reviews.record(store, P, S, customer_id="c1", product_id="p1", reviewed_at=at)
    assert changes.changed(store) == []  # nothing new, nothing noted
