"""Retention metrics against hand-computed figures, cohorts, predictive CLV and its gate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from shopsync import metrics
from shopsync.store import Store
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import DAY, T0, P, S, customer, order

START, END = T0, T0 + 90 * DAY


@pytest.fixture
def shop(store: Store) -> Store:
    store.upsert(
        [
            *(customer(c) for c in "abcdef"),
            order("a1", "a", T0 - 100 * DAY, lines=[("p", 1, "10")]),  # active at start only
            order("b1", "b", T0 - 50 * DAY, lines=[("p", 1, "20")]),
            order("b2", "b", T0 + 10 * DAY, lines=[("p", 1, "30")]),  # retained
            order("c1", "c", T0 + 5 * DAY, lines=[("p", 1, "40")]),  # new
            order("c2", "c", T0 + 20 * DAY, lines=[("p", 1, "10")], refund=(T0 + 21 * DAY, "4")),
            order("d1", "d", T0 + 30 * DAY, lines=[("p", 1, "50")], cancelled=T0 + 31 * DAY),
            order("e1", "e", T0 - 400 * DAY, lines=[("p", 1, "5")]),  # inactive at start
        ]
    )
    return store


def test_period_figures(shop: Store) -> None:
    m = metrics.period(shop, P, S, start=START, end=END)
    # active at start: a, b (e's order is over a year old); at end: a, b, c; new: c
    assert m.retention_rate == pytest.approx((3 - 1) / 2)
    assert (m.customers, m.orders) == (2, 3)  # d's order was cancelled
    assert m.repeat_purchase_rate == pytest.approx(1 / 2)
    assert m.purchase_frequency == pytest.approx(3 / 2)
    assert m.average_order_value == Decimal("25.3333")  # (30 + 40 + 6) / 3, net of refunds
    assert m.currency == "USD"


def test_cohorts_and_historical_value(shop: Store) -> None:
    table = metrics.cohorts(shop, P, S, END, months=3)
    rows = {r["cohort"]: r for r in table.iter_rows(named=True)}
    march = rows["2024-03"]  # c's first order
    assert march["customers"] == 1 and (march["m1"], march["m2"], march["m3"]) == (0.0, 0.0, None)
    assert all(r["m0"] == 1.0 for r in rows.values())
    value = dict(
        metrics.customer_value(shop, P, S, END).select("customer_id", "net_spend").iter_rows()
    )
    assert value["c"] == Decimal("46") and value["b"] == Decimal("50") and "d" not in value


def test_periods_are_checked(shop: Store) -> None:
    with pytest.raises(ValueError, match="after start"):
        metrics.period(shop, P, S, start=END, end=START)


def test_predictive_clv_is_gated_then_computed(shop: Store) -> None:
    with pytest.raises(metrics.InsufficientDataError) as err:
        metrics.predicted_clv(shop, P, S, END)
    assert err.value.gate["customers"] == 4


def test_predictive_clv_on_a_generated_shop(store: Store) -> None:
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    state = generate_shop(platform=P, shop=S, seed=9, customers=800, orders=3200, end=end)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    table = metrics.predicted_clv(store, P, S, end)
    assert table.height > 500
    assert table["clv"].is_finite().all() and (table["clv"] >= 0).all()
    assert ((table["p_alive"] >= 0) & (table["p_alive"] <= 1)).all()
    loyal = table.sort("frequency").tail(20)["expected_orders"].mean()
    once = table.filter(table["frequency"] == 0)["expected_orders"].mean()
    assert loyal > once  # type: ignore[operator]
