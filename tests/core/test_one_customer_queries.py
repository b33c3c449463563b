"""A one-customer plan pays ~0.3 ms of fixed cost for each Polars query it runs (issue 18,
item 4.3): the programs' usual one-customer cases run no more queries than they need."""

from __future__ import annotations

import pytest

from shopsync.core._data import paid_orders
from shopsync.core.planner import PAID_COLUMNS, _guard, program_candidates
from shopsync.core.shop_stats import shop_stats
from shopsync.core.winback import winback_candidates
from tests.core.frames_kit import DAY, T0, Shop, policy
from tests.core.polars_queries import count_queries


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many Polars queries ran (eager DataFrame methods run one each)."""
    return count_queries(monkeypatch)


def test_win_back_of_a_customer_whose_sequence_does_not_run_takes_two_queries(
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
    assert queries[0] == 2  # the rhythm and the sequences' starts


def test_the_guard_of_one_kept_candidate_runs_only_the_queries_it_needs(
    queries: list[int],
) -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0 - 90 * DAY)
    rules = policy(winback={})
    frames = shop.frames(T0)
    paid = paid_orders(frames, columns=PAID_COLUMNS)
    stats = shop_stats(frames, rules)
    found = program_candidates(frames, rules, stats, paid, None)
    queries[0] = 0
    kept, held = _guard(found, frames, rules, T0, paid)
    assert [a.kind for a in kept] == ["winback"] and not held.rules
    # consent, the rules, the open marketing rows, the deliveries (was 17: eager filters,
    # Series.implode, and a three-step join when nothing was capped)
    assert queries[0] == 4
