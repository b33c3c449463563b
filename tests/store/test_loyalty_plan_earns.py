"""A plan's loyalty dry run reads the earns of the customers who can act alone
(:func:`shopsync.core.loyalty_shop.earns_needed`): through the real store, its actions are
those of a dry run deriving every customer from every earn."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from shopsync import loyalty
from shopsync.core.policy import Policy
from shopsync.store import Store, ledger, ledger_mark
from shopsync.testing.generator import generate_shop

P, S = "shopify", "acme"
END = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
NARROW = Policy.from_dict({"currency": "USD"})
WIDE = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {
            "earn": {"include_shipping": True, "points_per_unit": 10, "pending_days": 3},
            "expiry": {"inactivity_months": 2, "warn_days_before": [30, 7]},
        },
    }
)
"""Another earn rule than the ledger's (its points are facts), and expiry warnings."""


def _keys(update: loyalty.LedgerUpdate) -> list[tuple[str, str, str]]:
    return sorted((a.customer_id, a.idempotency_key, repr(a)) for a in update.actions)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_plans_actions_from_the_earns_it_reads_are_those_of_every_earn(
    store: Store, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The ledger synced under one earn rule, planned under another (held points decide the
    awards), with referrals: the earns joined to the ids give every earn's actions, each
    action whole (a read missing half the ids' earns changes them)."""
    state = generate_shop(
        platform=P, shop=S, seed=seed, customers=60, orders=300, end=END, years=0.5
    )
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    loyalty.update_ledger(store, P, S, as_of=END, policy=NARROW)  # its points: facts
    rng = random.Random(seed)
    people = sorted(state.customers.values(), key=lambda c: c.id)
    for n in range(8):  # referrals, some to a friend known by email alone
        advocate, friend = rng.sample(people, 2)
        by_email = {"friend_email": friend.email} if friend.email and n % 2 else {}
        loyalty.record_referral(
            store,
            P,
            S,
            advocate_id=advocate.id,
            at=END - rng.randint(30, 120) * DAY,
            **(by_email or {"friend_id": friend.id}),
        )
    at = END + 2 * DAY
    every = loyalty.update_ledger(store, P, S, as_of=at, policy=WIDE, dry_run=True)
    monkeypatch.setattr(ledger, "_FEW", 0)  # the earns joined to the ids of those who act
    monkeypatch.setattr(ledger, "_SHARE", 1)
    joined = loyalty.update_ledger(
        store, P, S, as_of=at, policy=WIDE, dry_run=True, actions_only=True
    )
    assert _keys(joined) == _keys(every)
    assert every.actions  # the shops draw some
    # some customers' (an incremental plan's), the referrals' other parties outside them
    some = [c.id for c in rng.sample(people, 20)]
    mine = loyalty.update_ledger(
        store, P, S, as_of=at, policy=WIDE, dry_run=True, actions_only=True, customer_ids=some
    )
    assert _keys(mine) == [k for k in _keys(every) if k[0] in some]


def test_some_customers_dry_run_reads_their_earns_alone_whoever_derives_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy the columns do not cover (the rules derive the shop): a dry run of some
    customers still reads their earns alone, not the whole shop's."""
    state = generate_shop(platform=P, shop=S, seed=1, customers=10, orders=30, end=END, years=0.5)
    store.upsert([*state.customers.values(), *state.orders.values()])
    asked: list[list[str] | None] = []
    read = ledger.earned_points

    def spy(store: Store, shop_id: int, ids: list[str] | None = None) -> object:
        asked.append(None if ids is None else sorted(ids))
        return read(store, shop_id, ids)

    monkeypatch.setattr(ledger, "earned_points", spy)
    some = sorted(state.customers)[:2]
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"category_bonus": {"points": 50}}})
    for actions_only in (False, True):
        loyalty.update_ledger(
            store,
            P,
            S,
            as_of=END,
            policy=policy,
            dry_run=True,
            actions_only=actions_only,
            customer_ids=some,
        )
    assert asked == [some, some]


def test_a_dry_run_reads_nothing_a_writer_checks_before_writing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run writes nothing: it reads neither the newest ledger entry nor the version of
    the loyalty inputs (what a writer checks in its write transaction); a writer reads both."""
    state = generate_shop(platform=P, shop=S, seed=4, customers=20, orders=80, end=END, years=0.5)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])

    def refused(*_: object) -> None:
        raise AssertionError("read by a dry run")

    for module, name in ((ledger, "newest_entry"), (ledger_mark, "inputs_version")):
        with monkeypatch.context() as patched:
            patched.setattr(module, name, refused)
            for actions_only in (False, True):
                update = loyalty.update_ledger(
                    store, P, S, as_of=END, policy=WIDE, dry_run=True, actions_only=actions_only
                )
                assert update.actions and not update.added
            with pytest.raises(AssertionError, match="read by a dry run"):
                loyalty.update_ledger(store, P, S, as_of=END, policy=WIDE)
