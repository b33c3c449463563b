"""Between the rules' records and the columns: the loyalty inputs as frames for
:func:`shopsync.core.loyalty_columns.derive_columns`, and its frames back as one
:class:`~shopsync.core.loyalty.Derivation` per customer, the records the ledger writer and the
action builder take (so a shop derived in columns is written and announced as before).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

import polars as pl

from shopsync.core.loyalty import Bonus, Derivation, Entry, Note, TierChange
from shopsync.core.loyalty_columns import ColumnInputs, ColumnLedger
from shopsync.core.loyalty_records import UNIT, round_half_up
from shopsync.core.milestones import Progress
from shopsync.core.policy import LoyaltySettings

__all__ = ["column_inputs", "derivations"]

_BATCH = 200_000
"""Entries turned into Python rows at a time: a shop's entries are never all rows at once."""

_BONUSES = {
    "customer_id": pl.String,
    "key": pl.String,
    "at": pl.Int64,
    "points": pl.Int64,
    "reason": pl.String,
    "order_id": pl.String,
    "seq": pl.Int64,
}
_ADJUSTMENTS = {
    "customer_id": pl.String,
    "key": pl.String,
    "at": pl.Int64,
    "points": pl.Int64,
    "reason": pl.String,
    "seq": pl.Int64,
}
_REDEMPTIONS = {"customer_id": pl.String, "at": pl.Int64}
_BIRTHDAYS = {
    "customer_id": pl.String,
    "entered_at": pl.Int64,
    "month": pl.Int64,
    "day": pl.Int64,
    "seq": pl.Int64,
}


def column_inputs(inputs: Iterable[Any], bonuses: Mapping[str, Sequence[Bonus]]) -> ColumnInputs:
    """The input rows (``kind``, ``key``, ``customer_id``, ``occurred_at``, ``data``; oldest
    first) and the referral bonuses by customer, as frames; ``seq`` keeps their order."""
    adjust: list[tuple[Any, ...]] = []
    redeem: list[tuple[Any, ...]] = []
    born: list[tuple[Any, ...]] = []
    for seq, r in enumerate(inputs):
        if r.kind == "birthday":
            date = dt.date.fromisoformat(r.data["birthday"])
            born.append((r.customer_id, r.occurred_at, date.month, date.day, seq))
        elif r.kind == "redeem":
            redeem.append((r.customer_id, r.occurred_at))
        elif r.kind == "adjust":
            adjust.append(
                (r.customer_id, r.key, r.occurred_at, r.data["points"], r.data["reason"], seq)
            )
    granted = [
        (customer, b.key, b.at, b.points, b.reason, b.order_id, seq)
        for customer, given in bonuses.items()
        for seq, b in enumerate(given)
    ]
    return ColumnInputs(
        pl.DataFrame(granted, schema=_BONUSES, orient="row"),
        pl.DataFrame(adjust, schema=_ADJUSTMENTS, orient="row"),
        pl.DataFrame(redeem, schema=_REDEMPTIONS, orient="row"),
        pl.DataFrame(born, schema=_BIRTHDAYS, orient="row"),
    )


def derivations(
    ledger: ColumnLedger, settings: LoyaltySettings, customers: pl.Series
) -> Iterator[tuple[str, Derivation]]:
    """The derivation of each of ``customers`` the columns derived, in that order; the others
    (no orders, no inputs, or left to the rules) are not yielded."""
    per_unit = settings.earn.points_per_unit
    tiers = settings.tiers.tiers
    names = [t.name for t in tiers]

    def name(index: int) -> str | None:
        return None if index < 0 else names[index]

    order = pl.DataFrame({"customer_id": customers}).with_row_index("_pos")
    entries = ledger.entries.join(order, on="customer_id").sort(
        "_pos", "at", "_rank", "_sid", "_sub"
    )
    notes: dict[str, list[Note]] = {}
    for customer, key, reason, order_id in ledger.notes.iter_rows():
        notes.setdefault(customer, []).append(Note(key, customer, reason, order_id))
    changes: dict[str, list[TierChange]] = {}
    for customer, at, was, now, up in ledger.changes.iter_rows():
        changes.setdefault(customer, []).append(TierChange(at, name(was), name(now), up))
    progress: dict[str, list[Progress]] = {}
    for customer, at, target, units, after, order_id in ledger.progress.iter_rows():
        short = Fraction(tiers[target].threshold) - Fraction(units, UNIT)
        rate = Fraction(tiers[after].multiplier) if after >= 0 else Fraction(1)
        progress.setdefault(customer, []).append(
            Progress(
                at,
                tiers[target].name,
                target,
                "spend",
                short,
                round_half_up(short * per_unit * rate),
                order_id,
            )
        )
    table = entries.select(
        "key",
        "customer_id",
        "kind",
        "at",
        "pending",
        "approved",
        "reason",
        "order_id",
        "value",
        "multiplier",
    )
    counts = entries.group_by("customer_id").len("_n")
    summary = (
        ledger.summary.join(order, on="customer_id")
        .join(counts, on="customer_id", how="left")
        .sort("_pos")
        .select(
            "customer_id",
            "pending",
            "approved",
            "last_activity",
            "expires_at",
            "next_change",
            "tier",
            "until",
            pl.col("_n").fill_null(0),
        )
    )
    rows: list[tuple[Any, ...]] = []  # rows[i] is entry first + i: a batch at a time (memory)
    start = first = 0
    for customer, pending, approved, last, expires, later, tier, until, n in summary.iter_rows():
        if start + n > first + len(rows):
            first = start
            rows = table.slice(first, max(n, _BATCH)).rows()
        at_row = start - first
        own = [
            Entry(
                key,
                cid,
                kind,
                at,
                p,
                a,
                why,
                oid,
                {"value_units": value, "per_unit": per_unit, "multiplier": rate}
                if kind == "earn"
                else {},
            )
            for key, cid, kind, at, p, a, why, oid, value, rate in rows[at_row : at_row + n]
        ]
        start += n
        yield (
            customer,
            Derivation(
                own,
                notes.pop(customer, []),
                changes.pop(customer, []),
                name(tier),
                until,
                last,
                expires,
                pending,
                approved,
                later,
                progress.pop(customer, []),
            ),
        )
