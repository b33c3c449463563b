"""The two ways :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter` pages through a
collection: keyset paging on the modification date (orders, products), and a page-numbered
full scan (customers, which have no modification filter). :mod:`._reads` says which
resource is read how, and why.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage, RequestCounter
from shopsync.errors import ConfigurationError
from shopsync.ingest_columns import ColumnarLoop, OrderRows
from shopsync.models import Customer, Order, Product
from shopsync_woocommerce._transport import AHEAD, RestTransport, wc_time
from shopsync_woocommerce.mapping import parse_date

__all__ = ["ModifiedPaging", "R", "one_ahead"]

R = TypeVar("R", Customer, Order, Product)


def _stamp(raw: Any) -> str:
    """A row's modification time as WooCommerce writes it (sortable as text)."""
    if not isinstance(raw, dict):
        return ""
    return str(raw.get("date_modified_gmt") or raw.get("date_created_gmt") or "")


def one_ahead(pages: Iterator[RawPage], depth: int = 2) -> Iterator[RawPage]:
    """``pages``, asked for in a thread up to ``depth`` pages ahead of the caller: the next
    request is on the wire while the caller maps and stores the current page (a keyset
    request needs only the rows before it), and with two ahead the store is not left idle
    while a page waits for a caller still busy with the one before. Nothing is asked past
    the last page; an error of the request is raised where its page would be. A reader that
    stops waits for the request on the wire, not for its retries (:data:`AHEAD`). While the
    thread runs, the process's switch interval is short (``page_commit.quick_switches``):
    the thread wakes with each answer needing the GIL back from the caller, busy mapping,
    and at Python's 5 ms it waited that long at every wake-up of a page's exchange (measured:
    10,000 orders stored, 3,100-3,750 orders/s at 5 ms, 4,000-4,500 at 0.5 ms, load 1.1-1.4)."""
    from shopsync.store.page_commit import quick_switches  # (SQLAlchemy: not at import)

    want = threading.Semaphore(depth)
    ready = threading.Semaphore(0)
    box: list[Any] = []  # (page or None at the end, error or None)
    stop = threading.Event()

    def run() -> None:
        AHEAD.stop = stop
        try:
            with quick_switches():
                while True:
                    want.acquire()
                    if stop.is_set():
                        return
                    page = next(pages, None)
                    box.append((page, None))
                    ready.release()
                    if page is None or page.last:
                        return
        except BaseException as exc:  # handed to the caller, who raises it
            box.append((None, exc))
            ready.release()
        finally:
            pages.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=run, name="shopsync-woocommerce-pages", daemon=True)
    thread.start()
    try:
        while True:
            ready.acquire()
            page, error = box.pop(0)
            if error is not None:
                raise error
            if page is None:
                return
            if not page.last:
                want.release()  # the next request goes out while this page is mapped
            yield page
            if page.last:
                return
    finally:
        stop.set()
        want.release()
        thread.join()


def _shift(stamp: str, seconds: int) -> str:
    try:
        moved = parse_date(stamp) + dt.timedelta(seconds=seconds)
    except ValueError:
        return stamp
    return moved.strftime("%Y-%m-%dT%H:%M:%S")


