"""Lifecycle stages and RFM groups as of any date."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shopsync import metrics, reviews
from shopsync.core.lifecycle import RFM_GROUPS, STAGES
from shopsync.store import Store
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, policy


def stage_of(frame: pl.DataFrame) -> dict[str, str]:
    return dict(frame.select("customer_id", "stage").iter_rows())


def test_the_stage_ladder(store: Store) -> None:
    store.upsert(
        [
            customer("prospect"),
            customer("new"),
            customer("returning"),
            customer("loyal"),
            customer("risk"),
            customer("lapsed"),
            customer("fan"),
            order("n1", "new", T0 - 5 * DAY),
            order("r1", "returning", T0 - 50 * DAY),
            order("r2", "returning", T0 - 10 * DAY),
            *(order(f"l{i}", "loyal", T0 - (10 + 20 * i) * DAY) for i in range(4)),
            order("k1", "risk", T0 - 100 * DAY),  # past 90 days, not past 180
            order("z1", "lapsed", T0 - 200 * DAY),
            order("f1", "fan", T0 - 20 * DAY),
        ]
    )
    reviews.record(store, P, S, "fan", "p1", T0 - 2 * DAY)
    seg = metrics.segments(store, P, S, T0, policy())
    assert stage_of(seg) == {
        "prospect": "prospect",
        "new": "new",
        "returning": "returning",
        "loyal": "loyal",
        "risk": "at_risk",
        "lapsed": "lapsed",
        "fan": "ambassador",
    }
    # as of an earlier date the review had not been written and "lapsed" was only at risk
    before = stage_of(metrics.segments(store, P, S, T0 - 10 * DAY, policy()))
    assert before["fan"] == "new" and before["returning"] == "returning"
    assert stage_of(metrics.segments(store, P, S, T0 - 25 * DAY, policy()))["lapsed"] == "at_risk"


def test_rfm_scores_and_groups_on_a_generated_shop(store: Store) -> None:
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    state = generate_shop(platform=P, shop=S, seed=5, customers=300, orders=1200, end=end)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    seg = metrics.segments(store, P, S, end)
    assert set(seg["stage"].unique()) <= set(STAGES)
    assert set(seg["rfm_group"].unique()) <= set(RFM_GROUPS) and len(RFM_GROUPS) == 11
    buyers = seg.filter(pl.col("paid_orders") > 0)
    for col in ("recency_score", "frequency_score", "monetary_score"):
        assert buyers[col].min() == 1 and buyers[col].max() == 5
    assert seg.filter(pl.col("paid_orders") == 0)["rfm_group"].unique().to_list() == ["prospects"]
    # the most recent, most frequent big spenders are champions
    best = buyers.sort(["recency_score", "frequency_score", "monetary_score"], descending=True).row(
        0, named=True
    )
    assert best["rfm_group"] == "champions"
