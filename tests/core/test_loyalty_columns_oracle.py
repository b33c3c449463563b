"""The columnar loyalty derivation (:mod:`shopsync.core.loyalty_columns`) derives exactly
what the per-customer rules derive (:func:`shopsync.core.loyalty.derive`, kept as the oracle):
the same entries in the same order, notes, balances, tiers, expiry and next change, and so
the same actions, over random shops and every policy option the columns cover. A policy they
do not cover goes to the rules, and says so.

The default run tries ``SHOPSYNC_LOYALTY_ORACLE_EXAMPLES`` shops (60); set it higher (e.g.
2000) for a long run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shopsync._instants import to_micros
from shopsync.core import loyalty_derivations
from shopsync.core.loyalty_records import DAY, UNIT, add_months
from shopsync.core.loyalty_shop import LoyaltyTables, derive_shop
from shopsync.core.policy import Policy

T0 = to_micros(dt.datetime(2023, 1, 10, 9, 30, tzinfo=dt.timezone.utc))
EXAMPLES = int(os.environ.get("SHOPSYNC_LOYALTY_ORACLE_EXAMPLES", "60"))
HOUR = DAY // 24
CUSTOMERS = [f"c{i}" for i in range(5)]

_TIERS = [
    [],
    [
        {"name": "Bronze", "threshold": 0},
        {"name": "Silver", "threshold": 150, "multiplier": "1.25"},
    ],
    [
        {"name": "A", "threshold": 0, "multiplier": "1.5"},
        {"name": "B", "threshold": 60, "multiplier": "2"},
        {"name": "C", "threshold": 400, "multiplier": "3"},
    ],
    [{"name": "Only", "threshold": 0, "multiplier": "1.1"}],
    [{"name": "Entry", "threshold": 40}, {"name": "Top", "threshold": 300}],
]


ORDER_SCHEMA = {
    "id": pl.String,
    "customer_id": pl.String,
    "created_at": pl.Int64,
    "paid_at": pl.Int64,
    "processed_at": pl.Int64,
    "cancelled_at": pl.Int64,
    "financial_status": pl.String,
    "currency": pl.String,
    "total": pl.Int64,
    "subtotal": pl.Int64,
    "total_shipping": pl.Int64,
}
"""The orders table the loyalty derivation reads, as these tests build it."""


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    loyalty: dict[str, Any] = {
        "earn": {
            "pending_days": draw(st.sampled_from([0, 3, 14])),
            "points_per_unit": draw(st.sampled_from([1, 5, 7])),
            "include_shipping": draw(st.booleans()),
        },
        "expiry": {"inactivity_months": draw(st.sampled_from([None, 1, 2, 12]))},
        "tiers": {
            "tiers": draw(st.sampled_from(_TIERS)),
            "window": draw(st.sampled_from(["rolling_12_months", "calendar_year", "lifetime"])),
            "hold_months": 2,
        },
        "milestones": {"progress_within_percent": draw(st.sampled_from([0, 20, 50]))},
        "birthday": {
            "points": draw(st.sampled_from([0, 500])),
            "min_days_after_entry": draw(st.sampled_from([0, 30])),
            "cooldown_days": draw(st.sampled_from([0, 200, 365, 400])),
        },
        "referral": {"advocate_percent": 10, "friend_percent": 20},
    }
    uncovered = draw(st.sampled_from([None] * 6 + ["category", "milestone", "points"]))
    if uncovered == "category":
        loyalty["category_bonus"] = {"points": 40}
    elif uncovered == "milestone":
        loyalty["milestones"]["orders"] = [{"orders": 2, "points": 50}]
    elif uncovered == "points":
        loyalty["tiers"]["metric"] = "points"
    return Policy.from_dict({"currency": "USD", "loyalty": loyalty})


# hours apart, or on a grid of whole months: an expiry (months after an activity) and a tier
# review then fall on the very moment of other events, where the order of events decides
moments = st.integers(0, 1300 * 24).map(lambda h: T0 + h * HOUR) | st.integers(0, 42).map(
    lambda k: add_months(T0, k)
)


@st.composite
def shops(draw: st.DrawFn) -> tuple[LoyaltyTables, list[Any]]:
    orders: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    earned: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 14))):
        created = draw(moments)
        subtotal = draw(st.integers(-5, 200) | st.just(0)) * UNIT // 2
        total = subtotal + draw(st.integers(0, 20)) * UNIT
        paid = draw(st.sampled_from(["at", "at", "later", "none", "status"]))
        oid = f"o{n}"
        orders.append(
            {
                "id": oid,
                "customer_id": draw(st.sampled_from(CUSTOMERS)),
                "created_at": created,
                "paid_at": {"at": created, "later": created + 5 * HOUR}.get(paid),
                "processed_at": created + HOUR,
                "cancelled_at": draw(
                    st.none() | st.integers(-2, 40).map(lambda d, c=created: c + d * DAY)
                ),
                "financial_status": "paid" if paid == "status" else "pending",
                "currency": draw(st.sampled_from(["USD", "USD", "USD", "EUR"])),
                "total": total,
                "subtotal": subtotal,
                "total_shipping": draw(st.integers(0, 5)) * UNIT,
            }
        )
        # points the ledger already holds for the order (earned under another earn rule):
        # its own customer's, or another's (the order moved), or none
        owner = orders[-1]["customer_id"]
        other = draw(st.sampled_from([c for c in CUSTOMERS if c != owner]))
        holders = draw(st.sampled_from([(), (), (owner,), (owner,), (other,), (owner, other)]))
        for holder in holders:  # at most one earn per customer and order, as in the ledger
            earned.append(
                {
                    "customer_id": holder,
                    "order_id": oid,
                    "points": draw(st.integers(1, 1500) | st.sampled_from([0, 1, 2])),
                    "pending": draw(st.booleans()),  # under another return window too
                }
            )
        for r in range(draw(st.integers(0, 3))):
            refunds.append(
                {
                    "order_id": oid,
                    "id": f"r{n}.{r}",
                    "created_at": created + draw(st.integers(-1, 40 * 24)) * HOUR,
                    "amount": draw(st.integers(0, 60)) * UNIT // 2,
                }
            )
    inputs: list[Any] = []
    for n in range(draw(st.integers(0, 8))):
        customer = draw(st.sampled_from(CUSTOMERS))
        at = draw(moments)
        kind = draw(st.sampled_from(["birthday", "birthday", "adjust", "redeem", "referral"]))
        if kind == "birthday":
            month, day = draw(st.sampled_from([(2, 29), (1, 10), (6, 15), (12, 31), (3, 1)]))
            data: dict[str, Any] = {"birthday": f"1992-{month:02d}-{day:02d}"}
        elif kind == "adjust":
            data = {"points": draw(st.integers(-300, 300)), "reason": "support"}
        elif kind == "redeem":
            data = {"points": 500}
        else:
            data = {"friend_id": draw(st.sampled_from(CUSTOMERS))}
        inputs.append(
            SimpleNamespace(kind=kind, key=f"k{n}", customer_id=customer, occurred_at=at, data=data)
        )
    inputs.sort(key=lambda r: (r.occurred_at, r.key))
    refund_schema = {
        "order_id": pl.String,
        "id": pl.String,
        "created_at": pl.Int64,
        "amount": pl.Int64,
    }
    tables = LoyaltyTables(
        orders=pl.DataFrame(orders, schema=ORDER_SCHEMA),
        refunds=pl.DataFrame(refunds, schema=refund_schema),
        customers=pl.DataFrame(
            {
                "id": CUSTOMERS,
                "birthday": [None] * len(CUSTOMERS),
                "updated_at": [T0] * len(CUSTOMERS),
                "email": [f"{c}@example.com" for c in CUSTOMERS],
            },
            schema={
                "id": pl.String,
                "birthday": pl.String,
                "updated_at": pl.Int64,
                "email": pl.String,
            },
        ),
        earned=pl.DataFrame(
            earned,
            schema={
                "customer_id": pl.String,
                "order_id": pl.String,
                "points": pl.Int64,
                "pending": pl.Boolean,
            },
        ),
    )
    return tables, inputs


def _derive(
    tables: LoyaltyTables, inputs: list[Any], policy: Policy, at: int, engine: Any, **more: Any
) -> Any:
    found = derive_shop(
        tables,
        inputs,
        {},
        policy,
        at,
        currency="USD",
        platform="shopify",
        shop="acme",
        engine=engine,
        **more,
    )
    ledgers = [(c.customer_id, c.derivation, c.actions) for c in found.customers]
    return found, ledgers


@settings(max_examples=EXAMPLES, deadline=None)
@given(shop=shops(), policy=policies(), data=st.data())
def test_the_columns_derive_what_the_rules_derive(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, data: st.DataObject
) -> None:
    tables, inputs = shop
    # as_of anywhere, or exactly at / around the end of a return window or a payment
    paid = [t for t in tables.orders["created_at"].to_list()]
    pending = policy.loyalty.earn.pending_days * DAY
    edge = (
        st.sampled_from(paid).flatmap(
            lambda t: st.sampled_from([t - 1, t, t + pending - 1, t + pending, t + pending + 1])
        )
        if paid
        else moments
    )
    at = data.draw(moments | edge | st.integers(1300, 1800).map(lambda d: T0 + d * DAY))
    columns, derived = _derive(tables, inputs, policy, at, "columns")
    rules, oracle = _derive(tables, inputs, policy, at, "rules")
    assert derived == oracle
    by_rules = set(columns.by_rules or ()) if columns.rules_because is None else set(CUSTOMERS)
    for customer, derivation, _ in derived:
        if customer not in by_rules:
            for kind in {e.kind for e in derivation.entries}:
                event(f"columns derived a {kind} entry")
            if derivation.tier_changes:
                event("columns derived a tier change")
            if derivation.progress:
                event("columns derived a progress record")
            if any(e.detail.get("multiplier", "1") != "1" for e in derivation.entries):
                event("columns derived an earn above the base multiplier")
            if any("earlier earn rule" in e.reason for e in derivation.entries):
                event("columns derived an earn the ledger held")
    assert columns.referrals == rules.referrals
    if columns.rules_because is None:
        assert columns.by_rules is not None
        redeemers = {r.customer_id for r in inputs if r.kind == "redeem" and r.occurred_at <= at}
        assert redeemers <= set(columns.by_rules)  # the columns leave redemptions to the rules
    else:
        assert (
            policy.loyalty.category_bonus.points
            or policy.loyalty.milestones.orders
            or (policy.loyalty.tiers.metric == "points")
        )


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(shop=shops(), policy=policies(), at=moments)
def test_records_built_a_few_entries_at_a_time_are_the_same(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, at: int
) -> None:
    """The columns' entries become records in batches (memory); batch edges lose nothing."""
    tables, inputs = shop
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loyalty_derivations, "_BATCH", 2)
        _, derived = _derive(tables, inputs, policy, at, "columns")
    _, oracle = _derive(tables, inputs, policy, at, "rules")
    assert derived == oracle


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(shop=shops(), policy=policies(), at=moments, size=st.sampled_from([1, 2, 5]))
def test_the_block_size_does_not_change_the_ledger(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, at: int, size: int
) -> None:
    """Customers derived in blocks of a few orders (referral bonuses across blocks included)
    get the ledger of the shop derived in one block."""
    tables, inputs = shop
    whole, one = _derive(tables, inputs, policy, at, "columns")
    blocks, many = _derive(tables, inputs, policy, at, "columns", block_orders=size)
    assert many == one
    assert (blocks.referrals, blocks.by_rules) == (whole.referrals, whole.by_rules)


