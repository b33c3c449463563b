"""Issue 19: a customer whose message waits on time or on a delivery is planned again when
it lifts or happens, not by every plan: quiet hours at their end, a review request's
reminder once the request was delivered (the delivery notes its customer)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from shopsync._instants import instant
from shopsync.core.actions import Action
from shopsync.core.incremental import quiet_ends
from shopsync.core.planner import quiet_reason
from shopsync.core.policy import Policy
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import DeliveryContext, DeliveryError, JsonLines
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, product

HOUR = dt.timedelta(hours=1)
UTC = dt.timezone.utc


def _quiet(hours: tuple[int, int], zone: str, periods: list[dict[str, str]]) -> Policy:
    return Policy.from_dict({"quiet": {"hours": list(hours), "timezone": zone, "periods": periods}})


def test_quiet_hours_end_at_the_first_local_hour_outside_them() -> None:
    policy = _quiet((21, 8), "Asia/Kolkata", [{"start": "2025-01-02", "end": "2025-01-03"}])
    at = dt.datetime(2025, 1, 1, 0, 17, tzinfo=UTC)  # 05:47 in Kolkata
    assert instant(quiet_ends(policy, at) or 0) == dt.datetime(2025, 1, 1, 2, 30, tzinfo=UTC)
    outside = dt.datetime(2025, 1, 1, 10, 17, tzinfo=UTC)
    assert instant(quiet_ends(policy, outside) or 0) == outside
    # 21:47 the night before a quiet period: its days, then the night after it
    late = dt.datetime(2025, 1, 1, 16, 17, tzinfo=UTC)
    assert instant(quiet_ends(policy, late) or 0) == dt.datetime(2025, 1, 4, 2, 30, tzinfo=UTC)


def test_quiet_hours_end_is_the_first_moment_outside_across_a_clock_change() -> None:
    policy = _quiet((1, 3), "Europe/Berlin", [])
    at = dt.datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # 01:30 CET; at 02:00 CET clocks jump
    end = instant(quiet_ends(policy, at) or 0)
    assert end == dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 03:00 CEST
    step = dt.timedelta(minutes=1)
    assert quiet_reason(policy, end) is None and quiet_reason(policy, end - step) is not None


def _shop(store: Store) -> None:
    store.upsert(
        [product("p1"), customer("c1"), order("o1", "c1", T0 - 30 * DAY, fulfilled=T0 - 20 * DAY)]
    )


def _plans(store: Store, policy: Policy, at: dt.datetime) -> tuple[Any, Any]:
    inc = plan(store, policy, at, platform=P, shop=S, only_changed=True)
    full = plan(store, policy, at, platform=P, shop=S, update_ledger=False)
    keys = [a.idempotency_key for a in inc]
    assert keys == [a.idempotency_key for a in full if a.customer_id in inc.customers]
    return inc, full


def test_a_message_held_by_quiet_hours_is_planned_again_when_they_end(
    store: Store, tmp_path: Path
) -> None:
    policy = Policy.from_dict({"quiet": {"hours": [10, 16]}})  # T0 is 12:00 UTC
    _shop(store)
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    first, _ = _plans(store, policy, T0)
    assert [h.rule for h in first.held] == ["quiet"] and not list(first)
    apply(first, store, sinks, now=T0)
    still, full = _plans(store, policy, T0 + 2 * HOUR)
    assert "c1" not in still.customers and [h.rule for h in full.held] == ["quiet"]
    apply(still, store, sinks, now=T0 + 2 * HOUR)
    after, full = _plans(store, policy, T0 + 4 * HOUR)  # 16:00: quiet hours are over
    assert [a.idempotency_key for a in after] == ["review_request:acme:o1"]
    assert [a.idempotency_key for a in full] == ["review_request:acme:o1"]


class _Later(JsonLines):
    """A file sink that fails review requests (retryably) while ``failing`` is set."""

    failing = True

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        if self.failing and action.kind == "review_request":
            raise DeliveryError("try later", retryable=True)
        return super().deliver(action, context)


def test_a_review_request_delivered_late_gets_its_reminder_planned_then(
    store: Store, tmp_path: Path
) -> None:
    policy = Policy.from_dict({"reviews": {"reminder_days": 7}})
    _shop(store)
    sink = _Later("out.jsonl", root=tmp_path)
    first, _ = _plans(store, policy, T0)
    assert [a.idempotency_key for a in first] == ["review_request:acme:o1"]
    apply(first, store, [sink], now=T0)  # not delivered yet: nothing to time a reminder by
    waiting, _ = _plans(store, policy, T0 + DAY)
    assert "c1" not in waiting.customers  # nothing new until the delivery happens
    apply(waiting, store, [sink], now=T0 + DAY)
    sink.failing = False
    apply(None, store, [sink], now=T0 + 2 * DAY)  # delivered: it notes c1
    again, _ = _plans(store, policy, T0 + 2 * DAY)
    assert "c1" in again.customers
    apply(again, store, [sink], now=T0 + 2 * DAY)
    before, _ = _plans(store, policy, T0 + 8 * DAY)
    assert "c1" not in before.customers
    due, full = _plans(store, policy, T0 + 9 * DAY + HOUR)
    assert [a.idempotency_key for a in full] == ["review_reminder:acme:o1"]
    assert [a.idempotency_key for a in due] == ["review_reminder:acme:o1"]


class _Mailer(JsonLines):
    """A file sink standing for an email one: its deliveries count for the frequency cap."""

    contacts_customer = True


def test_a_message_capped_behind_one_of_the_same_plan_is_planned_when_the_gap_ends(
    store: Store, tmp_path: Path
) -> None:
    store.upsert(
        [
            product("p1"),
            product("p2"),
            customer("c1"),
            order("o1", "c1", T0 - 30 * DAY, fulfilled=T0 - 20 * DAY),
            order("o2", "c1", T0 - 29 * DAY, [("p2", 1, "20")], fulfilled=T0 - 19 * DAY),
        ]
    )
    policy = Policy.from_dict({"frequency_cap": {"email_hours": 16}})
    sinks = [_Mailer("out.jsonl", root=tmp_path)]
    first, _ = _plans(store, policy, T0)
    assert len(list(first)) == 1 and [h.rule for h in first.held] == ["frequency_cap"]
    apply(first, store, sinks, now=T0)  # the first is delivered before the plan settles
    noted, _ = _plans(store, policy, T0 + 14 * HOUR)  # the request's delivery noted c1
    apply(noted, store, sinks, now=T0 + 14 * HOUR)
    waiting, full = _plans(store, policy, T0 + 15 * HOUR)
    assert "c1" not in waiting.customers
    assert [h.rule for h in full.held] == ["frequency_cap"]
    apply(waiting, store, sinks, now=T0 + 15 * HOUR)
    after, full = _plans(store, policy, T0 + 16 * HOUR)
    assert [a.idempotency_key for a in after] == [a.idempotency_key for a in full]
    assert first.held[0].action.idempotency_key in [a.idempotency_key for a in full]
    assert not full.held  # the gap after the first delivery has passed
