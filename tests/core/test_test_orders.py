"""Test orders (Shopify ``test``) never count as revenue, loyalty or a purchase (issue 15).

One store holds, for each customer, a real order and a test order placed through a test
gateway; every consumer family must see only the real one.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from shopsync import loyalty, metrics
from shopsync.backtest import backtest
from shopsync.core.actions import LoyaltyAward, ReviewRequest, WinBack
from shopsync.errors import ConfigurationError
from shopsync.frames import customer_features
from shopsync.models import Order
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, policy


def a_test_order(oid: str, cid: str, at: dt.datetime, price: str = "500") -> Order:
    return order(oid, cid, at, lines=[("p9", 1, price)]).model_copy(update={"test": True})


@pytest.fixture
def shop(store: Store) -> Store:
    store.upsert(
        [
            customer("real"),
            customer("tester"),
            order("r1", "real", T0, lines=[("p1", 1, "40")]),
            a_test_order("t1", "real", T0 + 2 * DAY),
            a_test_order("t2", "tester", T0 + DAY),
        ]
    )
    return store


def test_features_count_only_real_purchases(shop: Store) -> None:
    rows = {
        r["customer_id"]: r
        for r in customer_features(shop, P, S, T0 + 10 * DAY).iter_rows(named=True)
    }
    assert rows["real"]["paid_orders"] == 1
    assert rows["real"]["net_spend"] == Decimal(40)
    assert rows["tester"]["paid_orders"] == 0


def test_metrics_revenue_and_average_order_value_leave_test_orders_out(shop: Store) -> None:
    m = metrics.period(shop, P, S, start=T0 - DAY, end=T0 + 10 * DAY)
    assert (m.customers, m.orders) == (1, 1)
    assert m.average_order_value == Decimal(40)
    value = dict(
        metrics.customer_value(shop, P, S, T0 + 10 * DAY)
        .select("customer_id", "net_spend")
        .iter_rows()
    )
    assert value.get("real") == Decimal(40) and "tester" not in value


def test_loyalty_earns_nothing_on_a_test_order(shop: Store) -> None:
    loyalty.update_ledger(shop, P, S, as_of=T0 + 60 * DAY)
    assert loyalty.balance(shop, (P, S, "real")).lifetime == 40 * 5
    assert loyalty.balance(shop, (P, S, "tester")).lifetime == 0
    assert {e.order_id for e in loyalty.ledger_entries(shop, P, S) if e.order_id} == {"r1"}


def test_one_customer_loyalty_replan_ignores_test_orders(shop: Store) -> None:
    on = policy(loyalty={"enabled": True}, winback={"enabled": False})
    # Two days after the test order: a real order would have earned an award by now.
    kinds = [a.kind for a in plan_customer(shop, on, T0 + 3 * DAY, P, S, "tester")]
    assert kinds == []
    real = plan_customer(shop, on, T0 + 3 * DAY, P, S, "real")
    assert [a.order_id for a in real if isinstance(a, LoyaltyAward)] == ["r1"]


def test_no_review_request_after_a_test_order(shop: Store) -> None:
    quiet = policy(winback={"enabled": False}, replenishment={"enabled": False})
    asked = [a for a in plan(shop, quiet, T0 + 17 * DAY) if isinstance(a, ReviewRequest)]
    assert [a.facts["order_id"] for a in asked] == ["r1"]


def test_a_test_order_does_not_hold_back_a_win_back(store: Store) -> None:
    store.upsert(
        [
            customer("lapsed"),
            order("o1", "lapsed", T0 - 95 * DAY),  # due for a win-back at T0 (90 days)
            a_test_order("t1", "lapsed", T0 - 5 * DAY),
        ]
    )
    only_winback = policy(reviews={"enabled": False}, replenishment={"enabled": False})
    real_only = [a for a in plan(store, only_winback, T0) if isinstance(a, WinBack)]
    assert real_only and real_only[0].facts["last_order_id"] == "o1"


def test_a_store_holding_only_test_orders_has_nothing_to_backtest(store: Store) -> None:
    store.upsert([customer("tester"), a_test_order("t1", "tester", T0)])
    with pytest.raises(ConfigurationError, match="holds no orders"):
        backtest(store, None, T0 - 30 * DAY, T0)
