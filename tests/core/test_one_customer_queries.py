"""A one-customer plan pays ~0.3 ms of fixed cost for each Polars query it runs (issue 18,
item 4.3): the programs' usual one-customer cases run no more queries than they need."""

from __future__ import annotations

import polars as pl
import pytest

from shopsync.core._data import paid_orders
from shopsync.core.actions import Action
from shopsync.core.browse import browse_candidates
from shopsync.core.held import HeldRows
from shopsync.core.loyalty_history import (
    earned_by_customer,
    facts_by_customer,
    pending_by_customer,
)
from shopsync.core.planner import PAID_COLUMNS, _guard, program_candidates
from shopsync.core.policy import Policy
from shopsync.core.replenish import replenishment_candidates, warranty_candidates
from shopsync.core.review_requests import review_candidates
from shopsync.core.shop_stats import purchases, shop_stats
from shopsync.core.winback import winback_candidates
from tests.core.frames_kit import DAY, T0, Shop, policy
from tests.core.polars_queries import count_queries


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many Polars queries ran (eager DataFrame methods run one each)."""
    return count_queries(monkeypatch)


def test_win_back_of_a_customer_whose_sequence_does_not_run_takes_no_query(
    queries: list[int],
) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 2 * DAY)
    shop.order("o2", "c1", T0 - DAY)
    rules = policy(winback={})
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    queries[0] = 0
    assert winback_candidates(frames, paid, stats, rules).frame.height == 0
    # the rhythm of a few orders and whether a sequence may start, in Python (was 2: the
    # rhythm and the sequences' starts)
    assert queries[0] == 0


def _guarded(shop: Shop, rules: Policy, queries: list[int]) -> tuple[list[Action], HeldRows]:
    """The guard of ``shop``'s program candidates as of ``T0``, its queries alone counted."""
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    found = program_candidates(frames, rules, shop_stats(frames, rules), paid, None)
    queries[0] = 0
    return _guard(found, frames, rules, T0, paid)


def test_the_guard_of_one_kept_candidate_runs_only_the_queries_it_needs(
    queries: list[int],
) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 90 * DAY)
    kept, held = _guarded(shop, policy(winback={}), queries)
    assert [a.kind for a in kept] == ["winback"] and not held.rules
    # the rules and the open marketing rows, in Python (was 17: eager filters, Series.implode,
    # and a three-step join when nothing was capped; then 4; then 2: the rules, the open rows)
    assert queries[0] == 0


def test_review_requests_of_a_customer_with_a_delivered_order_take_no_query(
    queries: list[int],
) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0, delivered=T0 + 2 * DAY)
    shop.order("o2", "c1", T0 - 90 * DAY, [("p2", 1, "5")])
    shop.delivered("review_request:acme:o2", T0 - 70 * DAY)
    frames = shop.frames(T0 + 9 * DAY)
    queries[0] = 0
    found = review_candidates(frames, policy(reviews={}))
    assert found.frame["key"].to_list() == ["review_request:acme:o1"]
    # a customer's few rows in Python, the candidates' frame built once (was 4: the
    # purchases, their lines by product, the reviews' check, the request and reminder rows;
    # before that 16: a query for each step, keys and lengths, and a date's month offset)
    assert queries[0] == 0


def test_browse_of_a_customer_who_browsed_nothing_takes_no_query(queries: list[int]) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - DAY)
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    queries[0] = 0
    assert browse_candidates(frames, paid, policy(browse_abandonment={})).frame.height == 0
    assert queries[0] == 0


