"""A plan's dry run derives only the customers who can have a loyalty notice
(:func:`shopsync.core.loyalty_window.may_act`: a payment, a bonus or a birthday in the notice
window, or a moment that can be the last activity of points expiring with a warning due): its
actions are still exactly the rules' (which derive every customer), over random shops, as_of
drawn at the edges of those windows, and any lookback and warning days."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shopsync.core.loyalty import Bonus
from shopsync.core.loyalty_derivations import column_inputs
from shopsync.core.loyalty_records import DAY, UNIT, add_months
from shopsync.core.loyalty_shop import LoyaltyTables, earns_needed
from shopsync.core.loyalty_window import may_act
from shopsync.core.policy import Policy
from tests.core.test_loyalty_columns_oracle import (
    EXAMPLES,
    HOUR,
    ORDER_SCHEMA,
    T0,
    _derive,
    moments,
    policies,
    shops,
)

_NO_REFUNDS = pl.DataFrame(
    schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64, "amount": pl.Int64}
)
_ONE = pl.DataFrame(
    {"id": ["c"], "birthday": [None], "updated_at": [T0], "email": ["c@example.com"]},
    schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
)


def _birthdays(inputs: list[Any]) -> list[int]:
    """Each birthday input's day at midnight UTC in the years the shops span."""
    found = []
    for r in inputs:
        if r.kind == "birthday":
            month, day = int(r.data["birthday"][5:7]), int(r.data["birthday"][8:10])
            for year in range(2023, 2027):
                try:
                    moment = dt.datetime(year, month, day, tzinfo=dt.timezone.utc)
                except ValueError:
                    moment = dt.datetime(year, month, 28, tzinfo=dt.timezone.utc)
                found.append(int(moment.timestamp()) * 1_000_000)
    return found


