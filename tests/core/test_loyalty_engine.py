"""Which derivation a ledger update used is on its result: the columns, or the per-customer
rules with the reason (a policy option the columns do not cover) and the customers they left
to the rules; no silent switch between the two."""

from __future__ import annotations

import datetime as dt

from shopsync import loyalty
from shopsync.core.policy import Policy
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
P, S = "shopify", "acme"


def _shop(store: Store) -> Store:
    state = generate_shop(platform=P, shop=S, seed=3, customers=12, orders=40, end=END)
    store.upsert([*state.customers.values(), *state.orders.values()])
    return store


def test_a_covered_policy_is_derived_in_columns(store: Store) -> None:
    policy = Policy.from_dict({"currency": "USD"})
    done = loyalty.update_ledger(_shop(store), P, S, as_of=END, policy=policy, dry_run=True)
    assert done.derived > 0
    assert done.rules_because is None
    assert done.by_rules == 0


def test_an_uncovered_option_says_the_rules_derived_it(store: Store) -> None:
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"category_bonus": {"points": 40}}})
    done = loyalty.update_ledger(_shop(store), P, S, as_of=END, policy=policy, dry_run=True)
    assert done.derived > 0
    assert done.rules_because == "loyalty.category_bonus"


def test_a_customer_with_a_redemption_is_counted_as_derived_by_the_rules(store: Store) -> None:
    policy = Policy.from_dict({"currency": "USD"})
    _shop(store)
    first = loyalty.update_ledger(store, P, S, as_of=END, policy=policy)
    rich = max(first.tiers, key=lambda c: loyalty.balance(store, (P, S, c)).approved)
    assert loyalty.balance(store, (P, S, rich)).approved >= 500
    loyalty.redeem(store, (P, S, rich), 500, as_of=END, policy=policy)
    done = loyalty.update_ledger(store, P, S, as_of=END, policy=policy, dry_run=True)
    assert done.rules_because is None
    assert done.by_rules == 1
