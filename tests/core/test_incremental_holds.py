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


def _message(cid: str, key: str, *, marketing: bool = True, kind: str = "winback") -> Action:
    due = T0 + 2 * DAY
    return Action(
        kind=kind, platform=P, shop=S, customer_id=cid, due_at=due, reason="r",
        idempotency_key=key, marketing=marketing,
    )  # fmt: skip


def test_the_cap_lifts_and_waits_per_customer_on_their_own_messages_only() -> None:
    from shopsync.core._data import to_us
    from shopsync.core.incremental import cap_lifts
    from shopsync.core.planner import Held, Plan
    from shopsync.incremental import _lifts
    from tests.core.frames_kit import Shop

    shop = Shop().customer("c1").customer("c2").customer("c3").customer("c4")
    for cid in ("c1", "c2", "c3", "c4"):
        shop.sent(cid, f"old-{cid}", T0 - DAY)
    frames = shop.frames(T0 + DAY)
    policy = Policy.from_dict({"frequency_cap": {"window_days": 7, "email_hours": 72}})
    kept = [_message("c1", "k1b"), _message("c2", "k2", kind="review_request")]
    kept += [_message("c1", "k1a")]
    kept += [_message("c2", "k2-note", marketing=False), _message("c3", "k3")]
    held = tuple(Held(_message(c, f"h-{c}"), "frequency_cap", "") for c in ("c1", "c2", "c4"))
    plan_ = Plan(T0 + DAY, tuple(kept), held)
    lifts, waiting, ends = _lifts(plan_, frames, policy, T0 + DAY)
    # c3 is not held; c4 waits on its old delivery alone; c1 and c2 on their own kept messages
    assert waiting == {"c1": ("k1a", "k1b"), "c2": ("k2",)}
    # a review request stops being one max_late_days after its due date; a win-back: unknown
    late = policy.reviews.max_late_days * DAY
    assert ends == {"k2": to_us(T0 + 2 * DAY + late) + 1}
    every = cap_lifts(frames, policy)
    assert set(every) == {"c1", "c2", "c3", "c4"}
    assert cap_lifts(frames, policy, {"c2", "c4", "gone"}) == {c: every[c] for c in ("c2", "c4")}
    assert lifts == {c: every[c] for c in ("c1", "c2", "c4")}
    assert lifts["c4"] == every["c4"] == to_us(T0 + 2 * DAY)  # 72 h after its delivery


def test_a_message_capped_behind_one_the_cap_never_counts_waits_for_its_end(
    store: Store, tmp_path: Path
) -> None:
    """A file sink does not contact the customer: its deliveries never count for the cap,
    so every plan keeps the first request again and holds the second, until the first
    stops being a candidate (``max_late_days`` after its due date): planned then, not by
    every plan in between."""
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
    sinks = [JsonLines("out.jsonl", root=tmp_path)]
    first, _ = _plans(store, policy, T0)
    assert len(list(first)) == 1 and [h.rule for h in first.held] == ["frequency_cap"]
    apply(first, store, sinks, now=T0)
    noted, _ = _plans(store, policy, T0 + HOUR)  # the request's delivery noted c1
    apply(noted, store, sinks, now=T0 + HOUR)
    ends = first.actions[0].due_at + policy.reviews.max_late_days * DAY
    waiting, full = _plans(store, policy, T0 + 2 * HOUR)
    assert "c1" not in waiting.customers  # before: due at once, planned by every plan
    assert [h.rule for h in full.held] == ["frequency_cap"]
    apply(waiting, store, sinks, now=T0 + 2 * HOUR)
    before, full = _plans(store, policy, ends - HOUR)  # at most once between, by a moment
    apply(before, store, sinks, now=ends - HOUR)
    assert {h.rule for h in full.held} == {"frequency_cap"}
    after, full = _plans(store, policy, ends + HOUR)
    assert "c1" in after.customers
    assert first.held[0].action.idempotency_key in [a.idempotency_key for a in full]
