"""The columnar ingest path for bulk reads (issue 20): records become store rows without a
model object per record.

An adapter's bulk read offers a *row mapper* beside its model mapper: it turns a raw record
into :class:`OrderRows` (the rows ``store._rows.order_rows`` would write for the model) or
returns None for a record it does not map exactly (unusual, or malformed). A page then
carries both: ``rows`` from the row mapper, and ``records``/``rejected`` from the model
mapper for what the row mapper passed on, so a malformed record is quarantined with its
field path exactly as before, and nothing is dropped.

The store writes the rows in the page's transaction (:func:`store_page`), with the same
guards as :meth:`shopsync.store.Store.upsert`; an order it cannot write from rows alone (a
tombstone applies, or the stored version carries a hash of the older definition) goes back
through the model mapper and the row path in that same transaction, so a page is written
whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the "fast" extra is not installed
    _orjson = None  # type: ignore[assignment]

from shopsync._collector import collector_eased, collector_paused
from shopsync._instants import instant
from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage

__all__ = [
    "ColumnarLoop",
    "OrderRows",
    "RowsPage",
    "compact",
    "store_page",
    "taking_rows",
]


@dataclass(frozen=True)
class OrderRows:
    """One order's rows by table (``shop_id`` is the store's to add), and its raw record for
    the row path should the store hand it back."""

    id: str
    customer_id: str | None
    updated_at: int
    """Microseconds since the epoch, as stored."""
    tables: dict[str, list[dict[str, Any]]]
    packed: Mapping[str, Any] | bytes | Callable[[], Mapping[str, Any]]
    """The raw record, its JSON text (:func:`compact`), or a function that builds it again
    (a bulk read's, from the record's lines: cheaper than writing the text, issue 20): a
    page of parsed records kept until the page is written cost a bulk read more than their
    parsing (the collector walks them, and they crowd the CPU caches), while the store
    hands back only a few."""

    @property
    def raw(self) -> Mapping[str, Any]:
        """The raw record, as the model mapper takes it."""
        packed = self.packed
        if isinstance(packed, bytes):
            return json.loads(packed)  # type: ignore[no-any-return]
        return packed() if callable(packed) else packed


def compact(raw: Mapping[str, Any]) -> Mapping[str, Any] | bytes:
    """``raw`` as JSON text that reads back equal, by orjson when it is installed; ``raw``
    itself when it is not, or when the record holds what orjson does not write (an integer
    past 64 bits, a lone surrogate). A non-finite float (which only :func:`json.loads` reads)
    would come back as None: a mapper that accepts the record reads no such field."""
    if _orjson is None:
        return raw
    try:
        return _orjson.dumps(raw)
    except TypeError:  # orjson.JSONEncodeError
        return raw


_ORDER_HASH: list[Callable[[Mapping[str, Any]], str]] = []
""":func:`shopsync.store.content_hash.order_hash`, once imported (an import statement run
for every order cost a twentieth of :func:`order_rows`)."""


def _order_hash() -> Callable[[Mapping[str, Any]], str]:
    from shopsync.store.content_hash import order_hash  # (the store, when first needed)

    _ORDER_HASH.append(order_hash)
    return order_hash


def order_rows(
    order: dict[str, Any],
    children: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
    raw: Mapping[str, Any] | bytes | Callable[[], Mapping[str, Any]],
) -> OrderRows | None:
    """An order row and its (line items, refunds, fulfilments) rows as :class:`OrderRows`,
    the order's ``content_hash`` set from them (:func:`shopsync.store.content_hash.order_hash`);
    None when a child's id comes twice: the store keys them by id, and the models' path
    quarantines the order with the reason."""
    order_hash = _ORDER_HASH[0] if _ORDER_HASH else _order_hash()
    lines, refunds, fulfillments = children
    for rows in children:
        if len(rows) > 1 and len({row["id"] for row in rows}) < len(rows):
            return None
    tables = {
        "orders": [order],
        "line_items": lines,
        "refunds": refunds,
        "fulfillments": fulfillments,
    }
    order["content_hash"] = order_hash(tables)
    return OrderRows(str(order["id"]), order["customer_id"], order["updated_at"], tables, raw)


@dataclass(frozen=True)
class RowsPage(Page[Any]):
    """A page with rows besides records: ``fallback`` maps a raw record the store returns."""

    rows: Sequence[OrderRows] = ()
    fallback: Callable[[Any], Any] | None = None


class ColumnarLoop(PageLoop[Any]):
    """:class:`~shopsync.adapter_kit.PageLoop` trying ``row_mapper`` before the model mapper."""

    def __init__(
        self,
        resource: str,
        mapper: Callable[[Any], Any],
        row_mapper: Callable[..., OrderRows | None],
        **options: Any,
    ) -> None:
        super().__init__(resource, mapper, **options)
        self._fallback = mapper
        self._row_mapper = row_mapper
        self._rows: list[OrderRows] = []
        self._newest = -1

    @property
    def pending(self) -> int:
        return super().pending + len(self._rows)

    def add(self, raw: Any, packed: Callable[[], Mapping[str, Any]] | None = None) -> None:
        """Map ``raw``; ``packed``, when given, builds it again (the row mapper's second
        argument, kept in :attr:`OrderRows.packed` instead of the record's JSON text)."""
        rows = self._row_mapper(raw) if packed is None else self._row_mapper(raw, packed)
        if rows is None:
            super().add(raw)
            return
        self._rows.append(rows)
        if rows.updated_at > self._newest:
            self._newest = rows.updated_at  # into ``high_water`` by :meth:`page`

    def run(self, pages: Iterable[RawPage]) -> Iterator[Page[Any]]:
        """:meth:`PageLoop.run` with the collector paused while a page is mapped
        (:func:`~shopsync._collector.collector_paused`): a page's rows are some 60 young
        containers an order, kept until the page is written, and hold no cycle. The
        collector is eased while the read runs (:func:`~shopsync._collector.collector_eased`:
        young collections are rarer).
        ``pages`` is closed when the read ends, however it ends: a traceback kept after an
        error in a page's mapping holds this frame, and a source reading ahead on a thread
        (``shopsync_woocommerce._windows.in_windows``) would wait for good."""
        try:
            with collector_eased():
                for raw_page in pages:
                    with collector_paused():
                        for raw in raw_page.rows:
                            self.add(raw)
                        page = self.page(
                            cursor=raw_page.cursor,
                            last=raw_page.last,
                            complete_to=raw_page.complete_to,
                        )
                    yield page
                    if raw_page.last:
                        return
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def page(
        self,
        *,
        cursor: str | None = None,
        last: bool = False,
        complete_to: dt.datetime | None = None,
    ) -> Page[Any]:
        if self._newest >= 0:  # the newest row's stamp, made once a page, not once an order
            stamp = instant(self._newest)
            if self.high_water is None or stamp > self.high_water:
                self.high_water = stamp
        plain = super().page(cursor=cursor, last=last, complete_to=complete_to)
        page = RowsPage(
            records=plain.records,
            rejected=plain.rejected,
            cursor=plain.cursor,
            high_water=plain.high_water,
            stats=plain.stats,
            rows=self._rows,
            fallback=self._fallback,
        )
        self._rows = []
        return page


def store_page(store: Any, platform: str, shop: str, page: Page[Any], conn: Any) -> Any:
    """Write a page's rows (none for a plain page) in ``conn``'s transaction; the
    :class:`~shopsync.store.UpsertResult` of the rows and of what went back to the row path."""
    from shopsync.store import UpsertResult
    from shopsync.store.fast_rows import upsert_order_rows

    rows = getattr(page, "rows", ())
    if not rows:
        return UpsertResult()
    with collector_paused():
        result, returned = upsert_order_rows(store, conn, platform, shop, list(rows))
    if returned:
        fallback = getattr(page, "fallback", None)
        assert fallback is not None, "a page with rows names its fallback mapper"
        result += store.upsert([fallback(r.raw) for r in returned], conn=conn)
    return result


@contextmanager
def taking_rows(adapter: Any) -> Iterator[None]:
    """Within the block, an adapter that can (``takes_rows``) pages bulk reads with rows. A
    reader outside (a user's loop over ``read_orders``) keeps getting models in ``records``."""
    if not hasattr(adapter, "takes_rows"):
        yield
        return
    before = adapter.takes_rows
    adapter.takes_rows = True
    try:
        yield
    finally:
        adapter.takes_rows = before
