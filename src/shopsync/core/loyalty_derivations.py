"""Between the rules' records and the columns: the loyalty inputs as frames for
:func:`shopsync.core.loyalty_columns.derive_columns`, and its frames back as one
:class:`~shopsync.core.loyalty.Derivation` per customer, the records the ledger writer and the
action builder take (so a shop derived in columns is written and announced as before).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, make_dataclass
from fractions import Fraction
from itertools import chain, repeat
from typing import Any, TypeVar

import polars as pl

from shopsync._collector import collector_paused
from shopsync.core.loyalty import DAY, Bonus, Derivation, Entry, Note, TierChange
from shopsync.core.loyalty_columns import EARNED, ColumnInputs, ColumnLedger
from shopsync.core.loyalty_records import UNIT
from shopsync.core.milestones import Progress
from shopsync.core.policy import LoyaltySettings

__all__ = [
    "ROW_COLUMNS",
    "action_entries",
    "column_inputs",
    "derivations",
    "entry_rows",
    "with_actions",
]

ROW_COLUMNS = (
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
"""The entry frames' columns (:func:`derivations`' ``on_entries``): an :class:`Entry`'s
fields, an earn's detail as ``value`` (its ``value_units``) and ``multiplier`` (null for
the other kinds; ``per_unit`` is the policy's)."""

T = TypeVar("T")

_EVENT_ORDER = ("_pos", "at", "_rank", "_sid", "_sub")
"""The entries' order: the customers' (``_pos``), then each one's events."""

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


def column_inputs(
    inputs: Iterable[Any],
    bonuses: Mapping[str, Sequence[Bonus]],
    earned: pl.DataFrame | None = None,
) -> ColumnInputs:
    """The input rows (``kind``, ``key``, ``customer_id``, ``occurred_at``, ``data``; oldest
    first) and the referral bonuses by customer, as frames; ``seq`` keeps their order.
    ``earned``: the points the ledger's earn entries hold (:attr:`ColumnInputs.earned`)."""
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
        pl.DataFrame(schema=EARNED)
        if earned is None
        else earned.select(
            pl.col(name).cast(dtype) for name, dtype in EARNED.items() if name in earned.columns
        ),
    )


def derivations(
    ledger: ColumnLedger,
    settings: LoyaltySettings,
    customers: pl.Series,
    window: tuple[int, int] | None = None,
    on_entries: Callable[[pl.DataFrame], None] | None = None,
) -> Iterator[tuple[str, Derivation, int]]:
    """The derivation of each of ``customers`` the columns derived, in that order, and its
    count of entries; the others (no orders, no inputs, or left to the rules) are not yielded.

    ``window`` ``(since, until)``: each derivation holds only the entries its actions read
    (:func:`action_entries`), which saves building millions of records nobody reads.
    ``on_entries`` is handed every entry of ``customers`` as one frame (:data:`ROW_COLUMNS`,
    in the customers' and then the event order) before the first derivation is yielded: a
    ledger writer reads rows, not records."""
    per_unit = settings.earn.points_per_unit
    tiers = settings.tiers.tiers
    names = [t.name for t in tiers]

    def name(index: int) -> str | None:
        return None if index < 0 else names[index]

    order = pl.DataFrame({"customer_id": customers}).with_row_index("_pos")
    entries = ledger.entries.join(order, on="customer_id")

    def mine(frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``customers`` alone: the others' records are never read."""
        if frame.is_empty():
            return frame
        return frame.join(order, on="customer_id", how="semi", maintain_order="left")

    with collector_paused():  # records without cycles, as _records builds
        found = _attached(mine(ledger.notes), mine(ledger.changes), mine(ledger.progress), settings)
    counts = entries.group_by("customer_id").agg(
        pl.len().alias("_n"),
        (pl.len() if window is None else action_entries(*window).sum()).alias("_kept"),
    )
    if on_entries is not None:
        on_entries(entry_rows(ledger, customers))
    if window is not None:
        entries = entries.filter(action_entries(*window))
    entries = entries.sort(_EVENT_ORDER)
    table = entries.select([ROW_COLUMNS[0], *ROW_COLUMNS[2:]])  # each customer's id is shared
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
            pl.col("_kept").fill_null(0),
        )
    )
    batch: list[tuple[Any, ...]] = []  # summary rows of the next customers
    size = start = 0
    for person in summary.iter_rows():
        batch.append(person)
        size += person[-1]
        if size >= _BATCH:
            yield from _records(table.slice(start, size), batch, per_unit, name, found)
            batch, start, size = [], start + size, 0
    yield from _records(table.slice(start, size), batch, per_unit, name, found)


