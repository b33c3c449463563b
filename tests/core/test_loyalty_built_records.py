"""The records :func:`~shopsync.core.loyalty_derivations.derivations` builds from hand-built
column frames (its entries, progress records and tier changes are built through an unfrozen
twin of their class, then made instances of it): each field in its place, equal to the record
built the usual way, of the class itself, and frozen."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import polars as pl
import pytest

from shopsync.core.loyalty import Entry, TierChange
from shopsync.core.loyalty_column_kit import ENTRY_SCHEMA
from shopsync.core.loyalty_columns import ColumnLedger
from shopsync.core.loyalty_derivations import derivations
from shopsync.core.milestones import Progress
from shopsync.core.policy import Policy

DAY = 86_400_000_000


def _ledger() -> ColumnLedger:
    entries = pl.DataFrame(
        [
            ("c1", "earn:c1:o1", "earn", DAY, 12, 0, "order o1 paid: 12 points", "o1", 120_000),
            ("c1", "clawback:c1:o1:r1", "clawback", 2 * DAY, -3, 0, "refund r1", "o1", None),
            ("c2", "adjust:a1", "adjust", 3 * DAY, 0, 50, "goodwill", None, None),
        ],
        schema=[
            "customer_id",
            "key",
            "kind",
            "at",
            "pending",
            "approved",
            "reason",
            "order_id",
            "value",
        ],
        orient="row",
    ).with_columns(
        pl.Series("_rank", [0, 1, 5]),
        pl.Series("_sid", ["o1", "o1", "a1"]),
        pl.Series("_sub", [0, 0, 0]),
        pl.Series("multiplier", ["5/4", None, None]),
    )
    summary = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "pending": [9, 0],
            "approved": [0, 50],
            "last_activity": [DAY, 3 * DAY],
            "expires_at": [None, None],
            "next_change": [None, None],
            "tier": [0, 0],
            "until": [None, None],
        },
        schema_overrides={"expires_at": pl.Int64, "next_change": pl.Int64, "until": pl.Int64},
    )
    progress = pl.DataFrame(
        {
            "customer_id": ["c1"],
            "at": [DAY],
            "target": [1],
            "units": [1_200_000],  # 120.0000 of spend
            "after": [0],
            "order_id": ["o1"],
        },
        schema_overrides={"target": pl.Int32, "after": pl.Int32},
    )
    empty_notes = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "key": pl.String,
            "reason": pl.String,
            "order_id": pl.String,
        }
    )
    changes = pl.DataFrame(
        [("c2", 3 * DAY, -1, 1, True), ("c1", DAY, 0, 2, True), ("c2", 4 * DAY, 1, 0, False)],
        schema={
            "customer_id": pl.String,
            "at": pl.Int64,
            "from": pl.Int32,
            "to": pl.Int32,
            "promoted": pl.Boolean,
        },
        orient="row",
    )
    return ColumnLedger(
        entries.cast({k: v for k, v in ENTRY_SCHEMA.items() if k != "customer_id"}),
        empty_notes,
        summary,
        frozenset(),
        changes,
        progress,
    )


def test_built_entries_progress_and_tier_changes_are_the_usual_records() -> None:
    settings = Policy.from_dict({"currency": "USD"}).loyalty  # Silver at 500, Bronze x1
    per_unit = settings.earn.points_per_unit
    found = {
        who: derivation
        for who, derivation, _ in derivations(_ledger(), settings, pl.Series(["c2", "c1"]))
    }
    assert list(found) == ["c2", "c1"]
    earn, claw = found["c1"].entries
    assert earn == Entry(
        "earn:c1:o1",
        "c1",
        "earn",
        DAY,
        12,
        0,
        "order o1 paid: 12 points",
        "o1",
        {"value_units": 120_000, "per_unit": per_unit, "multiplier": "5/4"},
    )
    assert claw == Entry("clawback:c1:o1:r1", "c1", "clawback", 2 * DAY, -3, 0, "refund r1", "o1")
    assert found["c2"].entries == [
        Entry("adjust:a1", "c2", "adjust", 3 * DAY, 0, 50, "goodwill", None, {})
    ]
    (step,) = found["c1"].progress
    short = Fraction(500) - Fraction(1_200_000, 10_000)  # Silver's 500 less 120 spent
    assert step == Progress(DAY, "Silver", 1, "spend", short, round(short * per_unit), "o1")
    assert found["c1"].tier_changes == [TierChange(DAY, "Bronze", "Gold", True)]
    assert found["c2"].tier_changes == [
        TierChange(3 * DAY, None, "Silver", True),
        TierChange(4 * DAY, "Silver", "Bronze", False),
    ]
    changed = found["c2"].tier_changes[0]
    for record, kind in ((earn, Entry), (claw, Entry), (step, Progress), (changed, TierChange)):
        assert type(record) is kind
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.at = 0  # type: ignore[misc]
