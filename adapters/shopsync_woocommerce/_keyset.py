"""Keyset paging of a WooCommerce collection on its modification date (orders, products):
:class:`Keyset`, one read over a window of modification time."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from shopsync.adapter_kit import RawPage
from shopsync.errors import PlatformError
from shopsync_woocommerce._transport import RestTransport
from shopsync_woocommerce.mapping import parse_date

__all__ = ["RESTARTS", "Keyset", "shift", "stamp"]


def stamp(raw: Any) -> str:
    """A row's modification time as WooCommerce writes it (sortable as text)."""
    if not isinstance(raw, dict):
        return ""
    return str(raw.get("date_modified_gmt") or raw.get("date_created_gmt") or "")


def shift(value: str, seconds: int) -> str:
    try:
        moved = parse_date(value) + dt.timedelta(seconds=seconds)
    except ValueError:
        return value
    return moved.strftime("%Y-%m-%dT%H:%M:%S")


RESTARTS = 3
"""The most times a crowded second is read again from its start (its rows moved under the
read): a database free to return rows of one second in any order (MySQL without a second
sort key) must not keep the read from ending."""


class Keyset:
    """Keyset paging on the modification date: each request asks for what changed after the
    last page (``orderby=modified``), so a record saved during the read moves to the end and
    is read again instead of shifting the pages under the reader. WooCommerce's filter is
    strict and to the second, so each request re-includes the last second (rows already read
    are skipped by id); a second holding more than a page of records is read inside a
    one-second window before moving past it, by ``offset``, each page from the last row read
    (not found there: the second changed under the read, which starts it again).

    The read covers the seconds after ``after`` (all when None) up to ``before`` included
    (no end when None), through ``modified_after``/``modified_before``
    (``WC_REST_Orders_V2_Controller::get_collection_params``, served as :mod:`._emu_rest`
    says): :mod:`._windows` bounds a read and reads the rest beside it.
    ``resume`` is where the read is complete up to (included), the ``modified_after`` a read
    resuming from the last page would send; ``newest`` the stamp of the last row read;
    ``pages`` the ``X-WP-TotalPages`` of the first answer."""

    def __init__(
        self,
        transport: RestTransport,
        resource: str,
        base: Mapping[str, str],
        after: str | None,
        before: str | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self._transport = transport
        self.resource = resource
        self.base = base
        self.after = after
        self.before = before
        self._prepare = prepare
        self.resume = after
        self.newest: str | None = None
        self.pages: int | None = None
        self.finished = False
        self._crowded: str | None = None  # a crowded second, read by offset
        self._crowded_read = 0  # rows of the crowded second read, in its order
        self._crowded_last: str | None = None  # the id of the last of them
        self._restarts = 0  # of the crowded second
        self._done_at: dict[str, str] = {}  # id -> stamp of rows already read at the boundary

    def __iter__(self) -> Keyset:
        return self

    def __next__(self) -> RawPage:
        while not self.finished:
            page = self._next()
            if page is not None:
                return page
        raise StopIteration

    def _next(self) -> RawPage | None:
        if self._prepare is not None:
            self._prepare()
            self._prepare = None
        if self._crowded is None:
            params = {**self.base, "page": "1"}
            if self.after:
                params["modified_after"] = self.after
            if self.before:
                params["modified_before"] = shift(self.before, 1)
            rows, pages = self._transport._list(self.resource, params)
            if self.pages is None:
                self.pages = pages
            stamps = [stamp(raw) for raw in rows]
            full = len(rows) >= int(self.base["per_page"])
            if self.before and stamps and stamps[-1] > self.before:
                rows, stamps = _upto(rows, stamps, self.before)
                full = False
            if full and stamps[0] == stamps[-1]:
                self._crowded, self._crowded_read = stamps[0], 0  # one second: read it through
                self._restarts = 0
                return None
            fresh = self._fresh(rows, stamps)
            if rows:
                last = self.newest = stamps[-1]
                self._done_at = {_key(r): t for r, t in zip(rows, stamps, strict=True) if t == last}
                onward = shift(last, -1)
                if full and self.after is not None and onward <= self.after:
                    raise _ignored(self.resource, self.after)
                self.after = onward
            self.finished, self.resume = not full, self.after
        else:
            # by offset, each page from the last row read: an order saved (or trashed) out of
            # the second moves the rest up a place, and would be stepped over by page numbers
            size = max(2, int(self.base["per_page"]))  # the row read, and one more at least
            at = max(0, self._crowded_read - 1)
            params = {
                **self.base,
                "per_page": str(size),
                "offset": str(at),
                "modified_after": shift(self._crowded, -1),
                "modified_before": shift(self._crowded, 1),
            }
            rows, _ = self._transport._list(self.resource, params)
            stamps = [stamp(raw) for raw in rows]
            end = len(rows) < size
            if stamps and stamps[-1] > self._crowded:
                rows, stamps = _upto(rows, stamps, self._crowded)
                end = True
            moved = at > 0 and (not rows or _key(rows[0]) != self._crowded_last)
            moved = moved and self._restarts < RESTARTS
            fresh = self._fresh(rows, stamps)
            self._done_at.update((_key(r), t) for r, t in zip(rows, stamps, strict=True))
            self.resume = shift(self._crowded, -1)
            if rows:
                self.newest = self._crowded
            if moved:  # the second changed under the read: from its start again
                self._crowded_read, self._crowded_last = 0, None
                self._restarts += 1
            elif end:  # strictly after that second
                self.after, self._crowded, self._done_at = self._crowded, None, {}
            else:
                self._crowded_read, self._crowded_last = at + len(rows), _key(rows[-1])
        cursor = json.dumps({"resource": self.resource, "since": self.resume})
        return RawPage(fresh, cursor=cursor, last=self.finished)

    def window(self, after: str, before: str | None) -> Keyset:
        """A read of the same records over another window (:mod:`._windows`)."""
        return Keyset(self._transport, self.resource, self.base, after, before)

    def newest_stamp(self) -> str | None:
        """The newest row's stamp in this read's window as it stands (one request, of one
        row); None when it holds none."""
        params = {**self.base, "page": "1", "per_page": "1", "order": "desc"}
        params["_fields"] = "id,date_modified_gmt,date_created_gmt"
        if self.after:
            params["modified_after"] = self.after
        if self.before:
            params["modified_before"] = shift(self.before, 1)
        rows, _ = self._transport._list(self.resource, params)
        return stamp(rows[0]) if rows else None

    def _fresh(self, rows: list[Any], stamps: list[str]) -> list[Any]:
        done = self._done_at
        return [r for r, t in zip(rows, stamps, strict=True) if done.get(_key(r)) != t]


def _upto(rows: list[Any], stamps: list[str], end: str) -> tuple[list[Any], list[str]]:
    """The rows up to ``end`` included, with their stamps: a store that ignores
    ``modified_before`` (an older one, a plugin) answers past it, and the read of the window,
    or of the crowded second, ends there instead of reading on to the newest record."""
    kept = [(r, t) for r, t in zip(rows, stamps, strict=True) if t <= end]
    return [r for r, _ in kept], [t for _, t in kept]


def _ignored(resource: str, after: str) -> PlatformError:
    """A full page that does not move the read past ``after``: its rows are not all newer,
    so the store (or a cache or plugin in front of it) ignores ``modified_after``, and the
    read would ask for the same page for ever."""
    return PlatformError(
        f"{resource}: the store answered a full page of rows no newer than modified_after="
        f"{after}: it ignores the filter (a cache or a plugin in front of it?), so shopsync "
        "cannot page through it",
        platform="woocommerce",
    )


def _key(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, dict) else ""