@settings(max_examples=max(60, EXAMPLES), deadline=None)
@given(
    shop=shops(),
    policy=policies(),
    lookback=st.sampled_from([0, 0, 1, 7, 45, 400]),
    warn=st.sampled_from([[30, 7], [400, 1], [400, 1], [0], [], [60, 3]]),
    data=st.data(),
)
def test_a_dry_run_of_the_customers_who_can_act_has_the_rules_actions(
    shop: tuple[LoyaltyTables, list[Any]],
    policy: Policy,
    lookback: int,
    warn: list[int],
    data: st.DataObject,
) -> None:
    tables, inputs = shop
    raw = policy.model_dump(mode="json")
    raw["loyalty"]["expiry"]["warn_days_before"] = warn
    raw["loyalty"]["expiry"]["inactivity_months"] = data.draw(st.sampled_from([None, 1, 2, 12]))
    policy = Policy.from_dict(raw)
    months = policy.loyalty.expiry.inactivity_months
    # moments an action can hang on: payments (the hour after: paid later, or by status),
    # the inputs' and the birthdays', each at the edges of the lookback window, and as a
    # customer's last activity (their latest moment, most often) at the edges of its
    # expiry's warnings
    mine: dict[str, list[int]] = {}
    for oid, t in tables.orders.select("customer_id", "created_at").iter_rows():
        mine.setdefault(oid, []).extend(t + h * HOUR for h in (0, 1, 5))
    for r in inputs:
        mine.setdefault(r.customer_id, []).extend(
            [r.occurred_at, *_birthdays([r])] if r.kind == "birthday" else [r.occurred_at]
        )
    anchors = sorted({t for ts in mine.values() for t in ts}) or [T0]
    lasts = [max(ts) for ts in mine.values()] or [T0]
    back = [0, 1, lookback * DAY - 1, lookback * DAY]
    edges = st.sampled_from(anchors).flatmap(lambda t: st.sampled_from(back).map(lambda d: t + d))
    if months:
        before = [w * DAY + e for w in [*warn, 0] for e in (0, 1, -1, -DAY // 2)]
        edges |= st.sampled_from(lasts + anchors[-3:]).flatmap(
            lambda t: st.sampled_from(before).map(lambda d: add_months(t, months) - d)
        )
        edges |= st.sampled_from(lasts).flatmap(
            lambda t: st.sampled_from(before).map(lambda d: add_months(t, months) - d)
        )
    at = data.draw(edges | moments)
    back = {"lookback": dt.timedelta(days=lookback)}
    _, rules = _derive(tables, inputs, policy, at, "rules", **back)
    _, alone = _derive(tables, inputs, policy, at, "columns", actions_only=True, **back)
    for *_, actions in rules:
        for action in actions:
            event(type(action).__name__)
    assert [(c, a) for c, _, a in alone if a] == [(c, a) for c, _, a in rules if a]
    # the ledger's earns of the customers earns_needed names are all it reads: points held
    # under another earn rule (the shops draw them) change the actions of any other left out
    needed = earns_needed(tables, inputs, policy, at, currency="USD", **back)
    earned = tables.earned
    assert earned is not None
    if needed is None:  # the rules derive the whole shop: every earn is read
        event("every earn needed")
        return
    some = dataclasses.replace(
        tables, earned=earned.filter(pl.col("customer_id").is_in(needed.implode()))
    )
    _, read = _derive(some, inputs, policy, at, "columns", actions_only=True, **back)
    assert [(c, a) for c, _, a in read if a] == [(c, a) for c, _, a in rules if a]
    # ... and deriving those customers, found once, instead of finding who may act again
    _, found = _derive(
        some, inputs, policy, at, "columns", actions_only=True, acting=needed, **back
    )
    assert [(c, a) for c, _, a in found if a] == [(c, a) for c, _, a in rules if a]


def test_a_customer_with_nothing_near_as_of_is_not_derived() -> None:
    at = add_months(T0, 30)
    orders = pl.DataFrame(
        [
            # paid two years before as_of: its points expired long ago, nothing is due
            {"id": "o1", "customer_id": "old", "created_at": T0, "paid_at": T0},
            {"id": "o2", "customer_id": "new", "created_at": at - DAY, "paid_at": at - DAY},
            # last active 12 months minus 10 days ago: the 30-day warning is due
            {"id": "o3", "customer_id": "lapsing", "created_at": 0, "paid_at": 0},
        ],
        schema=ORDER_SCHEMA,
    ).with_columns(
        pl.when(pl.col("id") == "o3")
        .then(pl.lit(add_months(at, -12) + 10 * DAY))
        .otherwise(pl.col("paid_at"))
        .alias("paid_at")
    )
    settings = Policy.from_dict({"loyalty": {"enabled": True}}).loyalty
    found = may_act(orders, column_inputs([], {}), settings, at - 7 * DAY, at)
    assert sorted(found.to_list()) == ["lapsing", "new"]
    settings = settings.model_copy(
        update={"expiry": settings.expiry.model_copy(update={"warn_days_before": ()})}
    )
    assert may_act(orders, column_inputs([], {}), settings, at - 7 * DAY, at).to_list() == ["new"]


def test_a_birthday_or_a_bonus_in_the_window_is_one_to_derive() -> None:
    at = int(dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
    rows = [
        SimpleNamespace(kind="birthday", key=f"b{n}", customer_id=c, occurred_at=0, data=d)
        for n, (c, d) in enumerate(
            [
                ("leap", {"birthday": "1992-02-29"}),  # on the 28th this year: in the window
                ("today", {"birthday": "1990-03-01"}),
                ("spring", {"birthday": "1990-04-20"}),
            ]
        )
    ]
    bonus = Bonus("k", at - DAY, 50, "referral", None)
    old = Bonus("k2", at - 100 * DAY, 50, "referral", None)
    inputs = column_inputs(rows, {"friend": [bonus], "earlier": [old]})
    settings = Policy.from_dict({"loyalty": {"enabled": True}}).loyalty
    settings = settings.model_copy(
        update={"expiry": settings.expiry.model_copy(update={"inactivity_months": None})}
    )
    orders = pl.DataFrame(schema=ORDER_SCHEMA)
    found = may_act(orders, inputs, settings, at - 7 * DAY, at)
    assert sorted(found.to_list()) == ["friend", "leap", "today"]


@pytest.mark.parametrize(
    ("before_expiry", "warned"),
    [(30 * DAY, True), (30 * DAY + 1, False), (1, True), (0, False), (DAY, True)],
)
def test_the_expiry_span_ends_where_the_warnings_do(before_expiry: int, warned: bool) -> None:
    paid = T0 + 40 * DAY  # 20 February 2023: a year later is 365 days
    orders = pl.DataFrame(
        [{"id": "o1", "customer_id": "c", "created_at": paid, "paid_at": paid}],
        schema=ORDER_SCHEMA,
    ).with_columns(pl.lit("USD").alias("currency"), pl.lit(100 * UNIT).alias("total"))
    orders = orders.with_columns(
        pl.col("total").alias("subtotal"), pl.lit(0).alias("total_shipping")
    )
    at = add_months(paid, 12) - before_expiry
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"enabled": True}})
    found = may_act(orders, column_inputs([], {}), policy.loyalty, at - 7 * DAY, at)
    assert found.to_list() == (["c"] if warned else [])
    tables = LoyaltyTables(orders=orders, refunds=_NO_REFUNDS, customers=_ONE)
    _, rules = _derive(tables, [], policy, at, "rules")
    assert {type(a).__name__ for *_, actions in rules for a in actions} == (
        {"PointsExpiryWarning"} if warned else set()
    )