def test_one_customers_loyalty_facts_take_one_query(queries: list[int]) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 9 * DAY, ptype="Coffee")
    shop.order("o2", "c1", T0 - 5 * DAY, refund=(T0 - 2 * DAY, "5"), ptype="Tea")
    frames = shop.frames(T0)
    tables = {
        "orders": frames.orders.with_columns(
            pl.col("total").alias("subtotal"), total_shipping=pl.lit(0), total_tax=pl.lit(0)
        ),
        "refunds": frames.refunds.select(
            "order_id", pl.lit("r1").alias("id"), "created_at", "amount"
        ),
        "line_items": frames.lines.select("order_id", "product_type"),
    }
    earned = pl.DataFrame(
        {"customer_id": ["c1", "c1"], "order_id": ["o1", "o2"], "points": [20, 20]}
    ).with_columns(pl.Series("pending", [False, True]))
    rules = policy(loyalty={"enabled": True})
    queries[0] = 0
    facts = facts_by_customer(tables, rules)["c1"]
    assert pending_by_customer(earned) == {"c1": frozenset({"o2"})}
    assert earned_by_customer(earned) == {"c1": {"o1": 20, "o2": 20}}
    # the facts in Python (was 7: a sort, a filter, a grouping, selects; then 1: the table)
    assert queries[0] == 0
    assert [(f.order_id, f.categories, len(f.refunds)) for f in facts] == [
        ("o1", ("Coffee",), 0),
        ("o2", ("Tea",), 1),
    ]


def test_replenishment_and_warranty_of_a_customer_with_nothing_due_take_no_query(
    queries: list[int],
) -> None:
    shop = (
        Shop().customer("c1").order("o1", "c1", T0 - 3 * DAY, [("beans", 1, "12")], ptype="Coffee")
    )
    shop.order("o2", "c1", T0 - 2 * DAY, [("mill", 1, "90")], ptype="Mill")
    rules = policy(
        replenishment={"usage_days_by_type": {"Coffee": 30}, "usage_days_by_sku": {}},
        warranty={"days_by_type": {"Mill": 365}},
    )
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    bought = purchases(paid, frames.lines, amounts=False)
    queries[0] = 0
    assert replenishment_candidates(frames, paid, stats, rules, bought).frame.height == 0
    assert warranty_candidates(frames, paid, stats, rules, bought).frame.height == 0
    assert queries[0] == 0  # was 5: the distinct products of each, their due dates


def test_the_cap_counts_a_customers_deliveries_without_a_query(queries: list[int]) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 90 * DAY)
    shop.sent("c1", "winback:acme:c1:o0:stage1", T0 - DAY / 2)
    kept, held = _guarded(shop, policy(winback={}, frequency_cap={"email_hours": 24}), queries)
    assert not kept and held.counts() == {"frequency_cap": 1}
    # the held rows counted; the rules and the cap's verdicts in Python (was 6: consent apart,
    # the deliveries grouped; then 4: the rules, the open rows, the verdicts joined in)
    assert queries[0] == 1


def test_a_customers_paid_orders_and_purchases_take_no_query(queries: list[int]) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 9 * DAY, [("beans", 2, "12")])
    shop.order("o2", "c1", T0 - 5 * DAY, [("mill", 1, "90")], refund=(T0 - 2 * DAY, "5"))
    frames = shop.frames(T0)
    queries[0] = 0
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    bought = purchases(paid, frames.lines, amounts=False)
    assert paid["net"].to_list() == [240_000, 850_000]
    assert bought["product_id"].to_list() == ["beans", "mill"]
    assert queries[0] == 0  # was 2: the paid orders with their refunds, the kept quantities


def test_a_customers_warranty_notice_due_takes_no_query(queries: list[int]) -> None:
    shop = (
        Shop().customer("c1").order("o1", "c1", T0 - 340 * DAY, [("mill", 1, "90")], ptype="Mill")
    )
    rules = policy(warranty={"days_by_type": {"Mill": 365}})
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    bought = purchases(paid, frames.lines, amounts=False)
    queries[0] = 0
    found = warranty_candidates(frames, paid, stats, rules, bought)
    assert found.frame["key"].to_list() == ["warranty_notice:acme:o1:mill"]
    assert queries[0] == 0  # was 3: the lengths' positions, the due rows, their columns