def test_a_referral_rewards_an_advocate_in_another_block() -> None:
    """The friend's order (in the last block) earns the advocate (in the first) a bonus."""
    orders = {
        "id": ["o1", "o2", "o3"],
        "customer_id": ["c4", "c2", "c4"],
        "created_at": [T0, T0 + DAY, T0 + 2 * DAY],
        "paid_at": [T0, T0 + DAY, T0 + 2 * DAY],
        "processed_at": [T0, T0 + DAY, T0 + 2 * DAY],
        "cancelled_at": [None, None, None],
        "financial_status": ["paid"] * 3,
        "currency": ["USD"] * 3,
        "total": [100 * UNIT, 50 * UNIT, 30 * UNIT],
        "subtotal": [100 * UNIT, 50 * UNIT, 30 * UNIT],
        "total_shipping": [0, 0, 0],
    }
    tables = LoyaltyTables(
        orders=pl.DataFrame(orders).cast({"cancelled_at": pl.Int64}),
        refunds=pl.DataFrame(
            schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64}
            | {"amount": pl.Int64}
        ),
        customers=pl.DataFrame(
            {
                "id": CUSTOMERS,
                "birthday": pl.Series([None] * len(CUSTOMERS), dtype=pl.String),
                "updated_at": [T0] * len(CUSTOMERS),
                "email": [f"{c}@example.com" for c in CUSTOMERS],
            }
        ),
    )
    referral = SimpleNamespace(
        kind="referral", key="ref", customer_id="c0", occurred_at=T0 - DAY, data={"friend_id": "c4"}
    )
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"earn": {"pending_days": 0}}})
    at = T0 + 30 * DAY
    _, one = _derive(tables, [referral], policy, at, "columns")
    _, blocks = _derive(tables, [referral], policy, at, "columns", block_orders=1)
    _, oracle = _derive(tables, [referral], policy, at, "rules")
    assert blocks == one == oracle
    advocate = dict((c, d) for c, d, _ in blocks)["c0"]
    assert [e.kind for e in advocate.entries] == ["bonus"]
    assert advocate.approved > 0


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(shop=shops(), policy=policies(), at=moments, size=st.sampled_from([1, 3, 10**6]))
def test_a_derivation_for_actions_alone_keeps_their_entries_and_counts_all(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, at: int, size: int
) -> None:
    """``all_entries=False`` (a dry run): the same actions, tiers and balances, each
    derivation holding the earns and bonuses of the action window, the count of them all."""
    tables, inputs = shop
    since = at - 7 * DAY
    for engine in ("columns", "rules"):
        found, _ = _derive(tables, inputs, policy, at, engine, block_orders=size)
        few, _ = _derive(tables, inputs, policy, at, engine, block_orders=size, all_entries=False)
        for full, kept in zip(found.customers, few.customers, strict=True):
            assert kept.actions == full.actions
            assert kept.entry_count == full.entry_count == len(full.derivation.entries)
            wanted = [
                e
                for e in full.derivation.entries
                if e.kind in ("earn", "bonus") and since < e.at <= at
            ]
            assert kept.derivation.entries == wanted
            assert kept.derivation == dataclasses.replace(full.derivation, entries=wanted)
