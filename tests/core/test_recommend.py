"""'Also bought': support, lift, top-k, nothing the customer owns."""

from __future__ import annotations

import polars as pl

from shopsync.core.actions import Replenish
from shopsync.core.policy import RecommendationSettings
from shopsync.core.recommend import also_bought, recommend
from shopsync.planning import plan
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, customer, order, policy


def purchases(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"customer_id": pl.String, "product_id": pl.String}, orient="row"
    )


def basket() -> pl.DataFrame:
    rows = []
    for c in range(6):  # six customers buy A and B together
        rows += [(f"ab{c}", "A"), (f"ab{c}", "B")]
    for c in range(2):  # only two buy A and C: below the support of 3
        rows += [(f"ac{c}", "A"), (f"ac{c}", "C")]
    for c in range(12):  # D is bought by everyone else, with A by three of them
        rows.append((f"d{c}", "D"))
        if c < 3:
            rows.append((f"d{c}", "A"))
    return purchases([*rows, ("ab0", "B")])  # a duplicate counts once


def test_support_lift_and_order() -> None:
    table = also_bought(basket(), RecommendationSettings())
    assert [n.product_id for n in table.of("B")] == ["A"]
    a = {n.product_id: n for n in table.of("A")}
    assert set(a) == {"B"}  # C lacks support; D is bought with A less than chance predicts
    assert a["B"].co_buyers == 6 and a["B"].lift > 1
    assert table.customers == 20


def test_top_k_and_never_owned() -> None:
    table = also_bought(basket(), RecommendationSettings(min_co_buyers=2, min_lift=0))
    assert len(table.of("A")) == 3
    assert (
        len(
            also_bought(basket(), RecommendationSettings(min_co_buyers=2, min_lift=0, top_k=1)).of(
                "A"
            )
        )
        == 1
    )
    assert recommend(table, ["A"], owned=["A", "B"], n=5) == ("C", "D")
    assert recommend(table, ["A"], owned=["A"], n=5, available=frozenset({"D"})) == ("D",)
    assert recommend(table, ["A"], owned=[], n=0) == ()


def test_empty_input() -> None:
    assert also_bought(purchases([]), RecommendationSettings()).neighbours == {}


def test_actions_carry_recommendations(store: Store) -> None:
    records: list = [customer("me")]
    for c in range(4):
        records += [
            customer(f"c{c}"),
            order(f"x{c}", f"c{c}", T0, lines=[("beans", 1, "9"), ("mug", 1, "15")]),
        ]
        records += [customer(f"n{c}"), order(f"y{c}", f"n{c}", T0, lines=[("tea", 1, "5")])]
    records.append(order("mine", "me", T0 + 10 * DAY, lines=[("beans", 1, "9")], ptype="Coffee"))
    store.upsert(records)
    pol = policy(
        reviews={"enabled": False},
        winback={"enabled": False},
        replenishment={"usage_days_by_type": {"Coffee": 21}},
    )
    [r] = [a for a in plan(store, pol, T0 + 27 * DAY) if isinstance(a, Replenish)]
    assert r.customer_id == "me" and r.recommendations == ("mug",)
