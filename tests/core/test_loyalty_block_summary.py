"""A whole shop derived a block at a time (``derive_shop(by_block=True)``, what
:func:`shopsync.loyalty.update_ledger` reads): each block's tiers, due moments, next changes,
entry counts and notes as columns, records only for the customers with an action or left to
the rules, and so the same tiers, moments, counts, notes and actions as the customers'
records (:func:`~shopsync.core.loyalty_blocks.loyalty_due` of each derivation)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core.loyalty_blocks import loyalty_due, notes_of, split_blocks
from shopsync.core.loyalty_records import DAY, UNIT
from shopsync.core.loyalty_shop import LoyaltyTables, derive_shop
from shopsync.core.policy import Policy
from tests.core.test_loyalty_blocks_edges import _customers, edgy_shops
from tests.core.test_loyalty_columns_oracle import EXAMPLES, T0, moments, policies

_ARGS: dict[str, Any] = {"currency": "USD", "platform": "shopify", "shop": "acme"}


def _by_customer(
    tables: LoyaltyTables, inputs: list[Any], policy: Policy, at: int, **more: Any
) -> Any:
    """What the customers' records say: per customer (tier, due, next change, entries),
    the notes and the actions in order, and the handed entry frames."""
    handed: list[pl.DataFrame] = []
    hand = handed.append if more.pop("handing") else None
    found = derive_shop(tables, inputs, {}, policy, at, on_entries=hand, **_ARGS, **more)
    rows, notes, actions, entries = [], [], [], []
    for one in found.customers:
        d = one.derivation
        rows.append(
            (one.customer_id, d.tier, loyalty_due(d, policy, at), d.next_change, one.entry_count)
        )
        notes += d.notes
        actions += one.actions
        entries += [] if one.entries_handed else d.entries
    return rows, notes, actions, handed, entries


def _by_block(
    tables: LoyaltyTables, inputs: list[Any], policy: Policy, at: int, **more: Any
) -> Any:
    handed: list[pl.DataFrame] = []
    hand = handed.append if more.pop("handing") else None
    found = derive_shop(
        tables, inputs, {}, policy, at, on_entries=hand, by_block=True, **_ARGS, **more
    )
    assert list(found.customers) == []
    rows, notes, actions, entries = [], [], [], []
    for block in found.blocks:
        rows += block.summary.rows()
        notes += notes_of(block.notes)
        for one in block.ledgers:
            actions += one.actions
            entries += [] if one.entries_handed else one.derivation.entries
    return rows, notes, actions, handed, entries


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(
    shop=edgy_shops(),
    policy=policies(),
    at=moments,
    size=st.sampled_from([1, 2, 3, 100]),
    warn=st.sampled_from([(30, 7), (), (400, 1)]),
    engine=st.sampled_from(["columns", "columns", "rules"]),
    mode=st.sampled_from(["write", "dry run", "records"]),
)
def test_blocks_say_what_the_customers_records_say(
    shop: tuple[LoyaltyTables, list[Any]],
    policy: Policy,
    at: int,
    size: int,
    warn: tuple[int, ...],
    engine: str,
    mode: str,
) -> None:
    """As a ledger writer derives (every entry, handed as frames), as a dry run does (the
    entries in the window), and with every entry read from the records (each customer of
    the columns then has one)."""
    tables, inputs = shop
    loyalty = policy.loyalty.model_copy(
        update={"expiry": policy.loyalty.expiry.model_copy(update={"warn_days_before": warn})}
    )
    policy = policy.model_copy(update={"loyalty": loyalty})
    handing = mode == "write"
    more = {"block_orders": size, "engine": engine, "all_entries": mode != "dry run"}
    rows, notes, actions, handed, entries = _by_block(
        tables, inputs, policy, at, handing=handing, **more
    )
    want_rows, want_notes, want_actions, want_handed, want_entries = _by_customer(
        tables, inputs, policy, at, handing=handing, **more
    )
    assert rows == want_rows
    assert notes == want_notes
    assert actions == want_actions
    assert entries == want_entries
    assert len(handed) == len(want_handed)
    for got, want in zip(handed, want_handed, strict=True):
        assert got.equals(want)


POLICY = Policy.from_dict(
    {
        "currency": "USD",
        "loyalty": {
            "earn": {"pending_days": 0},
            "expiry": {"inactivity_months": 2, "warn_days_before": [30, 7]},
            "tiers": {
                "tiers": [
                    {"name": "Bronze", "threshold": 0},
                    {"name": "Silver", "threshold": 150},
                ],
            },
        },
    }
)


def _tables() -> LoyaltyTables:
    """c0: 200 units paid at T0 (Silver, points expiring two months on); c1: 50 units paid
    at T0 + 40 days (Bronze); c2: 80 units at T0, refunded -5 (the rules derive c2); c3 and
    c6 in EUR (a note each, no points); c4: nothing; c5: 30 units at T0, all refunded the
    next day (no points left: no warning)."""
    at = [T0, T0 + 40 * DAY, T0, T0, T0, T0]
    units = [200, 50, 80, 10, 30, 10]
    orders = pl.DataFrame(
        {
            "id": ["o0", "o1", "o2", "o3", "o5", "o6"],
            "customer_id": ["c0", "c1", "c2", "c3", "c5", "c6"],
            "created_at": at,
            "paid_at": at,
            "processed_at": at,
            "cancelled_at": pl.Series([None] * 6, dtype=pl.Int64),
            "financial_status": ["paid"] * 6,
            "currency": ["USD", "USD", "USD", "EUR", "USD", "EUR"],
            "total": [u * UNIT for u in units],
            "subtotal": [u * UNIT for u in units],
            "total_shipping": [0] * 6,
        }
    )
    refunds = pl.DataFrame(
        [("o2", "r2", T0 + DAY, -5 * UNIT), ("o5", "r5", T0 + DAY, 30 * UNIT)],
        schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64, "amount": pl.Int64},
        orient="row",
    )
    return LoyaltyTables(orders, refunds, _customers(["c6", "c5", "c4", "c3", "c2", "c1", "c0"]))


@pytest.mark.parametrize("size", [1, 2, 100])
def test_a_hand_built_shop_by_block(size: int) -> None:
    """As of T0 + 45 days (points expire two months after the last activity, T0 + 59 days
    for an order at T0): c0 and c2's last chance falls due at T0 + 52 days (the 30-day
    warning, T0 + 29, is past: one action each); c1's first warning at T0 + 69 days (expiry
    T0 + 99) and its award in the window; c2 is the rules' (its row from its record); c5's
    expiry is its next change, with no warning; the notes, base tiers and the rows of the
    customers without an action come from the columns alone, with no record."""
    at = T0 + 45 * DAY
    found = derive_shop(
        _tables(), [], {}, POLICY, at, by_block=True, all_entries=False, block_orders=size, **_ARGS
    )
    blocks = list(found.blocks)
    rows = [row for block in blocks for row in block.summary.rows()]
    days = [
        (c, tier, *(None if m is None else (m - T0) // DAY for m in (due, later)), n)
        for c, tier, due, later, n in rows
    ]
    assert days == [
        ("c6", "Bronze", None, None, 0),
        ("c5", "Bronze", 59, 59, 2),  # an earn and its claw-back; no warning of 0 points
        ("c4", "Bronze", None, None, 0),
        ("c3", "Bronze", None, None, 0),
        ("c2", "Bronze", 52, 59, 1),
        ("c1", "Bronze", 69, 99, 1),
        ("c0", "Silver", 52, 59, 1),
    ]
    kinds = [(one.customer_id, [a.kind for a in one.actions]) for b in blocks for one in b.ledgers]
    assert kinds == [
        ("c2", ["loyalty_expiry_warning"]),
        ("c1", ["loyalty_award"]),
        ("c0", ["loyalty_expiry_warning"]),
    ]
    notes = [(n.customer_id, n.order_id) for block in blocks for n in notes_of(block.notes)]
    assert notes == [("c6", "o6"), ("c3", "o3")]  # the customers' order, not the ids'

    assert found.by_rules == ["c2"]


def test_blocks_hold_their_customers_rows_in_the_frames_order() -> None:
    """Blocks of about two orders: c3's two orders, c1's two, then c2 and c0 (one each);
    each block's rows of every frame in that frame's order, an unknown customer's in none,
    a frame with no row of a block empty (with its columns)."""
    known = pl.Series(["c3", "c1", "c2", "c0"])
    orders = pl.DataFrame(
        {"customer_id": ["c1", "c0", "c3", "c1", "zz", "c2", "c3"], "n": range(7)}
    )
    inputs = pl.DataFrame({"customer_id": ["c2", "c0", "c2"], "m": [1, 2, 3]})
    found = [
        (ids.to_list(), [f.rows() for f in frames])
        for ids, frames in split_blocks(known, [orders, inputs], 2)
    ]
    assert found == [
        (["c3"], [[("c3", 2), ("c3", 6)], []]),
        (["c1"], [[("c1", 0), ("c1", 3)], []]),
        (["c2", "c0"], [[("c0", 1), ("c2", 5)], [("c2", 1), ("c0", 2), ("c2", 3)]]),
    ]
    empty = next(iter(split_blocks(known, [orders, inputs], 2)))[1][1]
    assert empty.columns == ["customer_id", "m"]