@pytest.mark.parametrize(
    "expiry", [{"warn_days_before": [3_000_000, 7]}, {"inactivity_months": 30_000}]
)
def test_warnings_or_inactivity_beyond_the_calendar_still_derive(expiry: dict[str, Any]) -> None:
    """The policy bounds neither: the birthdays' span stops at as_of (a bonus is never dated
    later) and at the calendar's first day, the dry run derives what the full run does."""
    order = {"id": "o1", "customer_id": "c", "created_at": T0, "paid_at": T0, "currency": "USD"}
    order |= {"total": 100 * UNIT, "subtotal": 100 * UNIT, "total_shipping": 0}
    orders = pl.DataFrame([order], schema=ORDER_SCHEMA)
    tables = LoyaltyTables(orders=orders, refunds=_NO_REFUNDS, customers=_ONE)
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"expiry": expiry}})
    _, every = _derive(tables, [], policy, T0 + DAY, "columns", all_entries=False)
    _, alone = _derive(tables, [], policy, T0 + DAY, "columns", actions_only=True)
    assert [(c, a) for c, _, a in alone if a] == [(c, a) for c, _, a in every if a]
    assert [c for c, _, a in every if a] == ["c"]


def _old_and_friends(at: int) -> pl.DataFrame:
    """c0's order long before ``at``, and c4's (c0's friend) the day before."""
    return pl.DataFrame(
        [
            {"id": "o0", "customer_id": "c0", "created_at": T0, "paid_at": T0},
            {"id": "o1", "customer_id": "c4", "created_at": at - DAY, "paid_at": at - DAY},
        ],
        schema=ORDER_SCHEMA,
    ).with_columns(
        pl.lit("paid").alias("financial_status"),
        pl.lit("USD").alias("currency"),
        pl.lit(100 * UNIT, pl.Int64).alias("total"),
        pl.lit(100 * UNIT, pl.Int64).alias("subtotal"),
        pl.lit(0, pl.Int64).alias("total_shipping"),
    )


