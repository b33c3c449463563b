"""Replenishment's queries over every purchase (:mod:`shopsync.core.replenish`), on integers.

At 10M orders the purchases are 15.6M rows: their (product, sku, type) is one integer here
(:attr:`Bought.combo`), and the due dates are estimated over them without copying a column
(:func:`near_due`), computed exactly for the few rows near.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import polars as pl

from shopsync.core._codes import joint_code
from shopsync.core._data import DAY_US, FEW_ROWS, column_rows
from shopsync.core.shop_stats import _QUANTITY_UNIT

__all__ = ["Bought", "last_mask", "last_purchases", "near_due"]

_Combo = tuple[str, str | None, str | None]
_COMBO = ("product_id", "sku", "product_type")
"""A purchase's (product, sku, type): what a period or a warranty length is looked up by."""

_LATEST_US = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z: a run-out past it is "never"


class Bought:
    """One purchases frame (:func:`~shopsync.core.shop_stats.purchases`) and what replenishment
    and warranty read of it alone, each found once, when first asked for: a plan's candidates
    and its customers' next-due moments (issue 19) share them (at 43k customers' 1.4M
    purchases, :func:`last_mask` cost 0.4 CPU-s and each (product, sku, type) code 0.15)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.few = frame.height <= FEW_ROWS
        """A few purchases' (one customer's): coded in Python, no query."""

    @cached_property
    def is_last(self) -> pl.Series:
        """Which purchases are a (customer, product)'s last (:func:`last_mask`)."""
        return last_mask(self.frame)

    @cached_property
    def combo(self) -> pl.Series:
        """``_key`` of each purchase: one integer for its (product, sku, type), sku and type
        ``""`` for none."""
        if self.few:
            seen: dict[tuple[Any, ...], int] = {}
            keys = [
                seen.setdefault((pid, sku or "", ptype or ""), len(seen))
                for pid, sku, ptype in column_rows(self.frame, *_COMBO)
            ]
            return pl.Series("_key", keys, dtype=pl.UInt64)
        return joint_code(*(self.frame[name] for name in _COMBO), blank=_COMBO[1:])

    def firsts(self, mask: pl.Series) -> dict[int, _Combo]:
        """The (product, sku, type) of each key of a purchase in ``mask``, the first's."""
        if self.few:
            firsts: dict[int, _Combo] = {}
            rows = column_rows(self.frame, *_COMBO)
            for key, row, kept in zip(self.combo.to_list(), rows, mask.to_list(), strict=True):
                if kept:
                    firsts.setdefault(key, row)
            return firsts
        first = (
            self.combo.to_frame()
            .with_row_index("_i")
            .filter(mask)
            .unique("_key", keep="first", maintain_order=True)
        )
        found = column_rows(self.frame.select(_COMBO)[first["_i"]], *_COMBO)
        return dict(zip(first["_key"].to_list(), found, strict=True))


def last_purchases(bought: pl.DataFrame) -> pl.DataFrame:
    """The last purchase of each (customer, product): newest, then the greatest order id, in
    ``bought``'s order (:func:`last_mask`)."""
    return bought.filter(last_mask(bought))


def last_mask(bought: pl.DataFrame) -> pl.Series:
    """Which rows of ``bought`` are a (customer, product)'s last purchase. Most products were
    bought once by a customer (1M orders: 93% of the purchases): one pass finds the repeats,
    and only they are filtered by window maxima (two windows over every purchase took 2 s of
    CPU, four times as long); the pair is one integer there (:func:`joint_code`: at 10M orders
    the two texts' pass held 1.8 GB)."""
    pair = ["customer_id", "product_id"]
    if bought.height <= FEW_ROWS:
        # Series and DataFrame methods, not queries: a one-customer plan (no repeat, usually)
        # pays no query's fixed cost (~0.3 ms each) here
        repeat = bought[pair].is_duplicated()
        return ~repeat if not repeat.any() else _few_last_mask(bought, repeat)
    key = joint_code(bought["customer_id"], bought["product_id"])
    repeat = key.is_duplicated()
    if not repeat.any():
        return ~repeat
    at_row = pl.int_range(pl.len(), dtype=pl.Int64)
    newest = (  # one collect
        bought.lazy()
        .select("created_at", "order_id", at_row.alias("_i"))
        .with_columns(key)
        .filter(repeat)
        .filter(pl.col("created_at") == pl.col("created_at").max().over("_key"))
        .filter(pl.col("order_id") == pl.col("order_id").max().over("_key"))
        .collect(engine="in-memory")
    )["_i"]
    return (~repeat).scatter(newest, True)


def _few_last_mask(bought: pl.DataFrame, repeat: pl.Series) -> pl.Series:
    """:func:`last_mask` of a few purchases, in Python: of each repeated pair, the newest
    rows, then of those the greatest order id (nulls are never the last, as in the query)."""
    rows = list(column_rows(bought, "customer_id", "product_id", "created_at", "order_id"))
    repeated = repeat.to_list()
    newest: dict[tuple[Any, Any], Any] = {}
    for (cid, pid, created, _), again in zip(rows, repeated, strict=True):
        if again and created is not None:
            newest[(cid, pid)] = max(created, newest.get((cid, pid), created))
    greatest: dict[tuple[Any, Any], Any] = {}
    for cid, pid, created, oid in rows:
        if oid is not None and created is not None and created == newest.get((cid, pid)):
            greatest[(cid, pid)] = max(oid, greatest.get((cid, pid), oid))
    mask = [not again for again in repeated]
    for i, (cid, pid, created, oid) in enumerate(rows):
        last = created is not None and created == newest.get((cid, pid))
        mask[i] = mask[i] or (last and oid is not None and oid == greatest.get((cid, pid)))
    return pl.Series(repeat.name, mask, dtype=pl.Boolean)


def near_due(
    bought: pl.DataFrame,
    combo: pl.Series,
    is_last: pl.Series,
    table: pl.DataFrame,
    days: tuple[int, int],
    at: int,
) -> pl.Series:
    """``_i``: the positions of the last purchases whose run-out, estimated in floats, makes
    them due at ``at`` give or take a day (``days``: the policy's ``days_before`` and
    ``late_days``; as ``_may_run_out`` does): the exact test's rows and perhaps a few more,
    found without a copy of the purchases (``table``: ``_key`` and ``period``)."""
    before, late = days
    period = pl.lit(combo).replace_strict(table["_key"], table["period"], default=None)
    per_unit = period * (DAY_US / _QUANTITY_UNIT)
    runs_out = pl.col("created_at") + pl.col("kept_units").cast(pl.Float64) * per_unit
    runs_out = runs_out.clip(upper_bound=float(_LATEST_US))
    near = (
        (runs_out - (before + 1) * DAY_US <= at)
        & (at <= runs_out + (late + 1) * DAY_US)
        & pl.lit(is_last)
    )
    found: pl.Series = bought.select(near.arg_true().cast(pl.Int64).alias("_i")).to_series()
    return found
