"""A whole shop's customers in blocks (:func:`split_blocks`), and a block's loyalty outcome as
columns (:func:`shopsync.core.loyalty_shop.derive_shop`'s ``by_block``): each customer's
tier, due moment, next change and count of entries computed over the block's frames, so a
whole-shop derivation builds records only for the customers with an action or left to the
rules (at 1M customers, most have neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from shopsync.core.loyalty import DAY, Derivation, Note
from shopsync.core.loyalty_columns import ColumnLedger, base_tier
from shopsync.core.policy import LoyaltySettings, Policy

if TYPE_CHECKING:
    from shopsync.core.loyalty_shop import CustomerLedger

__all__ = [
    "NOTE_COLUMNS",
    "SUMMARY",
    "LedgerBlock",
    "block_notes",
    "block_summary",
    "loyalty_due",
    "notes_of",
    "split_blocks",
    "with_records",
]

SUMMARY = {
    "customer_id": pl.String,
    "tier": pl.String,
    "due": pl.Int64,
    "next_change": pl.Int64,
    "entries": pl.Int64,
}
""":attr:`LedgerBlock.summary`'s columns: per customer, :attr:`~shopsync.core.loyalty.
Derivation.tier`, :func:`loyalty_due`, :attr:`~shopsync.core.loyalty.Derivation.next_change`
and the count of entries (all of them, whatever a derivation kept)."""

NOTE_COLUMNS = {
    "customer_id": pl.String,
    "key": pl.String,
    "reason": pl.String,
    "order_id": pl.String,
}


@dataclass
class LedgerBlock:
    """One block of customers (:func:`~shopsync.core.loyalty_shop.derive_shop`'s ``by_block``)."""

    summary: pl.DataFrame
    """:data:`SUMMARY`, one row per customer of the block, in the customers' order."""
    notes: pl.DataFrame
    """:data:`NOTE_COLUMNS`: every note of the block's customers, in their order."""
    ledgers: list[CustomerLedger]
    """The records of the customers with a possible action or derived by the rules, in the
    customers' order; the others have no action and no record."""


def loyalty_due(derivation: Derivation, policy: Policy, at: int) -> int | None:
    """The first moment after ``at`` (micros) at which time alone changes the customer's
    loyalty notices: the ledger's next change (approval, expiry, tier review, birthday, an
    order paid later) or an expiry warning's date; None: never."""
    moments = [] if derivation.next_change is None else [derivation.next_change]
    expires = derivation.expires_at
    if expires is not None and derivation.approved > 0:
        moments += [expires] + [
            expires - days * DAY for days in policy.loyalty.expiry.warn_days_before
        ]
    later = [m for m in moments if m > at]
    return min(later) if later else None


def _due(settings: LoyaltySettings, at: int) -> pl.Expr:
    """:func:`loyalty_due` of the summary's columns (``next_change``, ``expires_at``,
    ``approved``)."""
    expires = pl.when(pl.col("approved") > 0).then(pl.col("expires_at"))
    moments = [pl.col("next_change"), expires]
    moments += [expires - days * DAY for days in settings.expiry.warn_days_before]
    return pl.min_horizontal([pl.when(m > at).then(m) for m in moments])


def block_summary(
    ledger: ColumnLedger | None, settings: LoyaltySettings, ids: pl.Series, at: int
) -> pl.DataFrame:
    """:data:`SUMMARY` of ``ids`` from the columns' ``ledger``; a customer it does not derive
    (no order, no input: None for no ledger) holds the base tier and nothing else."""
    base = base_tier(settings)
    names = [t.name for t in settings.tiers.tiers]
    order = ids.to_frame("customer_id").with_row_index("_pos")
    if ledger is None:
        found = order.with_columns(
            tier=pl.lit(None if base is None else names[base], pl.String),
            due=pl.lit(None, pl.Int64),
            next_change=pl.lit(None, pl.Int64),
            entries=pl.lit(0, pl.Int64),
        )
        return found.select(list(SUMMARY))
    counts = ledger.entries.group_by("customer_id").agg(pl.len().cast(pl.Int64).alias("entries"))
    derived = (
        ledger.summary.join(order, on="customer_id", how="semi")
        .join(counts, on="customer_id", how="left")
        .select(
            "customer_id",
            pl.col("tier").cast(pl.Int64),
            _due(settings, at).alias("due"),
            pl.col("next_change").cast(pl.Int64),
            pl.col("entries").fill_null(0),
        )
    )
    tier = pl.col("tier").fill_null(-1 if base is None else base)  # -1: no tier
    labels = tier.replace_strict(
        list(range(len(names))), names, default=None, return_dtype=pl.String
    )
    return (
        order.join(derived, on="customer_id", how="left", maintain_order="left")
        .with_columns(tier=labels, entries=pl.col("entries").fill_null(0))
        .select(pl.col(name).cast(dtype) for name, dtype in SUMMARY.items())
    )


def block_notes(ledger: ColumnLedger | None, ids: pl.Series) -> pl.DataFrame:
    """The notes of ``ids`` in the columns' ``ledger``: each customer's in order, the
    customers in the order of ``ids``."""
    if ledger is None or ledger.notes.is_empty():
        return pl.DataFrame(schema=NOTE_COLUMNS)
    order = ids.to_frame("customer_id").with_row_index("_pos")
    return (
        ledger.notes.join(order, on="customer_id", maintain_order="left")
        .sort("_pos", maintain_order=True)
        .select(pl.col(name).cast(dtype) for name, dtype in NOTE_COLUMNS.items())
    )


def with_records(
    summary: pl.DataFrame,
    notes: pl.DataFrame,
    ledgers: Sequence[CustomerLedger],
    ruled: Iterable[str],
    policy: Policy,
    at: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``summary`` and ``notes`` with the rows of the ``ruled`` customers (those of
    ``ledgers`` the rules derived, whom the columns know nothing of) taken from their
    records, each in its customer's place."""
    mine = set(ruled)
    records = [one for one in ledgers if one.customer_id in mine]
    if not records:
        return summary, notes
    rows = [
        (
            one.customer_id,
            one.derivation.tier,
            loyalty_due(one.derivation, policy, at),
            one.derivation.next_change,
            one.entry_count,
        )
        for one in records
    ]
    theirs = pl.DataFrame(rows, schema=SUMMARY, orient="row")
    summary = summary.update(theirs, on="customer_id", include_nulls=True)
    more = [
        (n.customer_id, n.key, n.reason, n.order_id)
        for one in records
        for n in one.derivation.notes
    ]
    if not more:
        return summary, notes
    order = summary.select("customer_id").with_row_index("_pos")
    added = pl.DataFrame(more, schema=NOTE_COLUMNS, orient="row")
    notes = (
        pl.concat([notes, added])
        .join(order, on="customer_id", maintain_order="left")
        .sort("_pos", maintain_order=True)
        .drop("_pos")
    )
    return summary, notes


def notes_of(notes: pl.DataFrame) -> list[Note]:
    """:class:`~shopsync.core.loyalty.Note` records of a :data:`NOTE_COLUMNS` frame."""
    return [
        Note(key, customer, reason, order_id)
        for customer, key, reason, order_id in notes.iter_rows()
    ]


def split_blocks(
    known: pl.Series, frames: list[pl.DataFrame], size: int | None
) -> Iterator[tuple[pl.Series, list[pl.DataFrame]]]:
    """``known`` in consecutive blocks of about ``size`` orders each (None: one block), each
    with its customers' rows of ``frames`` (by ``customer_id``; the first: the orders); a
    customer is never split. Rows are told their block once, and each block's rows are
    gathered by index (a filter per block read every row: the blocks times the orders)."""
    orders = frames[0]
    if size is None or orders.height <= size:
        yield known, frames
        return
    counts = orders.group_by("customer_id").len("_n")
    sizes = (
        known.to_frame("customer_id")
        .join(counts, on="customer_id", how="left", maintain_order="left")["_n"]
        .fill_null(0)
    )
    # a block starts where the orders before it fill whole blocks
    number = ((sizes.cum_sum() - sizes) // size).cast(pl.Int64)
    rows = [
        _rows_by_block(f["customer_id"].replace_strict(known, number, default=None)) for f in frames
    ]
    at = 0
    for length in number.rle().struct.field("len"):
        ids = known.slice(at, length)
        at += length
        k = number[at - 1]
        yield ids, [f[r[k]] if k in r else f.clear() for f, r in zip(frames, rows, strict=True)]


def _rows_by_block(block: pl.Series) -> dict[int, pl.Series]:
    """The row indexes of each block number of ``block`` (null: none), in row order."""
    found = (
        block.to_frame("_block")
        .with_row_index("_row")
        .filter(pl.col("_block").is_not_null())
        .group_by("_block")
        .agg(pl.col("_row").sort())
    )
    return dict(zip(found["_block"].to_list(), found["_row"], strict=True))