def test_an_advocate_rewarded_in_the_window_has_their_earns_read() -> None:
    """c0 has nothing near as_of but the bonus their friend's order earns them: their points,
    held under another earn rule, are among the earns a plan reads (the bonus is judged after
    the read, so every party to a referral is)."""
    at = T0 + 300 * DAY
    orders = _old_and_friends(at)
    customers = pl.DataFrame(
        {"id": ["c0", "c4"], "birthday": [None, None], "updated_at": [T0, T0]}
        | {"email": ["c0@example.com", "c4@example.com"]},
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
    )
    earned = pl.DataFrame(
        {"customer_id": ["c0"], "order_id": ["o0"], "points": [4321], "pending": [False]}
    )
    tables = LoyaltyTables(orders=orders, refunds=_NO_REFUNDS, customers=customers, earned=earned)
    referral = SimpleNamespace(
        kind="referral", key="ref", customer_id="c0", occurred_at=T0, data={"friend_id": "c4"}
    )
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"earn": {"pending_days": 0}}})
    needed = earns_needed(tables, [referral], policy, at)
    assert needed is not None and "c0" in needed.to_list()
    assert "c0" not in may_act(orders, column_inputs([], {}), policy.loyalty, at - 7 * DAY, at)
    _, rules = _derive(tables, [referral], policy, at, "rules")
    some = dataclasses.replace(
        tables, earned=earned.filter(pl.col("customer_id").is_in(needed.implode()))
    )
    _, read = _derive(some, [referral], policy, at, "columns", actions_only=True)
    advocate = [a for c, _, a in rules if c == "c0" and a]
    assert advocate  # the bonus's notice
    assert [a for c, _, a in read if c == "c0"] == advocate


def test_some_customers_earns_are_theirs_alone() -> None:
    """Deriving some customers (an incremental dry run), derive_shop reads no one else's
    earns: not those of their referral's other party, nor of another customer redeeming
    (at scale, a shop's referral parties and redeemers are thousands)."""
    at = T0 + 300 * DAY
    orders = _old_and_friends(at)
    customers = pl.DataFrame(
        {"id": ["c0", "c4", "c9"], "birthday": [None] * 3, "updated_at": [T0] * 3},
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64},
    ).with_columns(pl.format("{}@example.com", "id").alias("email"))
    tables = LoyaltyTables(orders=orders, refunds=_NO_REFUNDS, customers=customers)
    inputs = [
        SimpleNamespace(
            kind="referral", key="ref", customer_id="c0", occurred_at=T0, data={"friend_id": "c4"}
        ),
        SimpleNamespace(kind="redeem", key="r9", customer_id="c9", occurred_at=T0, data={}),
    ]
    policy = Policy.from_dict({"currency": "USD", "loyalty": {"earn": {"pending_days": 0}}})
    needed = earns_needed(tables, inputs, policy, at, customer_ids=["c4"])
    assert needed is not None and needed.to_list() == ["c4"]
    every = earns_needed(tables, inputs, policy, at)
    assert every is not None and sorted(every) == ["c0", "c4", "c9"]


