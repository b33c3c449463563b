"""JSON text exactly as :func:`json.dumps` writes it, without its set-up on every call.

``json.dumps`` builds a new C encoder for each value it writes; for the small values of a
store row (an address, a list of tags) that set-up costs more than the writing (measured:
the JSON columns and content hashes of a bulk backfill, a fifth of its CPU). The encoder
here is built once and gives the same text for any value without a reference cycle (store
rows have none)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from json import encoder as _encoder
from typing import Any

import polars as pl

__all__ = ["dumps_like", "objects_text"]


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_like(
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    default: Callable[[Any], Any] | None = None,
) -> Callable[[Any], str]:
    """``partial(json.dumps, sort_keys=..., separators=..., default=...)``, built once."""
    make = getattr(_encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python without the json accelerator
        return partial(json.dumps, sort_keys=sort_keys, separators=separators, default=default)
    item_separator, key_separator = separators
    encode = make(
        None,  # no cycle check (json.dumps checks; a cycle here recurses until RecursionError)
        default or _refuse,
        _encoder.encode_basestring_ascii,
        None,
        key_separator,
        item_separator,
        sort_keys,
        False,
        True,
    )

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


_PLAIN = r"^[ !#-\[\]-~]*$"
"""Printable ASCII without ``"`` and ``\\``: a string :func:`json.dumps` writes as it is."""


def objects_text(column: pl.Series, dumps: Callable[[Any], str] | None = None) -> pl.Series:
    """The text ``dumps`` (default :func:`json.dumps`) writes for each row of a struct column,
    as a dict of its fields in their order; a null row is the empty object ``{}``.

    Written by polars expressions for json.dumps' own separators: integer fields as their
    digits, booleans, null fields as ``null``, strings of :data:`_PLAIN` characters quoted
    as they are. A row with any other string (an escape or a non-ASCII character to write)
    and every row of another type of field, or of another ``dumps``, is written by ``dumps``
    itself: the text is always ``dumps(row)``'s, byte for byte."""
    if not isinstance(column.dtype, pl.Struct):
        raise TypeError(f"objects_text takes a struct column, not {column.dtype}")
    fields = column.dtype.fields
    whole = [f.dtype.is_integer() or f.dtype in (pl.Boolean, pl.String) for f in fields]
    if dumps is not None or not fields or not all(whole):
        write = dumps or json.dumps
        return pl.Series(
            column.name,
            [write({} if row is None else row) for row in column.to_list()],
            dtype=pl.String,
        )
    row = pl.col(column.name)
    parts: list[pl.Expr] = []
    plain = pl.lit(True)
    for i, field in enumerate(fields):
        value = row.struct.field(field.name)
        if field.dtype == pl.String:
            shown = pl.lit('"') + value + pl.lit('"')
            plain = plain & (value.is_null() | value.str.contains(_PLAIN))
        else:  # an integer's digits; a boolean's true or false
            shown = value.cast(pl.String)
        key = ("{" if i == 0 else ", ") + json.dumps(field.name) + ": "
        parts += [pl.lit(key), shown.fill_null(pl.lit("null"))]
    parts.append(pl.lit("}"))
    written = pl.when(row.is_null()).then(pl.lit("{}")).otherwise(pl.concat_str(parts))
    frame = column.to_frame().select(written.alias("text"), (row.is_null() | plain).alias("plain"))
    text = frame["text"]
    other = (~frame["plain"]).arg_true()
    if other.len():  # the few rows json.dumps escapes something in
        rows = column.gather(other).to_list()
        text = text.scatter(other, pl.Series([json.dumps(r) for r in rows], dtype=pl.String))
    return text.rename(column.name)
