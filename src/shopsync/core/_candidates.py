"""Candidate actions as frames: what a program proposes, one row each, before the safety
rules decide.

On a large shop most candidates are held back (no consent, the frequency cap, the holdout),
so building a pydantic :class:`~shopsync.core.actions.Action` for each one cost more than
finding them. A program returns :class:`Candidates` instead: a frame with the columns the
planner's rules read (:data:`COMMON`) beside whatever the program needs to write its
actions, and a function that turns one row into its action. The planner builds actions only
for the rows it keeps, and for held rows only when someone looks at them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from shopsync._instants import to_micros
from shopsync.core._data import FEW_ROWS
from shopsync.core.actions import Action

__all__ = [
    "COMMON",
    "NO_MOMENTS",
    "Candidates",
    "key_column",
    "key_expr",
    "of_actions",
    "short_key",
    "short_keys",
    "soonest",
]

COMMON = ("customer_id", "kind", "due", "key", "marketing")
"""customer_id, kind, due (micros, UTC), key (the idempotency key), marketing (the kind's
default; the policy's overrides apply in the planner)."""

_MAX_KEY = 255


@dataclass(frozen=True)
class Candidates:
    """One program's candidates: ``frame`` (:data:`COMMON` and more), ``build`` (row -> action)."""

    frame: pl.DataFrame
    build: Callable[[dict[str, Any]], Action]

    def actions(self, rows: Sequence[int] | None = None) -> list[Action]:
        """The actions of ``rows`` (positions in ``frame``; default: all), in that order."""
        picked = self.frame if rows is None else self.frame[list(rows)]
        return [self.build(row) for row in picked.iter_rows(named=True)]


def key_column(frame: pl.DataFrame, kind: str, *parts: pl.Expr | str) -> pl.DataFrame:
    """``frame`` with ``key``: the idempotency key :func:`source_key` gives for ``kind`` and
    ``parts`` (a string is a literal, an expression a column), as one string concatenation;
    the rare key longer than the store's 255 characters is hashed down as ``source_key`` does.
    """
    return short_keys(frame.with_columns(key_expr(kind, *parts)), kind)


def key_expr(kind: str, *parts: pl.Expr | str) -> pl.Expr:
    """:func:`key_column`'s ``key`` as an expression, to join a lazy query (its long keys
    still to be hashed down: :func:`short_keys`)."""
    exprs = [pl.lit(p) if isinstance(p, str) else p.cast(pl.String) for p in (kind, *parts)]
    return pl.concat_str(exprs, separator=":").alias("key")


def short_keys(frame: pl.DataFrame, kind: str | None = None) -> pl.DataFrame:
    """``frame`` with each ``key`` longer than 255 characters hashed down as
    :func:`source_key` does, under ``kind`` (None: the kind the key starts with); a few rows
    are looked at in Python, not by a query (~0.3 ms each, of a one-customer plan)."""
    if frame.height == 0:
        return frame
    if frame.height <= FEW_ROWS:
        if all(len(k) <= _MAX_KEY for k in frame["key"].to_list() if k is not None):
            return frame
    elif not (frame["key"].str.len_chars() > _MAX_KEY).any():
        return frame
    keys: list[str | None] = frame["key"].to_list()
    fixed = [k if k is None else short_key(k, kind) for k in keys]
    return frame.with_columns(pl.Series("key", fixed, dtype=pl.String))


def short_key(key: str, kind: str | None = None) -> str:
    """One key of :func:`short_keys`: itself, or hashed down when longer than 255 characters."""
    if len(key) <= _MAX_KEY:
        return key
    return f"{kind or key.split(':', 1)[0]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def of_actions(actions: Sequence[Action]) -> Candidates:
    """Actions already built (the loyalty notices) as candidates."""
    frame = pl.DataFrame(
        {
            "customer_id": [a.customer_id for a in actions],
            "kind": [a.kind for a in actions],
            "due": [to_micros(a.due_at) for a in actions],
            "key": [a.idempotency_key for a in actions],
            "marketing": [a.marketing for a in actions],
            "index": list(range(len(actions))),
        },
        schema={
            "customer_id": pl.String,
            "kind": pl.String,
            "due": pl.Int64,
            "key": pl.String,
            "marketing": pl.Boolean,
            "index": pl.Int64,
        },
    )
    return Candidates(frame, lambda row: actions[row["index"]])


NO_MOMENTS = pl.DataFrame(schema={"customer_id": pl.String, "moment": pl.Int64})
"""An empty frame of moments (:func:`soonest`)."""


def soonest(moments: Sequence[pl.LazyFrame | pl.DataFrame], at: int) -> pl.DataFrame:
    """``customer_id, due``: each customer's earliest ``moment`` strictly after ``at``.

    The programs' next-due functions (issue 19) list every moment at which one of their
    thresholds is crossed (fulfilment + delay, last order + k x rhythm, ...); a customer
    without one is left out (never due by time alone)."""
    parts = [m.lazy().select("customer_id", pl.col("moment").cast(pl.Int64)) for m in moments]
    return (
        pl.concat([NO_MOMENTS.lazy(), *parts], how="vertical")
        .filter(pl.col("customer_id").is_not_null() & (pl.col("moment") > at))
        .group_by("customer_id")
        .agg(pl.col("moment").min().alias("due"))
        .sort("customer_id")
        .collect(engine="in-memory")
    )
