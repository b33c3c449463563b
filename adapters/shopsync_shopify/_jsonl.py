"""Result lines of a bulk operation read as bytes, for :mod:`._bulk`: parsed (by orjson when
the ``fast`` extra is installed, always to what :func:`json.loads` gives), and what routing
and grouping need read off a line without parsing it (a child's parent, a root's ids)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the "fast" extra is not installed
    _orjson = None  # type: ignore[assignment]


def _loads(raw: bytes) -> Any:
    """A result line as :func:`json.loads` reads it, by orjson when it is installed (the
    ``fast`` extra: three to four times quicker, measured in benchmarks/ingest.py). What orjson
    refuses and json accepts (NaN, lone surrogates, a BOM) goes to json, and so does a line
    with a run of 19 digits or more: orjson 3.8 reads an integer past 64 bits as a float
    where json keeps it whole (tests/shopify/test_fast_orders.py). So the result never
    depends on whether orjson is there."""
    if _orjson is not None and _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return _orjson.loads(raw)
        except ValueError:
            pass
    return json.loads(raw)


def _loads_short(raw: bytes) -> Any:
    """:func:`_loads` for a line known to hold no run of 19 digits (its partition was
    checked at once, :func:`._bulk._partition`)."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except ValueError:
            pass
    return json.loads(raw)


_ESCAPE_U = re.compile(rb"\\u").search
"""Where a ``\\u`` escape is in a line (None: nowhere). Three times quicker than ``in`` on an
order line, whose many ``\\/`` each start a near match (issue 20)."""
_PARENT_KEY = b'"__parentId":"'
_PARENT_NAME = b'"__parentId"'
_PARENT_AT = len(_PARENT_KEY)
_ROOT_START = b'{"id":"'
_DIGITS = bytes.maketrans(b"0123456789", b"0000000000")
_LONG_NUMBER = b"0" * 19
"""19 digits in a row (every digit read as 0): ten times quicker to find than by a regex."""


def _parent_at_end(raw: bytes) -> str | None:
    """A child line's ``__parentId`` read off its end, without parsing the line: Shopify
    writes it as the last member (``..."__parentId":"gid:\\/\\/shopify\\/Order\\/1"}``).
    The bytes ``"__parentId":"`` can only be a key (inside a string the quotes are escaped)
    and a value closing the line with ``"}`` is the top-level object's last member, so this is
    what parsing would give. None when the line does not end so: it is parsed."""
    end = raw.rstrip()
    if not end.endswith(b'"}'):
        return None
    at = end.rfind(_PARENT_KEY)
    if at < 0:
        return None
    value = end[at + len(_PARENT_KEY) : -2].replace(b"\\/", b"/")
    if b'"' in value or b"\\" in value or not value.isascii():
        return None
    return value.decode()


def _tail_parent(raw: bytes) -> bytes | None:
    """A child line's ``__parentId`` off its end, as :func:`_parent_at_end` reads it
    but kept in bytes (most child lines end so; None for a line that does not)."""
    if raw[-3:] != b'"}\n':
        return None
    at = raw.rfind(_PARENT_KEY)
    if at < 0:
        return None
    value = raw[at + _PARENT_AT : -3].replace(b"\\/", b"/")
    # find, not "in": bytes "in" tries the needle as an integer first, an exception made
    # and dropped each time (CPython 3.11): twice the cost
    return value if value.find(b'"') < 0 and value.find(b"\\") < 0 else None


_ID_KEY = b'"id":"'
"""An ``id`` member with a string value; :func:`_root_ids` takes it when the value has no
escape but ``\\/``."""


def _root_ids(raw: bytes) -> list[bytes] | None:
    """The ids of a root line, its own first, read off its bytes as
    :func:`._bulk_route._split` notes them parsed (the root's and those of the objects
    embedded in it); None when the line is not plainly one: it is parsed. (With msgspec,
    ``_bulk_structs.root_ids`` reads a line first, five times quicker; this reads what it
    refuses.) Every ``"id"`` of the line must be such a member (the key ``"id"`` cannot be
    inside a string, where its quotes are escaped): so no embedded id is missed. Ids of
    other nested objects (the customer's) are noted too: a child naming one as parent goes
    to that root's partition and is rejected there, as it is here. Split off the bytes
    rather than found by a regex: about 1.5 us a root line less."""
    if not raw.startswith(_ROOT_START) or _PARENT_NAME in raw or _ESCAPE_U(raw):
        return None
    found = raw.split(_ID_KEY)
    if len(found) - 1 != raw.count(b'"id"'):
        return None
    ids = []
    for tail in found[1:]:
        end = tail.find(b'"')
        value = tail[:end].replace(b"\\/", b"/")
        if end < 0 or b"\\" in value:  # no end, or another escape (then a quote may be one)
            return None
        ids.append(value)
    return ids


def _number(gid: Any) -> tuple[int, str]:
    """An id's sort key: its number (0 when its tail is not digits), then its text."""
    text = str(gid or "")
    tail = text.rsplit("/", 1)[-1]
    return (int(tail), text) if tail.isdigit() else (0, text)


def _parse_lines(kids: list[bytes], loads: Callable[[bytes], Any]) -> list[Any]:
    """The lines ``kids`` parsed, one a line. Not by one call over them joined by commas:
    lines that are not one object each (an unclosed object, the member closing it, two
    objects on a line) read so as one value a line where alone each fails
    (tests/shopify/test_bulk_structs_diff.py), and one a line was no slower (orjson 3.8: 1.3 us
    for three 150-byte lines either way, 4.4 us a line against 4.9 joined for three 1.5 kB)."""
    return [loads(raw) for raw in kids]
