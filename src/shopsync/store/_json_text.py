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

__all__ = ["dumps_like"]


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
