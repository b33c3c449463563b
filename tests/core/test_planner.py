"""The planner: programs together, consent, holdout, quiet periods, the cap, bad input."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from shopsync.core import planner
from shopsync.core.held import HeldRows
from shopsync.core.planner import in_holdout
from shopsync.core.policy import Policy, PolicyError
from shopsync.frames import load
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from shopsync.store.schema import outbox
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import DAY, T0, P, S, customer, kinds, order, policy

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
AS_OF = END - 3 * DAY
MANY = Policy.from_dict(
    {
        "replenishment": {"usage_days_by_type": {"Coffee": 21, "Tea": 45, "Pet Food": 28}},
        "warranty": {"days_by_type": {"Electronics": 730, "Kitchen": 365}},
    }
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Store:
    state = generate_shop(platform=P, shop=S, seed=11, customers=600, orders=2400, end=END)
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('plan') / 'shop.db'}")
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return store


def test_every_program_runs_and_every_action_says_why(generated: Store) -> None:
    result = plan(generated, MANY, AS_OF)
    assert {"review_request", "winback", "replenishment", "loyalty_award"} <= set(result.counts)
    assert sum(result.counts.values()) == len(result)
    for action in result:
        assert action.reason and action.facts and action.idempotency_key.startswith(action.kind)
        assert action.due_at <= AS_OF
    assert result.held_counts.get("consent", 0) > 0


def test_planning_twice_gives_the_same_keys_and_one_customer_matches(generated: Store) -> None:
    first, second = plan(generated, MANY, AS_OF), plan(generated, MANY, AS_OF)
    assert first.keys == second.keys and len(set(first.keys)) == len(first.keys)
    for cid in sorted({a.customer_id for a in first})[:25]:
        alone = plan_customer(generated, MANY, AS_OF, P, S, cid)
        assert alone.keys == [a.idempotency_key for a in first if a.customer_id == cid]
        assert [h.action.idempotency_key for h in alone.held] == [
            h.action.idempotency_key for h in first.held if h.action.customer_id == cid
        ]


CONSENT = st.sampled_from(
    ["subscribed", "not_subscribed", "unsubscribed", "pending", "redacted", "unknown"]
)


@pytest.mark.slow(seconds=30)
@settings(max_examples=25)
@given(
    states=st.lists(CONSENT, min_size=1, max_size=6),
    soft=st.booleans(),
    share=st.sampled_from([0, 0.5]),
)
def test_no_marketing_without_consent_and_stable_keys(
    tmp_path_factory: pytest.TempPathFactory, states: list[str], soft: bool, share: float
) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}")
    records: list = []
    for i, state in enumerate(states):
        cid = f"c{i}"
        records += [
            customer(cid, consent=state),
            order(f"a{i}", cid, T0, ptype="Coffee"),
            order(f"b{i}", cid, T0 + 20 * DAY, ptype="Coffee"),
        ]
    store.upsert(records)
    pol = Policy.from_dict(
        {
            "consent": {"allow_soft_opt_in": soft},
            "holdout": {"share": share},
            "replenishment": {"usage_days_by_type": {"Coffee": 21}},
        }
    )
    for at in (T0 + 37 * DAY, T0 + 110 * DAY):
        result = plan(store, pol, at)
        for action in result:
            if action.marketing:
                state = states[int(action.customer_id[1:])]
                assert state == "subscribed" or (soft and state in ("not_subscribed", "unknown"))
                assert not in_holdout(pol, P, S, action.customer_id)
        assert result.keys == plan(store, pol, at).keys
    store.close()


def test_priority_and_the_frequency_cap(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0, ptype="Coffee", lines=[("beans", 4, "9")])])
    pol = policy(replenishment={"usage_days_by_type": {"Coffee": 21}})
    at = T0 + 90 * DAY  # win-back stage 1 and the replenishment reminder (4 x 21 - 5) collide
    result = plan(store, pol, at)
    assert kinds(result) == ["replenishment"]
    [held] = result.held
    assert held.rule == "frequency_cap" and held.action.kind == "winback"
    flipped = policy(
        replenishment={"usage_days_by_type": {"Coffee": 21}},
        messaging={"priority": ["winback"]},
    )
    assert kinds(plan(store, flipped, at)) == ["winback"]
    assert sorted(
        kinds(
            plan(
                store,
                policy(
                    replenishment={"usage_days_by_type": {"Coffee": 21}},
                    frequency_cap={"email_hours": 0},
                ),
                at,
            )
        )
    ) == ["replenishment", "winback"]


def test_outbox_deliveries_count_against_the_cap(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0)])
    at = T0 + 90 * DAY
    assert kinds(plan(store, policy(), at)) == ["winback"]
    shop_id = store.shop_id(P, S)
    with store.transaction() as conn:
        for i in range(5):
            sent = int((at - dt.timedelta(days=2 + i)).timestamp() * 1_000_000)
            conn.execute(
                insert(outbox).values(
                    shop_id=shop_id,
                    idempotency_key=f"x{i}",
                    sink="email",
                    stage=0,
                    kind="other",
                    customer_id="c1",
                    marketing=1,
                    model="",
                    action={},
                    status="done",
                    attempts=1,
                    due_at=sent,
                    next_attempt_at=sent,
                    created_at=sent,
                    updated_at=sent,
                    finished_at=sent,
                )
            )
    result = plan(store, policy(), at)
    assert len(result) == 0 and "5 marketing emails in 30 days" in result.held[0].detail


def test_transactional_actions_pass_holdout_consent_and_quiet_hours(store: Store) -> None:
    store.upsert(
        [customer("c1", consent="unsubscribed"), order("o1", "c1", T0, lines=[("p", 1, "100")])]
    )
    pol = Policy.from_dict({"holdout": {"share": 0.99}, "quiet": {"hours": [0, 23]}})
    result = plan(store, pol, T0 + 2 * DAY)
    assert kinds(result) == ["loyalty_award"]


def test_quiet_hours_and_periods_hold_marketing(store: Store) -> None:
    store.upsert([customer("c1"), order("o1", "c1", T0)])
    at = T0 + 90 * DAY  # 12:00 UTC
    held = plan(store, policy(quiet={"hours": [11, 13]}), at)
    assert len(held) == 0 and held.held[0].rule == "quiet"
    assert len(plan(store, policy(quiet={"hours": [13, 11]}), at)) == 1  # 13:00-11:00 overnight
    day = at.date().isoformat()
    period = policy(quiet={"periods": [{"start": day, "end": day, "name": "sale"}]})
    assert plan(store, period, at).held[0].detail.startswith("quiet period (sale)")


def test_holdout_is_stable_and_near_its_share() -> None:
    pol = Policy()
    members = [in_holdout(pol, P, S, str(i)) for i in range(4000)]
    assert 0.08 < sum(members) / 4000 < 0.12
    assert members == [in_holdout(pol, P, S, str(i)) for i in range(4000)]


def test_bad_input_gives_notes_or_clear_errors(store: Store) -> None:
    assert plan(store, policy(), END).notes == ("the store holds no shop: nothing to plan",)
    store.upsert([customer("c1")])
    empty = plan(store, policy(), END)
    assert len(empty) == 0 and "no customer orders" in empty.notes[0]
    store.upsert(
        [order("today", "c1", END - dt.timedelta(hours=1)), order("later", "c1", END + DAY)]
    )
    result = plan(store, policy(), END)
    assert len(result) == 0 and any("1 order(s) placed after as_of" in n for n in result.notes)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(store, policy(), dt.datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="as_of is required"):
        plan(store, policy())
    with pytest.raises(PolicyError, match="max_emails"):
        Policy.from_dict({"frequency_cap": {"max_emails": 0}})
    with pytest.raises(PolicyError, match="quiet"):
        Policy.from_dict({"quiet": {"hours": [8, 8]}})
    assert plan_customer(store, policy(), END, P, S, "nobody").keys == []


def test_planning_an_unknown_shop_writes_nothing(store: Store) -> None:
    result = plan(store, policy(), T0, platform=P, shop="unknown.example")
    assert len(result) == 0
    assert store.shops() == []
    assert len(plan_customer(store, policy(), T0, P, "unknown.example", "1")) == 0
    assert store.shops() == []


def _rhythm_shop(gap_days: int) -> list[Any]:
    """Two repeat buyers whose second order came ``gap_days`` after the first, and a one-time
    buyer whose order (the newest of the shop) was 61 days before T0."""
    records: list[Any] = [customer("r1"), customer("r2"), customer("solo")]
    for cid in ("r1", "r2"):
        first = T0 - 700 * DAY
        records += [order(f"{cid}-a", cid, first), order(f"{cid}-b", cid, first + gap_days * DAY)]
    return [*records, order("solo-1", "solo", T0 - 61 * DAY)]


def test_a_store_at_the_address_of_a_closed_one_gets_its_own_shop_statistics(
    tmp_path: Path,
) -> None:
    """The shop-wide statistics were cached by ``id(store)``: CPython gives a new object the
    address of one just freed, so a store opened where a closed one lived (same URL, the same
    newest order) was handed the closed store's statistics."""
    rules = policy(winback={"min_repeat_customers": 2, "alive_threshold": 0})
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    for _ in range(20):
        (tmp_path / "shop.db").unlink(missing_ok=True)
        old = Store(url)
        old.upsert(_rhythm_shop(gap_days=10))  # one-time buyers lapse after 60 days
        assert kinds(plan_customer(old, rules, T0, P, S, "solo")) == ["winback"]
        address, kept = id(old), vars(old)  # its parts outlive it: the object's slot is freed last
        old.close()
        del old
        (tmp_path / "shop.db").unlink()
        new = Store(url)
        if id(new) == address:
            break
        new.close()
    else:
        pytest.fail("CPython did not reuse the address: the case this test is about never arose")
    del kept
    control = Store(f"sqlite:///{tmp_path / 'control.db'}")  # what this data plans alone
    control.upsert(_rhythm_shop(gap_days=200))  # one-time buyers lapse after 300 days
    assert kinds(plan_customer(control, rules, T0, P, S, "solo")) == []
    control.close()
    new.upsert(_rhythm_shop(gap_days=200))
    assert kinds(plan(new, rules, T0), "solo") == []
    assert kinds(plan_customer(new, rules, T0, P, S, "solo")) == []
    new.close()


