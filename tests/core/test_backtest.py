"""Backtesting: counts equal to planning by hand, who came back, the holdout lift, bad input."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select

from shopsync.backtest import Backtest, Lift, backtest, holdout_lift, wilson
from shopsync.core.planner import in_holdout
from shopsync.core.policy import Policy
from shopsync.errors import ConfigurationError
from shopsync.planning import plan
from shopsync.store import Store
from shopsync.store.schema import metadata, outbox
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import DAY, T0, P, S, customer, order, policy

LAPSE = T0 + 90 * DAY  # a one-time buyer of T0 gets win-back stage 1 here (fallback 90 days)
WINBACK_ONLY = policy(
    reviews={"enabled": False},
    replenishment={"enabled": False},
    holdout={"share": 0.5},
)
ONE_TIME = [f"c{i}" for i in range(12)]
HELD = [c for c in ONE_TIME if in_holdout(WINBACK_ONLY, P, S, c)]
TREATED = [c for c in ONE_TIME if c not in HELD]


def one_time_buyers(store: Store) -> dict[str, set[str]]:
    """Twelve one-time buyers of T0; some come back after LAPSE, and who is known."""
    assert len(HELD) >= 3 and len(TREATED) >= 4  # the hash splits this list both ways
    back = {TREATED[0], TREATED[1], TREATED[3], HELD[0]}
    records: list[Any] = []
    for cid in ONE_TIME:
        records += [customer(cid), order(f"{cid}-a", cid, T0)]
    records += [order(f"{c}-b", c, LAPSE + 10 * DAY) for c in sorted(back - {TREATED[3]})]
    records.append(order(f"{TREATED[3]}-b", TREATED[3], LAPSE + 30 * DAY))  # the window's end
    # not returns: after the 30-day horizon; cancelled inside it; not yet paid
    records.append(order(f"{TREATED[2]}-late", TREATED[2], LAPSE + 45 * DAY))
    records.append(
        order(f"{HELD[1]}-x", HELD[1], LAPSE + 5 * DAY, cancelled=LAPSE + 6 * DAY, fulfilled=None)
    )
    records.append(order(f"{HELD[2]}-y", HELD[2], LAPSE + 30 * DAY + dt.timedelta(seconds=1)))
    # a customer without orders before LAPSE whose late order keeps the store's data going
    records += [customer("z"), order("z-1", "z", LAPSE + 200 * DAY)]
    store.upsert(records)
    return {"treated": back & set(TREATED), "held": back & set(HELD)}


def test_who_came_back_and_the_holdout(store: Store) -> None:
    back = one_time_buyers(store)
    result = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, horizon=30 * DAY)
    assert result.steps == [LAPSE] and result.censored == []
    wb = result.programs["winback"]
    assert (wb.actions, wb.unique_actions, wb.customers, wb.observed) == (
        len(TREATED),
        len(TREATED),
        len(TREATED),
        len(TREATED),
    )
    assert wb.returned == len(back["treated"]) == 3
    assert (wb.holdout, wb.holdout_observed, wb.holdout_returned) == (len(HELD), len(HELD), 1)
    assert result.recipients == {"winback": sorted(TREATED)}
    came_back = {r.customer_id for r in result.planned if r.returned}
    assert came_back == back["treated"] | back["held"]
    lift = result.lift
    assert (lift.treated, lift.treated_returned, lift.holdout, lift.holdout_returned) == (
        len(TREATED),
        3,
        len(HELD),
        1,
    )
    assert not lift.sent and lift.delivered == 0
    assert lift.difference == pytest.approx(3 / len(TREATED) - 1 / len(HELD))
    assert holdout_lift(store, WINBACK_ONLY, [LAPSE], horizon=30 * DAY) == lift


def test_counts_equal_planning_by_hand_at_each_step(store: Store) -> None:
    one_time_buyers(store)
    start, end, step = LAPSE - 3 * DAY, LAPSE + 30 * DAY, 4 * DAY
    seen: list[dt.datetime] = []
    result = backtest(store, WINBACK_ONLY, start, end, step=step, on_step=seen.append)
    dates = [start + i * step for i in range(9)]
    assert result.steps == seen == dates
    actions: Counter[str] = Counter()
    customers: dict[str, set[str]] = {}
    keys: dict[str, set[str]] = {}
    holdout: dict[str, set[str]] = {}
    for at in dates:
        by_hand = plan(store, WINBACK_ONLY, at)
        for a in by_hand:
            actions[a.kind] += 1
            customers.setdefault(a.kind, set()).add(a.customer_id)
            keys.setdefault(a.kind, set()).add(a.idempotency_key)
        for h in by_hand.held:
            if h.rule == "holdout":
                holdout.setdefault(h.action.kind, set()).add(h.action.customer_id)
    assert actions["winback"] > len(TREATED)  # several stages: the same people again
    assert {k: r.actions for k, r in result.programs.items()} == dict(actions)
    assert {k: r.customers for k, r in result.programs.items()} == {
        k: len(v) for k, v in customers.items()
    }
    assert {k: r.unique_actions for k, r in result.programs.items()} == {
        k: len(v) for k, v in keys.items()
    }
    assert {k: r.holdout for k, r in result.programs.items()} == {
        k: len(v) for k, v in holdout.items()
    }
    assert result.recipients == {k: sorted(v) for k, v in customers.items()}


def test_steps_whose_horizon_passes_the_latest_order_are_censored(store: Store) -> None:
    one_time_buyers(store)
    latest = LAPSE + 200 * DAY
    result = backtest(store, WINBACK_ONLY, LAPSE, latest, step=30 * DAY, horizon=60 * DAY)
    assert result.latest_order == latest
    assert result.censored == [s for s in result.steps if s + 60 * DAY > latest] != []
    assert all(r.returned is None for r in result.planned if r.at in result.censored)
    assert all(r.returned is not None for r in result.planned if r.at not in result.censored)
    assert "censored" in str(result)
    only_censored = backtest(store, WINBACK_ONLY, latest - DAY, latest, horizon=30 * DAY)
    assert only_censored.censored == only_censored.steps
    assert (only_censored.lift.treated, only_censored.lift.holdout) == (0, 0)


def test_customers_whose_consent_the_store_saw_only_later_are_reported(store: Store) -> None:
    one_time_buyers(store)
    seen_late = customer("u").model_copy(update={"updated_at": LAPSE + 10 * DAY})
    store.upsert([seen_late, order("u-a", "u", T0), order("u-b", "u", LAPSE + 10 * DAY)])
    result = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY)
    assert "u" not in {r.customer_id for r in result.planned}  # held: consent unknown then
    assert result.consent_unseen == 1
    assert "1 of 1 observed came back" in result.notes[0] and "note: 1 customer" in str(result)
    plain = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, platform=P, shop=S)
    assert plain.consent_unseen == 1


def test_backtest_writes_nothing(store: Store) -> None:
    one_time_buyers(store)
    store.upsert([order("c0-b", "c0", LAPSE + 10 * DAY)])
    before = _dump(store)
    backtest(store, Policy(), LAPSE - 20 * DAY, LAPSE + 20 * DAY, step=10 * DAY)  # loyalty on
    assert _dump(store) == before


def test_delivered_actions_make_it_a_measurement_of_real_sends(store: Store) -> None:
    one_time_buyers(store)
    replay = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY)
    planned = [r for r in replay.planned if r.group == "planned"]
    shop_id = store.shop_id(P, S)
    moment = int(LAPSE.timestamp() * 1_000_000)
    with store.transaction() as conn:
        for r in planned[: len(planned) // 2 + 1]:
            conn.execute(
                insert(outbox).values(
                    shop_id=shop_id,
                    idempotency_key=r.idempotency_key,
                    sink="email",
                    stage=0,
                    kind=r.kind,
                    customer_id=r.customer_id,
                    marketing=1,
                    model="",
                    action={},
                    status="done",
                    attempts=1,
                    due_at=moment,
                    next_attempt_at=moment,
                    created_at=moment,
                    updated_at=moment,
                    finished_at=moment + 1,
                )
            )
    lift = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY).lift
    assert lift.sent and lift.delivered == len(planned) // 2 + 1
    assert "real sends" in str(lift) and "replay" in str(replay.lift)


# -- the interval ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
        ((70, 56, 80, 48), 0.0524, 0.3339),
        ((10, 9, 10, 3), 0.1705, 0.8090),
        ((56, 5, 29, 0), -0.0381, 0.1926),
        ((10, 0, 20, 0), -0.1611, 0.2775),
    ],
)
def test_newcombe_interval_matches_the_published_examples(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    lift = Lift(*counts)
    assert (round(lift.low, 4), round(lift.high, 4)) == (low, high)
    assert lift.low <= lift.difference <= lift.high


def test_wilson_interval_and_empty_groups() -> None:
    assert [round(x, 4) for x in wilson(81, 263)] == [0.2553, 0.3662]  # Newcombe 1998b, Table I
    assert all(math.isnan(x) for x in wilson(0, 0))
    for lift in (Lift(0, 0, 10, 3), Lift(10, 3, 0, 0), Lift(0, 0, 0, 0)):
        assert math.isnan(lift.difference) and math.isnan(lift.low) and math.isnan(lift.high)
        assert "not measurable" in str(lift)
    assert Lift(10, 3, 0, 0).rate_treated == pytest.approx(0.3)
    assert "mostly a replay: 2 of 10 were sent" in str(Lift(10, 3, 10, 2, delivered=2))
    with pytest.raises(ValueError, match="between 0"):
        Lift(5, 6, 0, 0)


# -- input ----------------------------------------------------------------------------------


def test_naive_times_are_utc_and_bad_input_is_refused(store: Store) -> None:
    one_time_buyers(store)
    naive = LAPSE.replace(tzinfo=None)
    aware = backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY)
    assert backtest(store, WINBACK_ONLY, naive, naive + DAY) == aware
    for args, message in [
        ((LAPSE, LAPSE), "before end"),
        ((LAPSE + DAY, LAPSE), "before end"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            backtest(store, WINBACK_ONLY, *args)
    with pytest.raises(ConfigurationError, match="step must be positive"):
        backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, step=dt.timedelta(0))
    with pytest.raises(ConfigurationError, match="horizon must be positive"):
        backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, horizon=-DAY)
    with pytest.raises(ConfigurationError, match="both platform and shop"):
        backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, platform=P)
    with pytest.raises(ConfigurationError, match=r"must be a shopsync\.Policy"):
        backtest(store, {"holdout": {}}, LAPSE, LAPSE + DAY)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at least one"):
        holdout_lift(store, WINBACK_ONLY, [])
    shops = store.shops()
    with pytest.raises(ConfigurationError, match="no shop woocommerce/other"):
        backtest(store, WINBACK_ONLY, LAPSE, LAPSE + DAY, platform="woocommerce", shop="other")
    assert store.shops() == shops  # asking for an unknown shop did not create it


def test_an_empty_store_says_to_sync_first(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="run `shopsync sync` first"):
        backtest(store, None, LAPSE, LAPSE + DAY)
    store.upsert([customer("c1")])  # a shop with customers but no orders
    with pytest.raises(ConfigurationError, match="holds no orders"):
        backtest(store, None, LAPSE, LAPSE + DAY)


# -- a generated shop, every program ---------------------------------------------------------

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Store:
    state = generate_shop(platform=P, shop=S, seed=5, customers=400, orders=1600, end=END)
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('backtest') / 'shop.db'}")
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return store


def test_a_generated_shop_with_every_program(generated: Store) -> None:
    start = END - 120 * DAY
    result = backtest(generated, Policy(), start, start + 28 * DAY, platform=P, shop=S)
    assert len(result.steps) == 4 and result.censored == []
    by_hand: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for at in result.steps:
        p = plan(generated, Policy(), at)
        by_hand.update(a.kind for a in p)
        held.update(h.rule for h in p.held)
    assert {k: r.actions for k, r in result.programs.items() if r.actions} == dict(by_hand)
    assert sum(r.customers for r in result.programs.values()) > 0
    assert held["holdout"] > 0 and result.lift.holdout > 0 and result.lift.treated > 0
    assert result.lift.low <= result.lift.difference <= result.lift.high
    text = str(result)
    assert text.splitlines()[0].startswith("backtest 2024-09-03 00:00 to 2024-10-01 00:00 UTC")
    for kind in result.programs:
        assert kind in text
    assert "holdout lift (replay" in text
    assert isinstance(result, Backtest)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    names = set(inspect(store.engine).get_table_names())
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in names:
                rows = conn.execute(select(table)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
