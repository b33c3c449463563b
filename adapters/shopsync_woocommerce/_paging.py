"""The two ways :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter` pages through a
collection: keyset paging on the modification date (orders, products: :mod:`._keyset`, and
a sync's read of orders ahead on threads, in windows of time: :mod:`._windows`), and a
page-numbered full scan (customers, which have no modification filter). :mod:`._reads` says which
resource is read how, and why.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage, RequestCounter
from shopsync.errors import ConfigurationError
from shopsync.ingest_columns import ColumnarLoop, OrderRows
from shopsync.models import Customer, Order, Product
from shopsync_woocommerce._keyset import Keyset
from shopsync_woocommerce._transport import RestTransport, wc_time
from shopsync_woocommerce._windows import in_windows

__all__ = ["ModifiedPaging", "R"]

R = TypeVar("R", Customer, Order, Product)


class ModifiedPaging(RestTransport):
    """Keyset and full-scan paging (a part of the adapter)."""

    overlap: dt.timedelta
    parallel_reads: int

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
        the pages read ahead on threads (:func:`._windows.in_windows`, ``parallel_reads`` of
        them) as the mapping is then quick.
        ``fields``: the only keys of a record asked for (WordPress's ``_fields``)."""
        stats = RequestCounter(self.http.stats)
        pages = self._modified_pages(resource, since, prepare, fields)
        if rows is None:
            loop: PageLoop[R] = PageLoop(resource, convert, stats=stats)
            return loop.run(pages)
        source = in_windows(pages, self.parallel_reads)
        return ColumnarLoop(resource, convert, rows, stats=stats).run(source)

    def _modified_pages(
        self,
        resource: str,
        since: str | None,
        prepare: Callable[[], None] | None,
        fields: Sequence[str] | None = None,
    ) -> Keyset:
        """The keyset read of ``resource`` changed after ``since`` (:class:`Keyset`)."""
        base = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "status": "any"}
        base["per_page"] = str(self.per_page)
        if fields:
            base["_fields"] = ",".join(fields)
        return Keyset(self, resource, base, since, prepare=prepare)

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
