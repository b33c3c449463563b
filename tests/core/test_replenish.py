"""Replenishment reminders and warranty notices."""

from __future__ import annotations

import datetime as dt

from shopsync.core.actions import Replenish, WarrantyNotice
from shopsync.core.replenish import configured_days
from shopsync.planning import plan
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, customer, order, policy, product

OTHERS = {"reviews": {"enabled": False}, "winback": {"enabled": False}}
COFFEE = {"usage_days_by_type": {"Coffee": 21}}


def reminders(store: Store, at: dt.datetime, **extra: dict) -> list[Replenish]:
    return [a for a in plan(store, policy(**OTHERS, **extra), at) if isinstance(a, Replenish)]


def test_quantity_times_period_minus_lead_time(store: Store) -> None:
    store.upsert(
        [customer("c1"), order("o1", "c1", T0, lines=[("beans", 2, "12")], ptype="Coffee")]
    )
    assert reminders(store, T0 + 36 * DAY, replenishment=COFFEE) == []
    [r] = reminders(store, T0 + 37 * DAY, replenishment=COFFEE)  # 2 x 21 - 5
    assert r.product_id == "beans" and r.quantity == 2 and r.runs_out_at == T0 + 42 * DAY
    assert r.idempotency_key == "replenishment:acme:c1:beans:o1"
    assert "type Coffee" in r.reason and r.facts["period_days"] == 21
    assert reminders(store, T0 + 56 * DAY, replenishment=COFFEE)  # run-out + 14
    assert reminders(store, T0 + 57 * DAY, replenishment=COFFEE) == []


def test_buying_again_moves_the_reminder(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0, lines=[("beans", 1, "12")], ptype="Coffee"),
            order("o2", "c1", T0 + 10 * DAY, lines=[("beans", 1, "12")], ptype="Coffee"),
        ]
    )
    assert reminders(store, T0 + 17 * DAY, replenishment=COFFEE) == []
    [r] = reminders(store, T0 + 27 * DAY, replenishment=COFFEE)
    assert r.order_id == "o2"


def test_sku_beats_tag_beats_type_and_untyped_products_need_one() -> None:
    by = dict(by_sku={"SKU1": 10}, by_tag={"big": 90, "small": 30}, by_type={"Coffee": 21})
    assert configured_days("SKU1", ("big",), "Coffee", **by) == (10, "SKU SKU1")
    assert configured_days("X", ("big", "small"), "Coffee", **by) == (30, "tag small")
    assert configured_days(None, (), "Coffee", **by) == (21, "type Coffee")
    assert configured_days(None, (), None, **by) is None


def test_tags_come_from_the_catalogue(store: Store) -> None:
    store.upsert(
        [
            product("pods", tags=("monthly",)),
            customer("c1"),
            order("o1", "c1", T0, lines=[("pods", 1, "9")]),  # no product type at all
        ]
    )
    assert reminders(store, T0 + 26 * DAY, replenishment={"usage_days_by_tag": {"monthly": 30}})
    assert reminders(store, T0 + 26 * DAY) == []  # nothing configured, nothing learned


def test_a_learned_period_needs_enough_repeat_pairs(store: Store) -> None:
    records: list = []
    for c in range(3):
        records.append(customer(f"c{c}"))
        records += [
            order(f"o{c}-{i}", f"c{c}", T0 + 30 * i * DAY, lines=[("tea", 1, "8")])
            for i in range(3)
        ]
    store.upsert(records)
    at = T0 + 60 * DAY + 25 * DAY
    learned = {"min_repeat_pairs": 6}
    found = reminders(store, at, replenishment=learned)
    assert len(found) == 3 and "learned from 6 repeat purchases" in found[0].reason
    assert reminders(store, at, replenishment={"min_repeat_pairs": 7}) == []


def test_warranty_notice_before_the_end(store: Store) -> None:
    store.upsert(
        [customer("c1"), order("o1", "c1", T0, lines=[("kettle", 1, "80")], ptype="Kitchen")]
    )
    pol = policy(
        **OTHERS, replenishment={"enabled": False}, warranty={"days_by_type": {"Kitchen": 365}}
    )
    assert [a for a in plan(store, pol, T0 + 334 * DAY) if isinstance(a, WarrantyNotice)] == []
    [w] = [a for a in plan(store, pol, T0 + 336 * DAY) if isinstance(a, WarrantyNotice)]
    assert w.expires_at == T0 + 365 * DAY and w.idempotency_key == "warranty_notice:acme:o1:kettle"
    assert [a for a in plan(store, pol, T0 + 366 * DAY) if isinstance(a, WarrantyNotice)] == []
