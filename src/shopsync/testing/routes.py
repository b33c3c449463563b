"""One route table per emulator: every endpoint it serves, listed once, in one place.

moto keeps a service's URLs in one ``urls.py`` so a reader sees the whole surface at a
glance; an if-chain of paths hides it and lets two branches claim the same endpoint
silently. A :class:`RouteTable` is built from ``(method, pattern, handler)`` rows and
refuses a second row for the same method and pattern when it is built, not when a request
first trips over it.

Patterns are paths with ``{name}`` placeholders (one path segment, or part of one) or
``{name:regex}`` for a narrower match, e.g. ``/admin/api/{version}/{id:\\d+}.json``. Rows
are tried in order; a request no row matches goes to the table's ``fallback``, which
answers with the platform's own "no such route" shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shopsync.testing.server import Request, Response

__all__ = ["Handler", "Route", "RouteTable"]

Handler = Callable[["Request", Mapping[str, str]], "Response"]
"""Answers a request, given the values of the pattern's placeholders."""

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]+))?\}")


def _compile(pattern: str) -> re.Pattern[str]:
    out, at = [], 0
    for found in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[at : found.start()]))
        out.append(f"(?P<{found.group(1)}>{found.group(2) or '[^/]+'})")
        at = found.end()
    out.append(re.escape(pattern[at:]))
    return re.compile("".join(out))


@dataclass(frozen=True)
class Route:
    """``method`` + ``pattern`` -> ``handler``."""

    method: str
    pattern: str
    handler: Handler = field(repr=False)
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method != self.method.upper() or not self.method.isalpha():
            raise ValueError(f"an HTTP method is upper-case letters, not {self.method!r}")
        object.__setattr__(self, "regex", _compile(self.pattern))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.regex.fullmatch(path)
        return found.groupdict() if found is not None else None


class RouteTable:
    """The endpoints of one emulator; ``dispatch`` answers a request from them."""

    def __init__(self, routes: Iterable[Route], fallback: Callable[[Request], Response]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        self.fallback = fallback
        seen: set[tuple[str, str]] = set()
        for route in self.routes:
            key = (route.method, route.pattern)
            if key in seen:
                raise ValueError(f"two routes for {route.method} {route.pattern}")
            seen.add(key)

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)

    def __repr__(self) -> str:
        return f"RouteTable({len(self.routes)} routes)"

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The first route that serves ``method path``, with its placeholder values."""
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None

    def dispatch(self, request: Request) -> Response:
        found = self.match(request.method, request.path)
        if found is None:
            return self.fallback(request)
        route, params = found
        return route.handler(request, params)