def entry_rows(ledger: ColumnLedger, customers: pl.Series) -> pl.DataFrame:
    """Every entry of ``customers`` in ``ledger`` (:data:`ROW_COLUMNS`), in the customers'
    and then the event order: what :func:`derivations` hands its ``on_entries``."""
    order = pl.DataFrame({"customer_id": customers}).with_row_index("_pos")
    entries = ledger.entries.join(order, on="customer_id")
    return entries.sort(_EVENT_ORDER).select(list(ROW_COLUMNS))


def _attached(
    notes: pl.DataFrame, changes: pl.DataFrame, progress: pl.DataFrame, settings: LoyaltySettings
) -> tuple[dict[str, list[Note]], dict[str, list[TierChange]], dict[str, list[Progress]]]:
    """The records of :attr:`ColumnLedger.notes`, ``changes`` and ``progress`` (the rows of
    the customers derived), each customer's in order."""
    per_unit = settings.earn.points_per_unit
    tiers = settings.tiers.tiers
    names = [t.name for t in tiers]
    found: dict[str, list[Note]] = {}
    for customer, key, reason, order_id in notes.iter_rows():
        found.setdefault(customer, []).append(Note(key, customer, reason, order_id))
    whose, ats, was, now, up = (column.to_list() for column in changes.iter_columns())
    labels = [None, *names]  # by tier index + 1 (-1: no tier)
    moved = (ats, [labels[i + 1] for i in was], [labels[i + 1] for i in now], up)
    changed = _by_customer(whose, _built(_LOOSE_CHANGE, TierChange, moved))
    # short = threshold - units / UNIT = (num - units * den) / (den * UNIT), threshold num / den;
    # the points to go, round_half_up(short * per_unit * rate), in integers
    floors = [Fraction(t.threshold).as_integer_ratio() for t in tiers]
    rates = [r.as_integer_ratio() for r in [Fraction(1)] + [Fraction(t.multiplier) for t in tiers]]
    whose, ats, targets, units, afters, order_ids = (
        column.to_list() for column in progress.iter_columns()
    )
    shorts, to_go = [], []
    for target, metric, after in zip(targets, units, afters, strict=True):
        num, den = floors[target]
        top, bottom = num * UNIT - metric * den, den * UNIT
        rate, per = rates[after + 1]
        shorts.append(Fraction(top, bottom))
        to_go.append(_half_up(top * per_unit * rate, bottom * per))
    columns = (ats, [names[t] for t in targets], targets, repeat("spend"), shorts, to_go)
    steps = _by_customer(whose, _built(_LOOSE_PROGRESS, Progress, (*columns, order_ids)))
    return found, changed, steps


