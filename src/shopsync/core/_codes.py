"""Integer stand-ins for text keys, for the queries over millions of purchases (issue 18).

A join, ``group_by``, ``unique`` or ``is_duplicated`` on text columns hashes and row-encodes
every string: at 10M orders, over 15.6M purchases, each such step held 1.5-2 GB beside an
answer of a few MB. The codes here are one small integer a row, found through an Enum of the
column's distinct values (cheap while those are few: customers, products, SKUs, types; not
order ids, millions of them all distinct).
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

__all__ = ["coded", "codes", "joint_code"]


def coded(texts: pl.Series, *, empty: bool = True) -> pl.Series:
    """``texts`` (text or categorical) as an enum of its sorted distinct values
    (``empty=False``: empty text as null): grouping codes is cheaper than grouping text, and
    their order is the texts'."""
    if not empty:
        texts = texts.replace("", None)
    values = texts.drop_nulls().unique().cast(pl.String).sort()
    found: pl.Series = texts.cast(pl.Enum(values))
    return found


def codes(column: pl.Series, *, blank: bool = False) -> tuple[pl.Series, pl.Series]:
    """``(codes, values)``: each row's position in ``values`` (the column's distinct non-null
    values, sorted: :func:`coded`), UInt64, and ``len(values)`` for a null: equal texts get
    equal codes, nulls one code of their own, codes order as the texts do (nulls last), and
    ``values.gather(codes)`` gives the non-null texts back. ``blank``: ``""`` is a null."""
    found = coded(column, empty=not blank)
    values = found.dtype.categories.rename(column.name)  # type: ignore[attr-defined]
    return found.to_physical().cast(pl.UInt64).fill_null(len(values)), values


def joint_code(*columns: pl.Series, blank: Collection[str] = ()) -> pl.Series:
    """One UInt64 per row standing for the row's values in ``columns`` together (nulls equal
    to nulls; ``""`` a null too in the columns named in ``blank``): the codes of each column,
    mixed positionally (``a * (len(b) + 1) + b``); a mix that could pass 64 bits is first
    ranked down to the distinct keys so far."""
    key: pl.Series | None = None
    bound = 1  # the keys so far are below it
    for column in columns:
        found, values = codes(column, blank=column.name in blank)
        if key is None:
            key, bound = found, len(values) + 1
            continue
        if bound * (len(values) + 1) >= _LIMIT:
            key = key.rank("dense").cast(pl.UInt64) - 1
            top = key.max()
            bound = int(top) + 1 if isinstance(top, int) else 1
        key, bound = key * (len(values) + 1) + found, bound * (len(values) + 1)
    assert key is not None, "joint_code of no column"
    return key.rename("_key")


_LIMIT = 2**63
