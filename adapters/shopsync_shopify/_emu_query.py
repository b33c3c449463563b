"""Shopify's search syntax and cursors, for the emulator's GraphQL, REST and bulk reads.

The ``query:`` argument filters with Shopify's search syntax
(https://shopify.dev/docs/api/usage/search-syntax); connections page by opaque cursors that
encode the sort key, tie-broken by id, so records with equal timestamps page stably
(https://shopify.dev/docs/api/usage/pagination-graphql).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import operator
import re
from collections.abc import Callable
from typing import Any

from shopsync_shopify._graphql import QueryError

__all__ = [
    "Lazy",
    "Reversed",
    "compared",
    "decode_key",
    "encode_key",
    "parse_when",
    "search_filter",
    "sort_key",
]

_SEARCH_TERM = re.compile(r"""(\w+):(>=|<=|>|<|=)?('[^']*'|"[^"]*"|\S+)""")


def parse_when(text: str) -> dt.datetime:
    text = text.strip().strip("'\"")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def search_filter(query: str | None) -> Callable[[Any], bool] | None:
    """Shopify's search syntax, the part syncs use: ``updated_at:>'…' AND id:>=5``.

    Terms are ANDed; fields ``updated_at``, ``created_at``, ``processed_at`` and ``id`` with
    ``:``, ``:>``, ``:>=``, ``:<``, ``:<=``. Unknown fields are ignored (Shopify warns
    about them in ``extensions.search`` rather than failing).
    """
    if not query or not query.strip():
        return None
    tests: list[Callable[[Any], bool]] = []
    for name, op, raw in _SEARCH_TERM.findall(query):
        if name in ("updated_at", "created_at", "processed_at"):
            bound: Any = parse_when(raw)
            get: Callable[[Any], Any] = _attribute(name)
        elif name == "id":
            bound = int(raw.strip("'\""))
            get = lambda r: int(r.id) if r.id.isdigit() else -1  # noqa: E731
        else:
            continue
        compare = {
            ">": operator.gt,
            ">=": operator.ge,
            "<": operator.lt,
            "<=": operator.le,
            "=": operator.eq,
            "": operator.eq,
        }[op]
        tests.append(compared(get, compare, bound))
    if not tests:
        return None
    return lambda r: all(t(r) for t in tests)


def _attribute(name: str) -> Callable[[Any], Any]:
    return lambda r: getattr(r, name, None)


def compared(
    get: Callable[[Any], Any], compare: Callable[[Any, Any], Any], bound: Any
) -> Callable[[Any], bool]:
    """``compare(get(r), bound)``, false where the record lacks the value."""
    return lambda r: (v := get(r)) is not None and bool(compare(v, bound))


def _id_key(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def sort_key(record: Any, by: str) -> tuple[Any, ...]:
    if by == "id":
        return (_id_key(record.id),)
    return (getattr(record, by), _id_key(record.id))


def encode_key(key: tuple[Any, ...]) -> str:
    parts = [
        k.isoformat() if isinstance(k, dt.datetime) else list(k) if isinstance(k, tuple) else k
        for k in key
    ]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_key(token: str, by: str) -> tuple[Any, ...]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if by == "id":
            return (tuple(parts[0]),)
        return (dt.datetime.fromisoformat(parts[0]), tuple(parts[1]))
    except (ValueError, TypeError, IndexError, KeyError):
        raise QueryError(
            f"Invalid cursor for current pagination sort: {token!r}", "BAD_REQUEST"
        ) from None


class Lazy(dict):  # type: ignore[type-arg]
    """A record rendered only when the executor first reads it."""

    def __init__(self, renderer: Callable[[Any], dict[str, Any]], record: Any) -> None:
        super().__init__()
        self._renderer, self._record, self._done = renderer, record, False

    def _load(self) -> None:
        if not self._done:
            self.update(self._renderer(self._record))
            self._done = True

    def get(self, key: Any, default: Any = None) -> Any:
        self._load()
        return super().get(key, default)


class Reversed:
    """Inverts ordering, for bisecting a list sorted descending."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: Reversed) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reversed) and self.key == other.key
