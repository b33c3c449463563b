"""A plan made before a customer's erasure and applied after it: the action reaches the
outbox after the erasure cancelled what was queued, so apply itself must not deliver it."""

from __future__ import annotations

from shopsync.outbox import apply
from shopsync.store import Store
from tests.apply.helpers import NOW, nudge
from tests.apply.test_outbox import SHOP, Recorder, shop_store

__all__ = ["shop_store"]


def test_an_action_planned_before_an_erasure_is_not_delivered_after_it(
    shop_store: Store,
) -> None:
    sink = Recorder()
    action = nudge("3")  # planned while the customer was known
    shop_store.redact_customer("shopify", SHOP, "3")
    report = apply([action], shop_store, [sink], now=NOW)
    assert sink.delivered == [] and report.delivered == 0