_LATER: dict[
    str, dict[str, Any]
] = {  # o2, 40 days after o1, as each kind of payment that earns no points
    "foreign": {"currency": "EUR"},
    "worth nothing": {"subtotal": 0},
    "not a purchase": {"total": 0},
    "cancelled before payment": {"cancelled_at": -1},
    "unpaid": {"paid_at": None, "financial_status": "pending"},
    "paid after as_of": {"paid_at": -1},
    "rounded to nothing": {"subtotal": UNIT // 4, "total": UNIT // 4},
    "rounded to nothing in its tier": {"subtotal": UNIT, "total": UNIT},
    # its shipping (not counted) would earn: may_act must value o2 as the rule does
    "its shipping uncounted": {"subtotal": UNIT // 4, "total_shipping": 99 * UNIT},
    # a tier above 1 the customer never reached would round o2 up to a point
    "rounded to nothing below a richer tier": {"subtotal": 3 * UNIT // 10, "total": UNIT},
}
_TIERS = {
    "rounded to nothing in its tier": [{"name": "A", "threshold": 0, "multiplier": "0.4"}],
    "rounded to nothing below a richer tier": [
        {"name": "Gold", "threshold": 10_000, "multiplier": "2"}
    ],
}
_SURE: dict[
    str, dict[str, Any]
] = {  # o2 as each kind of payment that earns all the same: an activity after o1
    "cancelled after payment": {"cancelled_at": HOUR},
    "refunded in full": {},
    "paid by its status, no paid_at": {"paid_at": None, "processed_at": 0},
    "pending its return window": {},
}


def _o1_and_o2(
    o2_is: dict[str, Any], tiers: list[dict[str, Any]], pending_days: int = 0
) -> tuple[LoyaltyTables, Policy, int]:
    """c0's o1, whose points expire 10 days after as_of (its 30-day warning is due) unless
    o2, 40 days later (it expires 50 days after as_of: no warning due), is an activity."""
    at = add_months(T0, 30)
    first = add_months(at, -12) + 10 * DAY
    second = first + 40 * DAY
    row = {
        "customer_id": "c0",
        "processed_at": None,
        "cancelled_at": None,
        "financial_status": "paid",
        "currency": "USD",
        "total": 100 * UNIT,
        "subtotal": 100 * UNIT,
        "total_shipping": 0,
    }
    o2 = {**row, "id": "o2", "created_at": second - DAY, "paid_at": second, **o2_is}
    if o2["cancelled_at"] == -1:
        o2["cancelled_at"] = second - HOUR
    elif o2["cancelled_at"] is not None:  # that long after payment
        o2["cancelled_at"] += second
    if o2["paid_at"] == -1:
        o2["paid_at"] = at + HOUR
    if o2["processed_at"] == 0:
        o2["processed_at"] = second
    orders = [{**row, "id": "o1", "created_at": first, "paid_at": first}, o2]
    tables = LoyaltyTables(
        orders=pl.DataFrame(orders, schema=ORDER_SCHEMA),
        refunds=_NO_REFUNDS,
        customers=_ONE.with_columns(pl.lit("c0").alias("id")),
    )
    policy = Policy.from_dict(
        {
            "currency": "USD",
            "loyalty": {
                "earn": {"pending_days": pending_days, "points_per_unit": 1},
                "tiers": {"tiers": tiers},
            },
        }
    )
    return tables, policy, at


@pytest.mark.parametrize("later", [None, *_LATER])
def test_only_a_payment_that_surely_earns_makes_an_earlier_one_not_the_last(
    later: str | None,
) -> None:
    """o1's warning is due unless o2, later, earns: a customer whose o2 earns nothing is
    still one to derive."""
    tables, policy, at = _o1_and_o2(_LATER.get(later or "", {}), _TIERS.get(later or "", []))
    found = may_act(
        tables.orders, column_inputs([], {}), policy.loyalty, at - 7 * DAY, at, currency="USD"
    )
    _, rules = _derive(tables, [], policy, at, "rules")
    _, alone = _derive(tables, [], policy, at, "columns", actions_only=True)
    warned = [type(a).__name__ for _, _, actions in rules for a in actions]
    assert found.to_list() == ([] if later is None else ["c0"])
    assert warned == ([] if later is None else ["PointsExpiryWarning"])
    assert [(c, a) for c, _, a in alone if a] == [(c, a) for c, _, a in rules if a]


@pytest.mark.parametrize("later", _SURE)
def test_a_payment_that_earns_is_an_activity_whatever_befalls_it_after(later: str) -> None:
    """o2 earns (a cancellation or a full refund after payment claws its points back, a
    paid status dates it without paid_at, its points pending in the return window): o1 is
    not the last activity, c0 has no notice and is not derived."""
    tables, policy, at = _o1_and_o2(_SURE[later], [], 14 if "pending" in later else 0)
    if "refunded" in later:
        second = tables.orders["paid_at"][1]
        refund = {"order_id": "o2", "id": "r1", "created_at": second + DAY, "amount": 100 * UNIT}
        tables = dataclasses.replace(
            tables, refunds=pl.DataFrame([refund], schema=_NO_REFUNDS.schema)
        )
    found = may_act(
        tables.orders, column_inputs([], {}), policy.loyalty, at - 7 * DAY, at, currency="USD"
    )
    _, rules = _derive(tables, [], policy, at, "rules")
    _, alone = _derive(tables, [], policy, at, "columns", actions_only=True)
    assert [a for _, _, actions in rules for a in actions] == []
    assert [a for _, _, actions in alone for a in actions] == []
    assert found.to_list() == []