def _records(
    table: pl.DataFrame,
    people: list[tuple[Any, ...]],
    per_unit: int,
    name: Callable[[int], str | None],
    found: tuple[dict[str, list[Note]], dict[str, list[TierChange]], dict[str, list[Progress]]],
) -> list[tuple[str, Derivation, int]]:
    """The derivations of ``people`` (summary rows), ``table`` their entries in order.

    The batch's entries are built in one pass (``map`` over the columns, no loop per
    customer), each customer's id one shared string; then cut per customer. Built with the
    cycle collector paused: these records hold no cycles, and a collection every few hundred
    new objects walks every live one (measured: half the time of building them); the pause
    lasts one batch and ends before the records are handed out."""
    notes, changes, progress = found
    keys, kinds, ats, pendings, approveds, reasons, orders, values, rates = (
        column.to_list() for column in table.iter_columns()
    )
    whos = list(chain.from_iterable(repeat(person[0], person[-1]) for person in people))
    with collector_paused():
        details = [
            {"value_units": value, "per_unit": per_unit, "multiplier": rate}
            if kind == "earn"
            else {}
            for kind, value, rate in zip(kinds, values, rates, strict=True)
        ]
        made = _built(
            _LOOSE_ENTRY,
            Entry,
            (keys, whos, kinds, ats, pendings, approveds, reasons, orders, details),
        )
        derived: list[tuple[str, Derivation, int]] = []
        i = 0
        for customer, pending, approved, last, expires, later, tier, until, count, n in people:
            derived.append(
                (
                    customer,
                    Derivation(
                        made[i : i + n],
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
                    count,
                )
            )
            i += n
        return derived


def action_entries(since: int, until: int) -> pl.Expr:
    """The entries the loyalty actions read (:func:`shopsync.core.loyalty_actions.
    loyalty_actions`): earns and bonuses dated in ``(since, until]``."""
    kind, at = pl.col("kind"), pl.col("at")
    return kind.is_in(["earn", "bonus"]) & (at > since) & (at <= until)


def with_actions(
    ledger: ColumnLedger, settings: LoyaltySettings, since: int, until: int
) -> pl.Series:
    """The customers of ``ledger`` whose derivation can make a loyalty action in
    ``(since, until]`` (:func:`shopsync.core.loyalty_actions.loyalty_actions`): an earn or a
    bonus then (awards, milestone rewards), a promotion or a progress record then, or approved
    points expiring after ``until`` with a warning date by it. The others make none."""
    at = pl.col("at")
    dated = (at > since) & (at <= until)
    parts = [
        ledger.entries.filter(action_entries(since, until))["customer_id"],
        ledger.changes.filter(dated & pl.col("promoted") & (pl.col("to") >= 0))["customer_id"],
        ledger.progress.filter(dated)["customer_id"],
    ]
    warn = settings.expiry.warn_days_before
    if warn:
        expires = pl.col("expires_at")
        parts.append(
            ledger.summary.filter(
                (pl.col("approved") > 0) & (expires > until) & (expires - max(warn) * DAY <= until)
            )["customer_id"]
        )
    return pl.concat(parts).unique()


def _half_up(top: int, bottom: int) -> int:
    """:func:`~shopsync.core.loyalty_records.round_half_up` of ``top / bottom``, ``bottom > 0``."""
    if top < 0:
        return -_half_up(-top, bottom)
    return (2 * top + bottom) // (2 * bottom)


def _loose(cls: type[Any]) -> type[Any]:
    """``cls`` (a frozen slotted dataclass) without the freeze: the same slots in the same
    order, so an instance built through its plain ``__init__`` (slot stores, no
    ``object.__setattr__`` per field) can become a ``cls`` (``__class__`` assignment checks
    the layouts match, and raises if they ever differ)."""
    return make_dataclass(f"_Loose{cls.__name__}", [f.name for f in fields(cls)], slots=True)


_LOOSE_ENTRY = _loose(Entry)
_LOOSE_PROGRESS = _loose(Progress)
_LOOSE_CHANGE = _loose(TierChange)


def _by_customer(whose: Iterable[str], records: Iterable[T]) -> dict[str, list[T]]:
    """``records`` listed by customer (``whose``: each one's), in their order."""
    found: dict[str, list[T]] = {}
    for customer, record in zip(whose, records, strict=True):
        found.setdefault(customer, []).append(record)
    return found


def _built(loose: type[Any], cls: type[T], columns: Iterable[Iterable[Any]]) -> list[T]:
    """``cls`` records, one per row of ``columns`` (its fields in order): measured with the
    collector paused, 0.3 µs an entry against 1.1 for ``Entry(...)`` and 0.6 for the slots'
    setters one by one (a shop's entries are millions). They are ``cls`` instances in every
    respect; the columns' oracle test compares them with the rules' own."""
    made: list[Any] = list(map(loose, *columns))
    for one in made:
        one.__class__ = cls
    return made
