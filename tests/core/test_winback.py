"""Win-back: the customer's own rhythm, the shop's, the P(alive) trigger, stages, coupons."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from shopsync import clv
from shopsync.core.actions import WinBack
from shopsync.core.shop_stats import model_lapse_day
from shopsync.planning import plan
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, customer, order, policy

QUIET = {"reviews": {"enabled": False}, "replenishment": {"enabled": False}}


def stages(store: Store, at: dt.datetime, **extra: dict) -> list[WinBack]:
    return [a for a in plan(store, policy(**QUIET, **extra), at) if isinstance(a, WinBack)]


def test_one_time_buyer_with_thin_data_lapses_at_ninety_days(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0)])
    assert stages(store, T0 + 89 * DAY) == []
    [first] = stages(store, T0 + 90 * DAY)
    assert (first.stage, first.stage_name, first.discount_percent) == (1, "reminder", None)
    assert first.idempotency_key == "winback:acme:c1:o1:stage1"
    assert first.trigger == "rhythm" and "90 days" in first.reason
    [offer] = stages(store, T0 + 101 * DAY)
    assert (offer.stage, offer.stage_name, offer.discount_percent) == (2, "offer", 10)
    assert offer.due_at == T0 + 100 * DAY + 12 * dt.timedelta(hours=1)
    [last] = stages(store, T0 + 115 * DAY)
    assert last.stage_name == "last_chance" and last.due_at == T0 + 111 * DAY
    assert stages(store, T0 + 119 * DAY) == []  # last stage expired (late_days = 7)


def test_a_new_order_ends_the_sequence_and_a_later_lapse_starts_another(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0), order("o2", "c1", T0 + 95 * DAY)])
    assert stages(store, T0 + 96 * DAY) == []
    later = stages(store, T0 + 95 * DAY + 150 * DAY)
    assert [w.last_order_id for w in later] == ["o2"]
    assert later[0].idempotency_key.startswith("winback:acme:c1:o2:")


def test_repeat_buyers_follow_their_own_median_gap(store: Store) -> None:
    store.upsert([customer("c1"), *(order(f"o{i}", "c1", T0 + 40 * i * DAY) for i in range(4))])
    last = T0 + 120 * DAY
    assert stages(store, last + 59 * DAY) == []  # 1.5 x 40 = 60 days
    [w] = stages(store, last + 60 * DAY)
    assert w.facts["basis"] == "own rhythm" and w.facts["threshold_days"] == 60
    assert "40-day gap" in w.reason


def test_one_time_buyers_wait_the_shops_typical_second_order_gap(store: Store) -> None:
    store.upsert(
        [
            customer("r1"),
            customer("r2"),
            customer("once"),
            order("a1", "r1", T0),
            order("a2", "r1", T0 + 50 * DAY),
            order("b1", "r2", T0),
            order("b2", "r2", T0 + 70 * DAY),
            order("c1", "once", T0 + 100 * DAY),
        ]
    )
    wb = {"min_repeat_customers": 2}
    once = lambda at: [w for w in stages(store, at, winback=wb) if w.customer_id == "once"]  # noqa: E731
    assert once(T0 + 189 * DAY) == []
    found = once(T0 + 190 * DAY)  # max(60, 1.5 x the median 60-day gap) = 90 days
    assert len(found) == 1
    assert found[0].facts["basis"] == "shop rhythm"


def test_no_coupon_inside_the_return_window_of_any_order(store: Store) -> None:
    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0),
            order("x", "c1", T0 + 95 * DAY, cancelled=T0 + 96 * DAY),
        ]
    )
    [w] = stages(store, T0 + 101 * DAY)
    assert w.stage == 1 and w.discount_percent is None  # the offer waits for day 125
    [w] = stages(store, T0 + 126 * DAY)  # the offer is not skipped (docs/programs.md)
    assert w.stage_name == "offer" and w.due_at == T0 + 125 * DAY
    # and the last chance keeps its distance from it: 10.5 days, as in the unpushed plan
    assert stages(store, T0 + 135 * DAY)[0].stage_name == "offer"
    [w] = stages(store, T0 + 136 * DAY)
    assert w.stage_name == "last_chance" and w.due_at == T0 + 135 * DAY + DAY // 2


def test_an_unpaid_newer_order_means_they_just_ordered(store: Store) -> None:
    from shopsync.models import FinancialStatus

    store.upsert(
        [
            customer("c1"),
            order("o1", "c1", T0),
            order("o2", "c1", T0 + 92 * DAY, status=FinancialStatus.PENDING, fulfilled=False),
        ]
    )
    assert stages(store, T0 + 93 * DAY) == []


def test_the_model_crossing_matches_probability_alive() -> None:
    params = clv.MbgNbdParams(0.25, 40.0, 0.6, 25.0, 0.0, 1)
    x = np.array([0.0, 1.0, 4.0])
    t_x = np.array([0.0, 30.0, 200.0])
    crossing = model_lapse_day(params, x, t_x, 0.3)
    after = clv.probability_alive(params, x, t_x, crossing + 1.0)
    before = clv.probability_alive(params, x, t_x, np.maximum(crossing - 1.0, t_x))
    assert np.all(after < 0.3) and np.all(before >= 0.3 - 1e-9)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_stage_names(steps: int) -> None:
    from shopsync.core.winback import stage_plan

    names = [n for _, n, _ in stage_plan(policy(winback={"steps": steps}))]
    assert names[0] == "reminder" and len(names) == steps
    if steps > 1:
        assert names[-1] == "last_chance" and set(names[1:-1]) <= {"offer"}
