"""Replenishment's queries over every purchase (:mod:`shopsync.core.replenish`), on integers.

At 10M orders the purchases are 15.6M rows: their (product, sku, type) is one integer here
(:func:`combos`), and the due dates are estimated over them without copying a column
(:func:`near_due`), computed exactly for the few rows near.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from shopsync.core._codes import joint_code
from shopsync.core._data import DAY_US, column_rows
from shopsync.core.shop_stats import _QUANTITY_UNIT

__all__ = ["combos", "near_due"]

_Combo = tuple[str, str | None, str | None]
_COMBO = ("product_id", "sku", "product_type")
"""A purchase's (product, sku, type): what a period or a warranty length is looked up by."""

_LATEST_US = 253_402_300_799_000_000  # 9999-12-31T23:59:59Z: a run-out past it is "never"


def combos(
    bought: pl.DataFrame, is_last: pl.Series, *, few: bool
) -> tuple[pl.Series, dict[int, _Combo]]:
    """``_key`` of each purchase, one integer for its (product, sku, type) with sku and type
    ``""`` for none, and the (product, sku, type) of each key of a last purchase (the first's);
    ``few``: a few purchases', in Python (no query)."""
    if few:
        seen: dict[tuple[Any, ...], int] = {}
        rows = list(column_rows(bought, *_COMBO))
        keys = [
            seen.setdefault((pid, sku or "", ptype or ""), len(seen)) for pid, sku, ptype in rows
        ]
        firsts: dict[int, _Combo] = {}
        for key, row, last in zip(keys, rows, is_last.to_list(), strict=True):
            if last:
                firsts.setdefault(key, row)
        return pl.Series("_key", keys, dtype=pl.UInt64), firsts
    combo = joint_code(*(bought[name] for name in _COMBO), blank=_COMBO[1:])
    first = (
        combo.to_frame()
        .with_row_index("_i")
        .filter(is_last)
        .unique("_key", keep="first", maintain_order=True)
    )
    found = column_rows(bought.select(_COMBO)[first["_i"]], *_COMBO)
    return combo, dict(zip(first["_key"].to_list(), found, strict=True))


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
