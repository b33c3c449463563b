"""Issue 19: a customer whose message waits on a delivery is planned again when it happens,
not by every plan: a review request's reminder once the request was delivered (the delivery
notes its customer)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from shopsync.core.actions import Action
from shopsync.core.policy import Policy
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import DeliveryContext, DeliveryError, JsonLines
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, product

HOUR = dt.timedelta(hours=1)


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
