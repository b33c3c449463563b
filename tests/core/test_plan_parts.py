"""A whole-shop plan in customer partitions (issue 18, item 4.2) equals the plan of the whole
shop at once: actions, held actions, notes and their order, loyalty on with referrals whose
parties fall in different ranges, both engines; small parts forced by ``PART_ORDERS``."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from shopsync import planning_parts
from shopsync.core.policy import Policy
from shopsync.loyalty import record_referral
from shopsync.models import Customer
from shopsync.planning import plan
from shopsync.store import Store, facts, ledger
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import order
from tests.core.test_incremental_plan import POLICY, RUN, T0
from tests.pg_schema import own_schema, shared_url

P = "shopify"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
EXAMPLES = int(os.environ.get("SHOPSYNC_PARTS_EXAMPLES", "3"))
_STORES: dict[str, Store] = {}
_SCHEMAS = ExitStack()


@pytest.fixture(scope="module", autouse=True)
def _drop_stores() -> Iterator[None]:
    yield
    while _STORES:
        _STORES.popitem()[1].close()
    _SCHEMAS.close()


def _store(kind: str, tmp: pytest.TempPathFactory) -> Store:
    if kind not in _STORES:
        if kind == "sqlite":
            _STORES[kind] = Store(f"sqlite:///{Path(tmp.mktemp('parts')) / 'parts.db'}")
        else:
            base = shared_url()
            if not base:
                pytest.skip("SHOPSYNC_TEST_POSTGRES_URL not set")
            _STORES[kind] = Store(_SCHEMAS.enter_context(own_schema(base, "parts")))
    return _STORES[kind]


def _seen(planned: Any) -> tuple[Any, ...]:
    return (
        planned.actions,
        [(h.action, h.rule, h.detail) for h in planned.held],
        planned.notes,
        planned.shops,
    )


_count = iter(range(10**6))


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate])
# an advocate created after as_of (no customer row read): the whole derivation awards it
@example(seed=217, back=7, part=40, pairs=[(1, 42), (999999, 5570)], fixed=False)
@given(
    seed=st.integers(1, 1000),
    back=st.integers(0, 40),
    part=st.sampled_from([15, 40, 90]),
    pairs=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=4),
    fixed=st.booleans(),
)
def test_a_plan_in_parts_is_the_whole_plan(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    back: int,
    part: int,
    pairs: list[tuple[int, int]],
    fixed: bool,
) -> None:
    store = _store(kind, tmp_path_factory)
    shop = f"parts{RUN}-{next(_count)}.example"
    state = generate_shop(
        platform=P, shop=shop, seed=seed, customers=40, orders=160, end=T0, years=1.0
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    at = T0 - back * DAY  # some orders later than as_of: the note counts the shop's
    ids = sorted(c.id for c in store.iter(Customer, P, shop))
    model = next(iter(state.customers.values()))
    for i, (a, days) in enumerate(pairs):
        # a new friend (last in the id order, the advocate early), whose first order's
        # reward was approved hours before as_of: the advocate's award is noticed
        friend = f"z{i}"
        email = f"friend{i}@example.com"
        stranger = {"email": email, "first_name": f"F{i}", "default_address": None, "phone": None}
        paid = at - POLICY.loyalty.earn.pending_days * DAY - (1 + days % 20) * HOUR
        store.upsert(
            [
                model.model_copy(update={"id": friend, "created_at": paid - DAY, **stranger}),
                order(f"f{i}", friend, paid).model_copy(update={"shop": shop}),
            ]
        )
        record_referral(
            store,
            P,
            shop,
            advocate_id=ids[a % len(ids)],
            friend_id=None if i % 2 else friend,
            friend_email=email if i % 2 else None,
            at=paid - DAY,
            key=f"ref{i}",
        )
    with mock.patch.object(facts, "MIN_ORDERS", 0):
        facts.order_facts(store, store.shop_id(P, shop))
    policy: Policy = POLICY
    if fixed:  # the currency set, not counted
        policy = POLICY.model_copy(update={"currency": "USD"})
    awarded: set[str] = set()
    made: list[Any] = []
    real = planning_parts.plan_in_parts
    split, read = [], []
    parts_of, inputs_of = planning_parts._parts, ledger.input_rows

    def spy(*args: Any) -> Any:
        made.append(real(*args))
        return made[-1]

    def parts(*args: Any) -> list[set[str]]:
        split.append(parts_of(*args))
        return split[-1]

    def inputs(store: Store, shop_id: int, customer_ids: Any = None) -> list[Any]:
        read.append(customer_ids)
        return inputs_of(store, shop_id, customer_ids)

    # first the whole plan that stores the models and brings the ledger up to date (the plan
    # in parts, which writes nothing, is taken after it); then an order since: the ledger is
    # stale, and a plan that writes nothing says so, in parts too
    for update_ledger in (True, False):
        if not update_ledger:
            late = order("late", ids[seed % len(ids)], at - HOUR)
            store.upsert([late.model_copy(update={"shop": shop})])
        whole = plan(store, policy, at, platform=P, shop=shop, update_ledger=update_ledger)
        with (
            mock.patch.object(planning_parts, "PART_ORDERS", part),
            mock.patch.object(planning_parts, "plan_in_parts", spy),
            mock.patch.object(planning_parts, "_parts", parts),
            mock.patch.object(ledger, "input_rows", inputs),
        ):
            parted = plan(store, policy, at, platform=P, shop=shop, update_ledger=update_ledger)
        assert made.pop() is not None  # planned in parts indeed
        stale = [n for n in whole.notes if "points balances are not written back" in n]
        assert bool(stale) is not update_ledger
        assert _seen(parted) == _seen(whole)
        # each part's derivation reads the inputs of its customers and the referral parties'
        # (the first part) alone
        every = split.pop()
        assert len(every) > 1 and read
        for theirs in read:
            assert theirs is not None and any(set(theirs) <= every[0] | p for p in every)
        read.clear()
        advocates = {ids[a % len(ids)] for a, _ in pairs}
        awarded.update(a.customer_id for a in whole if a.kind == "loyalty_award")
    assert awarded & advocates  # the referrals' rewards are in the plans


def test_no_parts_merge_to_no_held_actions() -> None:
    """A shop over ``PART_ORDERS`` whose orders name no customer (guest checkouts alone)
    has no parts: their held actions merge to none, not to a concat error."""
    merged = planning_parts._merged([])
    assert len(merged) == 0 and merged.counts() == {} and list(merged) == []
