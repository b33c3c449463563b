"""Fractional quantities (a WooCommerce store selling coffee by the kilo) flow through the
programs exactly: never rounded down to whole units (issue 15, item 4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from shopsync.core._data import paid_orders
from shopsync.core.actions import Replenish, ReviewRequest
from shopsync.core.shop_stats import purchases, shop_stats
from shopsync.frames import load
from shopsync.planning import plan
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, policy

OTHERS = {"reviews": {"enabled": False}, "winback": {"enabled": False}}
COFFEE = {"usage_days_by_type": {"Coffee": 20}}
KG = Decimal("1.5")


def reminders(store: Store, at: dt.datetime, **extra: dict) -> list[Replenish]:
    return [a for a in plan(store, policy(**OTHERS, **extra), at) if isinstance(a, Replenish)]


def test_one_and_a_half_kilos_last_one_and_a_half_periods(store: Store) -> None:
    store.upsert(
        [customer("c1"), order("o1", "c1", T0, lines=[("beans", KG, "12")], ptype="Coffee")]
    )
    # 1.5 kg x 20 days = 30 days; reminded 5 days before: day 25 (rounded down: day 15).
    assert reminders(store, T0 + 24 * DAY, replenishment=COFFEE) == []
    [r] = reminders(store, T0 + 25 * DAY, replenishment=COFFEE)
    assert r.quantity == KG and str(r.quantity) == "1.5"
    assert r.runs_out_at == T0 + 30 * DAY
    assert "1.5 unit(s)" in r.reason


def test_run_out_is_exact_to_the_microsecond(store: Store) -> None:
    # 0.0001 kg x 7 days = 60.48 s exactly: integer arithmetic, no float drift.
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0, lines=[("beans", Decimal("0.0001"), "1")], ptype="Coffee"),
        ]
    )
    found = reminders(
        store,
        T0 + dt.timedelta(seconds=61),
        replenishment={"usage_days_by_type": {"Coffee": 7}, "days_before": 0},
    )
    assert [r.runs_out_at for r in found] == [T0 + dt.timedelta(seconds=60.48)]


def test_half_a_kilo_is_a_purchase_and_refunds_are_exact(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order(
                "o1",
                "c1",
                T0,
                lines=[("beans", KG, "12"), ("tea", Decimal("0.5"), "8")],
                returned={"beans": Decimal("0.25")},
            ),
        ]
    )
    frames = load(store, P, S, T0 + DAY)
    kept = {
        pid: units
        for pid, units in purchases(paid_orders(frames), frames.lines)
        .select("product_id", "kept")
        .iter_rows()
    }
    assert kept == {"beans": Decimal("1.25"), "tea": Decimal("0.5")}


def test_learned_usage_is_per_kilo(store: Store) -> None:
    # Each customer buys 0.5 kg, then again 10 days later: 20 days per kilo.
    records: list = []
    for n in range(4):
        cid = f"c{n}"
        records += [
            customer(cid),
            order(f"{cid}a", cid, T0, lines=[("beans", Decimal("0.5"), "6")]),
            order(f"{cid}b", cid, T0 + 10 * DAY, lines=[("beans", Decimal("0.5"), "6")]),
        ]
    store.upsert(records)
    learn = policy(replenishment={"min_repeat_pairs": 4})
    stats = shop_stats(load(store, P, S, T0 + 11 * DAY), learn)
    days, pairs = stats.usage_days["beans"]
    assert (days, pairs) == (20.0, 4)


def test_a_fractional_line_gets_a_review_request(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0, lines=[("tea", Decimal("0.5"), "8")], fulfilled=T0 + DAY),
        ]
    )
    quiet = policy(winback={"enabled": False}, replenishment={"enabled": False})
    asked = [a for a in plan(store, quiet, T0 + 15 * DAY) if isinstance(a, ReviewRequest)]
    assert [a.product_ids for a in asked] == [("tea",)]


def test_also_bought_sees_fractional_purchases(store: Store) -> None:
    records: list = []
    for n in range(6):
        cid = f"c{n}"
        records += [
            customer(cid),
            order(
                f"{cid}a",
                cid,
                T0,
                lines=[("beans", Decimal("0.25"), "4"), ("filter", Decimal("0.5"), "2")],
            ),
        ]
    records += [customer("x"), order("xa", "x", T0, lines=[("other", 1, "3")])]
    store.upsert(records)
    on = policy(recommendations={"enabled": True, "min_co_buyers": 2})
    stats = shop_stats(load(store, P, S, T0 + DAY), on)
    assert "filter" in [n.product_id for n in stats.also_bought.of("beans")]
