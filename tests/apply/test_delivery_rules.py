"""Rules hold when a row is sent, not only when it was planned.

Quiet hours, quiet periods and the frequency cap are checked again for each marketing row
just before delivery (a retry hours after planning must not land in the night), and a
message announcing a discount code waits until the platform write-back that creates the
code is done, whichever apply run does it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pytest

from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.errors import TransportError
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import DeliveryContext
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge, reward

SHOP = "acme.myshopify.com"
NIGHT = dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.timezone.utc)
MORNING = dt.datetime(2026, 3, 3, 8, 30, tzinfo=dt.timezone.utc)


class Recorder:
    """A sink that reaches the customer, records what it delivered, and fails as told."""

    guarantee: ClassVar[str] = "at_least_once"
    contacts_customer: ClassVar[bool] = True
    stage: ClassVar[int] = 1

    def __init__(self, name: str = "esp", stage: int = 1) -> None:
        self.name = name
        self.stage = stage  # type: ignore[misc]
        self.delivered: list[str] = []
        self.failing = 0

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {"key": action.idempotency_key}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        if self.failing:
            self.failing -= 1
            raise TransportError("connection reset")
        self.delivered.append(action.idempotency_key)
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def shop_store(store: Store) -> Store:
    store.upsert([customer(str(i)) for i in range(1, 19)])
    return store


def quiet(**kw: Any) -> Policy:
    return Policy.model_validate({"quiet": {"hours": [21, 8], **kw}})


def test_a_retry_in_quiet_hours_is_deferred_then_delivered(shop_store: Store) -> None:
    """The incident: 18 marketing emails failed at 20:00, the retry ran at 22:00."""
    policy = quiet()
    sink = Recorder()
    evening = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.timezone.utc)
    nudges = [nudge(str(i), due_at=evening) for i in range(1, 19)]
    sink.failing = 18
    first = apply(nudges, shop_store, [sink], now=evening, policy=policy)
    assert first.failed == 18 and sink.delivered == []
    transactional = reward("shopify", SHOP, "1", due_at=evening)
    platform = Recorder("platform", stage=0)
    retry = apply([transactional], shop_store, [sink, platform], now=NIGHT, policy=policy)
    assert sink.delivered == [transactional.idempotency_key]  # not marketing: not held
    assert retry.deferred == 18 and retry.delivered == 2  # the code, then its message
    rows = list_outbox(shop_store, status="pending")
    assert len(rows) == 18
    assert all("quiet hours 21:00-08:00 UTC" in (r.reason or "") for r in rows)
    assert {r.attempts for r in rows} == {1}  # a deferral is not an attempt
    morning = apply(None, shop_store, [sink, platform], now=MORNING, policy=policy)
    assert morning.delivered == 18 and len(sink.delivered) == 19


def test_quiet_period_and_time_zone_hold_at_delivery(shop_store: Store) -> None:
    policy = quiet(
        hours=None,
        timezone="America/New_York",
        periods=[{"start": "2026-03-02", "end": "2026-03-02", "name": "closed"}],
    )
    sink = Recorder()
    # 03:00 UTC on the 3rd is still the 2nd in New York
    late = dt.datetime(2026, 3, 3, 3, 0, tzinfo=dt.timezone.utc)
    report = apply([nudge("1")], shop_store, [sink], now=late, policy=policy)
    assert report.deferred == 1 and sink.delivered == []
    (row,) = list_outbox(shop_store)
    assert "quiet period (closed)" in (row.reason or "") and row.status == "pending"
    after = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.timezone.utc)
    assert apply(None, shop_store, [sink], now=after, policy=policy).delivered == 1


def test_frequency_cap_gap_is_checked_again_at_delivery(shop_store: Store) -> None:
    policy = Policy()  # one marketing email per 16 hours, 5 per 30 days
    sink, esp = Recorder("email"), Recorder("esp")
    first, second = nudge("1"), nudge("1", 2)
    report = apply([first, second], shop_store, [sink, esp], now=NOW, policy=policy)
    # the first action goes to both sinks (one message); the second is held by the gap
    assert sink.delivered == esp.delivered == [first.idempotency_key]
    assert report.deferred == 2
    held = list_outbox(shop_store, status="pending")
    assert {r.idempotency_key for r in held} == {second.idempotency_key}
    assert all("frequency cap" in (r.reason or "") and "16 hours" in (r.reason or "") for r in held)
    assert (
        apply(
            None, shop_store, [sink, esp], now=NOW + dt.timedelta(hours=15), policy=policy
        ).deferred
        == 2
    )
    later = apply(None, shop_store, [sink, esp], now=NOW + dt.timedelta(hours=16), policy=policy)
    assert later.delivered == 2 and sink.delivered[-1] == second.idempotency_key


def test_frequency_cap_count_in_the_window(shop_store: Store) -> None:
    policy = Policy.model_validate(
        {"frequency_cap": {"email_hours": 0, "max_emails": 2, "window_days": 30}}
    )
    sink = Recorder()
    actions = [nudge("2", n) for n in (1, 2, 3)]
    report = apply(actions, shop_store, [sink], now=NOW, policy=policy)
    assert report.delivered == 2 and report.deferred == 1
    (held,) = list_outbox(shop_store, status="pending")
    assert "2 marketing emails in 30 days (at most 2)" in (held.reason or "")
    assert (
        apply(None, shop_store, [sink], now=NOW + dt.timedelta(days=29), policy=policy).deferred
        == 1
    )
    assert (
        apply(
            None, shop_store, [sink], now=NOW + dt.timedelta(days=30, seconds=1), policy=policy
        ).delivered
        == 1
    )


def test_a_code_is_announced_only_after_the_platform_created_it(shop_store: Store) -> None:
    """Email in one run, platform write-back in another: the email waits for the code."""
    code = reward("shopify", SHOP, "3")
    email, platform = Recorder("email"), Recorder("platform", stage=0)
    first = apply([code], shop_store, [email], now=NOW)
    assert email.delivered == [] and first.deferred == 1
    (row,) = list_outbox(shop_store)
    assert row.status == "pending" and "LOYAL-3X1" in (row.reason or "")
    assert "not created on the platform yet" in (row.reason or "")
    preview = apply(None, shop_store, [email], now=NOW, dry_run=True)
    assert [d.status for d in preview.deliveries] == ["deferred"]
    # a failed write-back keeps it waiting
    platform.failing = 1
    apply([code], shop_store, [platform], now=NOW)
    assert apply(None, shop_store, [email], now=NOW).delivered == 0 and email.delivered == []
    apply(None, shop_store, [platform], now=NOW + dt.timedelta(hours=2))
    assert platform.delivered == [code.idempotency_key]
    assert apply(None, shop_store, [email], now=NOW + dt.timedelta(hours=2)).delivered == 1
    assert email.delivered == [code.idempotency_key]


def test_a_dry_run_with_the_platform_sink_shows_the_message_as_sent(shop_store: Store) -> None:
    code = reward("shopify", SHOP, "4")
    sinks = [Recorder("email"), Recorder("platform", stage=0)]
    preview = apply([code], shop_store, sinks, now=NOW, dry_run=True)
    assert sorted(d.status for d in preview.deliveries) == ["send", "send"]


def test_a_retry_without_the_policy_keeps_the_last_policy_rules(shop_store: Store) -> None:
    """A retry script that forgets ``policy=`` still holds marketing in quiet hours: the
    outbox keeps the rules of the last apply that passed a policy for the shop."""
    sink = Recorder()
    evening = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.timezone.utc)
    sink.failing = 3
    apply(
        [nudge(str(i), due_at=evening) for i in (1, 2, 3)],
        shop_store,
        [sink],
        now=evening,
        policy=quiet(),
    )
    retry = apply(None, shop_store, [sink], now=NIGHT)  # no policy passed
    assert retry.deferred == 3 and sink.delivered == []
    assert apply(None, shop_store, [sink], now=MORNING).delivered == 3
    # a policy passed later replaces the remembered one
    apply([nudge("4", due_at=MORNING)], shop_store, [sink], now=MORNING, policy=Policy())
    later = NIGHT + dt.timedelta(days=1)
    assert apply([nudge("5", due_at=later)], shop_store, [sink], now=later).delivered == 1


def test_a_withdrawn_consent_cancels_even_inside_quiet_hours(shop_store: Store) -> None:
    """Cancelling is final and comes first: a row is not deferred for a customer who may no
    longer receive marketing at all."""
    shop_store.upsert([customer("7", consent="unsubscribed")])
    sink = Recorder()
    for dry_run in (True, False):
        report = apply([nudge("7")], shop_store, [sink], now=NIGHT, policy=quiet(), dry_run=dry_run)
        assert report.cancelled == 1 and report.deferred == 0, dry_run
    (row,) = list_outbox(shop_store)
    assert row.status == "cancelled" and "consent" in (row.reason or "")