class ModifiedPaging(RestTransport):
    """Keyset and full-scan paging (a part of the adapter)."""

    overlap: dt.timedelta

    def _read_by_modified(
        self,
        resource: str,
        since: str | None,
        convert: Callable[[Any], R],
        prepare: Callable[[], None] | None = None,
        rows: Callable[[Any], OrderRows | None] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[Page[R]]:
        """``rows``: a row mapper trying each record first (the columnar ingest path), and
        the pages read one ahead (:func:`one_ahead`) as the mapping is then quick.
        ``fields``: the only keys of a record asked for (WordPress's ``_fields``)."""
        stats = RequestCounter(self.http.stats)
        pages = self._modified_pages(resource, since, prepare, fields)
        if rows is None:
            loop: PageLoop[R] = PageLoop(resource, convert, stats=stats)
            return loop.run(pages)
        return ColumnarLoop(resource, convert, rows, stats=stats).run(one_ahead(pages))

    def _modified_pages(
        self,
        resource: str,
        since: str | None,
        prepare: Callable[[], None] | None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[RawPage]:
        """Keyset paging on the modification date: each request asks for what changed after
        the last page (``orderby=modified``), so a record saved during the read moves to the
        end and is read again instead of shifting the pages under the reader. WooCommerce's
        filter is strict and to the second, so each request re-includes the last second
        (rows already read are skipped by id); a second holding more than a page of records
        is read by page number inside a one-second window before moving past it."""
        base = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "status": "any"}
        base["per_page"] = str(self.per_page)
        if fields:
            base["_fields"] = ",".join(fields)
        after = since
        window: str | None = None  # a crowded second, read by page number
        window_page = 1
        done_at: dict[str, str] = {}  # id -> stamp of rows already read at the boundary second

        def key(raw: Any) -> str:
            return str(raw.get("id")) if isinstance(raw, dict) else ""

        while True:
            if prepare is not None:
                prepare()
                prepare = None
            if window is None:
                params = {**base, "page": "1"}
                if after:
                    params["modified_after"] = after
                rows, _ = self._list(resource, params)
                stamps = [_stamp(raw) for raw in rows]
                full = len(rows) >= self.per_page
                if full and stamps[0] == stamps[-1]:
                    window, window_page = stamps[0], 1  # a page of one second: page through it
                    continue
                fresh = [r for r, t in zip(rows, stamps, strict=True) if done_at.get(key(r)) != t]
                if rows:
                    last = stamps[-1]
                    done_at = {key(r): t for r, t in zip(rows, stamps, strict=True) if t == last}
                    after = _shift(last, -1)
                finished, resume = not full, after
            else:
                params = {
                    **base,
                    "page": str(window_page),
                    "modified_after": _shift(window, -1),
                    "modified_before": _shift(window, 1),
                }
                rows, pages = self._list(resource, params)
                stamps = [_stamp(raw) for raw in rows]
                fresh = [r for r, t in zip(rows, stamps, strict=True) if done_at.get(key(r)) != t]
                done_at.update((key(r), t) for r, t in zip(rows, stamps, strict=True))
                resume = _shift(window, -1)
                if not rows or (
                    window_page >= pages if pages is not None else len(rows) < self.per_page
                ):
                    after, window, done_at = window, None, {}  # strictly after that second
                else:
                    window_page += 1
                finished = False
            cursor = json.dumps({"resource": resource, "since": resume})
            yield RawPage(fresh, cursor=cursor, last=finished)

    def _read_full_scan(
        self, resource: str, params: dict[str, str], convert: Callable[[Any], R | None]
    ) -> Iterator[Page[R]]:
        """Page-numbered scan of a collection without a modification filter. Its pages come
        in id order, so ``high_water`` is only reported with the last one: a resumed sync
        must not skip records of pages it never reached."""
        counter = RequestCounter(self.http.stats)
        loop: PageLoop[R] = PageLoop(resource, convert, ordered=False, stats=counter)

        def scan() -> Iterator[RawPage]:
            page = 1
            while True:
                rows, pages = self._list(
                    resource, {**params, "page": str(page), "per_page": str(self.per_page)}
                )
                done = not rows or (
                    page >= pages if pages is not None else len(rows) < self.per_page
                )
                yield RawPage(
                    rows, cursor=json.dumps({"resource": resource, "page": page}), last=done
                )
                page += 1

        return loop.run(scan())

    def _since(
        self, resource: str, updated_since: dt.datetime | None, cursor: str | None
    ) -> str | None:
        """The ``modified_after`` value of a fresh read, or of a resumed one (``cursor``)."""
        if cursor:
            try:
                state = json.loads(cursor)
                if state.get("resource") != resource or "since" not in state:
                    raise ValueError
                return state["since"]  # type: ignore[no-any-return]
            except (ValueError, TypeError, AttributeError):
                raise ConfigurationError(f"not a {resource} cursor of this adapter") from None
        if updated_since is None:
            return None
        # WooCommerce keeps whole seconds and compares strictly: step back one more second so
        # a record changed in the same second as ``updated_since`` is not filtered out.
        return wc_time(updated_since - self.overlap - dt.timedelta(seconds=1))
