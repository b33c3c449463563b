"""Shared pieces of the columnar loyalty derivation (:mod:`shopsync.core.loyalty_columns`):
the entry rows' schema and event order, source keys, and half-up rounding in 128-bit integers.
"""

from __future__ import annotations

import hashlib

import polars as pl

__all__ = [
    "CUSTOMER",
    "EARNED",
    "ENTRY_SCHEMA",
    "I128",
    "RANK",
    "entries",
    "fit_keys",
    "half_up",
    "key",
    "who",
    "with_held",
]

I128 = pl.Int128

CUSTOMER = pl.UInt32
"""Customers are integer codes inside the columnar derivation (strings sort and group
several times slower); :func:`shopsync.core.loyalty_columns.derive_columns` maps them back."""

RANK = {
    "expire": -1,
    "earn": 0,
    "refund": 1,
    "cancel": 2,
    "approve": 3,
    "bonus": 4,
    "adjust": 5,
    "redeem": 6,
    "birthday": 7,
}
"""The event order of :func:`shopsync.core.loyalty.derive` at one moment (an expiry due at
a moment comes before that moment's events)."""

ENTRY_SCHEMA = {
    "customer_id": CUSTOMER,
    "key": pl.String,
    "kind": pl.String,
    "at": pl.Int64,
    "pending": pl.Int64,
    "approved": pl.Int64,
    "reason": pl.String,
    "order_id": pl.String,
    "value": pl.Int64,
    "_rank": pl.Int64,
    "_sid": pl.String,
    "_sub": pl.Int64,
    "multiplier": pl.String,
}


def _digest(key: str) -> str:
    head = key.split(":", 1)[0]
    return f"{head}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def fit_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`~shopsync.core.loyalty_records.source_key`'s hashing of keys over 255 characters."""
    long = frame["key"].str.len_chars() > 255
    if not long.any():
        return frame
    keys = [_digest(k) if big else k for k, big in zip(frame["key"], long, strict=True)]
    return frame.with_columns(pl.Series("key", keys, pl.String))


def who(names: pl.Series) -> pl.Expr:
    """The customer id of each row (its code in ``customer_id``), for source keys."""
    return pl.lit(names).gather(pl.col("customer_id"))


def key(*parts: str | pl.Expr) -> pl.Expr:
    exprs = [pl.lit(p) if isinstance(p, str) else p.cast(pl.String) for p in parts]
    return pl.concat_str(exprs, separator=":")


def half_up(top: pl.Expr, bottom: pl.Expr) -> pl.Expr:
    """round_half_up(top / bottom) for ``bottom > 0``, in 128-bit integers."""
    top, bottom = top.cast(I128), bottom.cast(I128)
    up = (2 * top + bottom) // (2 * bottom)
    zero = pl.lit(0, I128)  # 128-bit integers have no negation
    down = zero - ((zero - 2 * top + bottom) // (2 * bottom))
    return pl.when(top >= 0).then(up).otherwise(down)


def entries(frame: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    """``frame`` as entry rows: ``columns`` give the entry's fields, missing ones are null."""
    exprs = [
        columns[name].cast(dtype).alias(name)
        if name in columns
        else pl.lit(None, dtype).alias(name)
        for name, dtype in ENTRY_SCHEMA.items()
    ]
    return fit_keys(frame.select(exprs))


EARNED = {
    "customer_id": pl.String,
    "order_id": pl.String,
    "points": pl.Int64,
    "pending": pl.Boolean,
}
"""The points the ledger's earn entries hold, one row per customer and order
(:attr:`shopsync.core.loyalty_columns.ColumnInputs.earned`), and whether they hold them
pending (``pending``, optional: without it the return window decides)."""


def with_held(orders: pl.DataFrame, earned: pl.DataFrame) -> pl.DataFrame:
    """``orders`` (``customer_id``, ``id``) with ``held``: the points their earn entry holds
    (:data:`EARNED` rows, one per customer and order; null: not earned yet, as are points
    not above zero) and ``held_pending``, whether they wait for approval (null: as the return
    window says)."""
    pending = pl.col("pending") if "pending" in earned.columns else pl.lit(None, pl.Boolean)
    held = earned.filter(pl.col("points") > 0).select(
        "customer_id",
        pl.col("order_id").alias("id"),
        pl.col("points").alias("held"),
        pending.alias("held_pending"),
    )
    return orders.join(held, on=["customer_id", "id"], how="left", maintain_order="left")