@pytest.mark.parametrize("copy_above", [0, 10**9])
def test_held_rows_build_the_held_candidates_actions(
    generated: Store, copy_above: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held actions kept as columns (issue 18), copied out of the candidates or not, build
    what the candidates would have built at once, in the same order, with the same rule and
    detail."""
    frames = load(generated, P, S, AS_OF)
    policy_ = MANY.model_copy(
        update={"messaging": MANY.messaging.model_copy(update={"marketing": {"winback": True}})}
    )
    drafted = planner.draft(frames, policy_, AS_OF)
    found = [c for c in drafted.found if c.frame.height]
    _, rows = planner._split(planner._decide(found, frames, policy_, AS_OF, drafted.paid))
    overrides = policy_.messaging.marketing
    eager = [
        planner.Held(a, r, d)
        for a, r, d in zip(
            planner._build(dict(enumerate(found)), rows, overrides),
            rows["rule"].to_list(),
            rows["detail"].to_list(),
            strict=True,
        )
    ]
    monkeypatch.setattr(planner, "_COPY_ABOVE", copy_above)
    held = planner._held(found, rows, overrides)
    assert len(held) == len(eager) and len({h.action.kind for h in eager}) > 2
    assert held.counts() == dict(sorted(Counter(h.rule for h in eager).items()))
    assert held.customers == tuple(h.action.customer_id for h in eager)
    assert list(held) == eager and held.rules == tuple(h.rule for h in eager)


def test_held_rows_read_from_two_threads_are_built_once() -> None:
    """A plan's held actions read from a second thread while the first builds them: one
    build (at 1M held, a second one doubles the peak), and both threads get them."""
    calls: list[str] = []
    second = threading.Event()

    def make() -> list[Any]:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:  # the first build waits while the other thread reads
            second.wait(0.1)
        else:
            second.set()
        return []

    held = HeldRows(make=make)
    got: list[Any] = []
    other = threading.Thread(target=lambda: got.append(list(held)), name="other")
    first = threading.Thread(target=lambda: got.append(list(held)), name="first")
    first.start()
    while not calls:  # the first build has begun
        threading.Event().wait(0.001)
    other.start()
    first.join()
    other.join()
    assert len(calls) == 1 and got == [[], []]
