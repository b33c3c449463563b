"""Bulk reads for :class:`~shopsync_shopify.adapter.ShopifyAdapter`: run, poll, download and
reassemble a bulk operation's JSONL result.

What Shopify does since API version 2026-01 (sources in :mod:`._emu_bulk`): the file is
*ungrouped* by default, each nested connection's nodes on lines of their own naming their
parent in ``__parentId``, in no guaranteed order; up to five bulk queries run at once; a
FAILED operation offers ``partialDataUrl``; the signed result URL expires (querying the
operation again answers a fresh one).

Reassembly without holding the file in memory: the result is spooled to a temporary file;
a file larger than ``bulk_partition_bytes`` (32 MiB by default) is routed, some megabytes of
lines at a time, into partition files by a hash of the root record's id (a child of an
embedded object waits in a bucket file until every root has noted its embedded ids,
:func:`._bulk_route.route`). Each partition is then read as bytes: children are grouped
under their parent's id (read off the line's end, not parsed, :mod:`._jsonl`), and root by
root in id order the root is parsed, its children parsed and attached, and the record
mapped.
So a line is parsed once (a root twice when the file was routed), and only a page of records
is ever held parsed. Memory is one partition's bytes, or one bucket's embedded ids.

A FAILED operation is run once more; if it fails again the read falls back to paging.
Its ``partialDataUrl`` is never applied: with ungrouped output a partial file may hold an
order without some of its lines, and a half-read order must never reach the store.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, TypeVar

import requests

from shopsync._collector import collector_eased, collector_paused
from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop
from shopsync.errors import AuthenticationError, PlatformError, TransportError
from shopsync.http import redact_url
from shopsync.ingest_columns import ColumnarLoop, OrderRows
from shopsync.models import Customer, Order, Product
from shopsync_shopify import queries
from shopsync_shopify._bulk_route import _BLOCK, _EMBEDDED, partitions, route
from shopsync_shopify._checkouts import CheckoutTap
from shopsync_shopify._fast_orders import PREBUILT, order_tables
from shopsync_shopify._jsonl import (
    _DIGITS,
    _ESCAPE_U,
    _LONG_NUMBER,
    _PARENT_NAME,
    _loads,
    _loads_short,
    _number,
    _parent_at_end,
    _parse_lines,
    _tail_parent,
)
from shopsync_shopify.mapping import (
    PLATFORM,
    customer_from_graphql,
    order_from_graphql,
    parse_gid,
)

try:  # compiled, typed decoding of bulk orders (issue 20 item 3.1)
    from shopsync_shopify import _bulk_structs, _struct_rows
except ImportError:  # pragma: no cover - msgspec is not installed: every order is parsed
    _bulk_structs = _struct_rows = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from shopsync.http import HttpClient

__all__ = ["BulkFailedError", "BulkReads", "record_gid"]

log = logging.getLogger("shopsync.shopify")

R = TypeVar("R", Customer, Order, Product)
_CHILD_FIELDS = {
    "LineItem": "lineItems",
    "RefundLineItem": "refundLineItems",
    "FulfillmentLineItem": "fulfillmentLineItems",
    "DiscountCodeApplication": "discountApplications",
    "AutomaticDiscountApplication": "discountApplications",
    "ManualDiscountApplication": "discountApplications",
    "ScriptDiscountApplication": "discountApplications",
}
_FIELDS = frozenset(_CHILD_FIELDS.values())
_NESTED = _FIELDS | frozenset(_EMBEDDED)


class BulkFailedError(PlatformError):
    """A bulk operation ended FAILED, CANCELED or EXPIRED (every attempt)."""


def _child_key(child: Mapping[str, Any]) -> tuple[int, str]:
    """Children in id order, as a paged connection returns them (refund lines by line)."""
    if child.get("id"):
        return _number(child["id"])
    return _number((child.get("lineItem") or {}).get("id"))


_LONGEST_WAIT = 30.0
"""The longest wait between two status polls of a long bulk operation, in seconds: an export
running for hours is seen finished within half a minute (a shorter ``bulk_poll_interval``
does not shorten it; a longer one is kept)."""


class BulkReads:
    """The bulk half of the adapter (a mixin: it uses the adapter's ``graphql``, ``http``,
    clock and sleep)."""

    bulk_partition_bytes: int = 32 << 20
    """Most bytes of result lines reassembled in memory at once."""
    bulk_attempts: int = 2
    bulk_order_page: int = 250
    """Orders a page of a bulk read holds (one transaction of the sync each)."""
    fast_ingest: bool = True
    """Bulk orders take the columnar ingest path (:mod:`shopsync.ingest_columns`) when the
    reader takes rows (``takes_rows``, set by the sync): pages carry store rows built without
    a model per order (:mod:`._fast_orders`). False: models only (the row path)."""
    takes_rows: bool = False

    if TYPE_CHECKING:  # what the mixin uses of ShopifyAdapter (adapter.py)
        shop: str
        api_version: str
        http: HttpClient
        bulk_poll_interval: float
        _sleep: Callable[[float], None]
        _clock: Callable[[], float]

        def graphql(
            self, query: str, variables: Mapping[str, Any] | None = None, *, requested: float = 0
        ) -> dict[str, Any]: ...

        def _page_stats(self) -> dict[str, int]: ...

    def backfill_orders(
        self,
        updated_since: dt.datetime | None = None,
        *,
        page_size: int | None = None,
        timeout: float = 3600.0,
    ) -> Iterator[Page[Order]]:
        """Every order (updated at or after ``updated_since``) through one bulk operation;
        raises :class:`BulkFailedError` when it fails every attempt."""
        search = ""
        if updated_since is not None:
            since = updated_since.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
            search = f"query: \"updated_at:>='{since}'\","
        inner = queries.for_version(queries.BULK_ORDERS, self.api_version)
        inner = inner.replace("QUERY_ARG", search)
        op_id, url = self._run_bulk(inner, timeout)
        rows = order_tables if self.fast_ingest and self.takes_rows else None
        size = page_size or self.bulk_order_page
        tap = CheckoutTap()  # the checkouts the orders were placed from (checkoutToken)
        mapper, rows = tap.mapped(self._order), tap.mapped(rows) if rows is not None else None
        return tap.pages(self._bulk_pages(op_id, url, size, "orders", mapper, rows))

    def backfill_customers(
        self, *, page_size: int = 1000, timeout: float = 3600.0
    ) -> Iterator[Page[Customer]]:
        """Every customer through one bulk operation (a customer has no child lines)."""
        op_id, url = self._run_bulk(queries.BULK_CUSTOMERS.replace("QUERY_ARG", ""), timeout)
        return self._bulk_pages(op_id, url, page_size, "customers", self._customer)

    def _order(self, node: Mapping[str, Any]) -> Order:
        return order_from_graphql(node, shop=self.shop)

    def _customer(self, node: Mapping[str, Any]) -> Customer:
        return customer_from_graphql(node, shop=self.shop)

    def _run_bulk(self, inner: str, timeout: float) -> tuple[str, str | None]:
        """Run ``inner`` to completion: the operation id and its result URL (None when the
        query matched nothing). A failed operation is run again, up to ``bulk_attempts``."""
        for attempt in range(1, self.bulk_attempts + 1):
            op_id, node = self._run_bulk_once(inner, timeout)
            if node["status"] == "COMPLETED":
                return op_id, node.get("url")
            message = (
                f"bulk operation {op_id} ended {node['status']} ({node.get('errorCode')}), "
                f"attempt {attempt} of {self.bulk_attempts}"
            )
            log.warning(
                "%s; %s objects were written before it ended (partial data is not applied)",
                message,
                node.get("objectCount"),
            )
        raise BulkFailedError(message, platform=PLATFORM)

    def _run_bulk_once(self, inner: str, timeout: float) -> tuple[str, dict[str, Any]]:
        deadline = self._clock() + timeout
        while True:
            payload = self.graphql(queries.BULK_RUN, {"query": inner}, requested=10)["data"][
                "bulkOperationRunQuery"
            ]
            errors = payload.get("userErrors") or []
            if not errors:
                op_id = str(payload["bulkOperation"]["id"])
                break
            if (
                any("already in progress" in (e.get("message") or "") for e in errors)
                and self._clock() < deadline
            ):
                self._sleep(self.bulk_poll_interval)
                continue
            raise PlatformError(
                "bulk operation refused: " + "; ".join(str(e.get("message")) for e in errors),
                platform=PLATFORM,
            )
        started = self._clock()
        wait = min(0.2, self.bulk_poll_interval)  # small operations finish in a second or two
        while True:
            node = self._bulk_status(op_id)
            if node["status"] in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
                return op_id, node
            now = self._clock()
            if now >= deadline:
                raise PlatformError(
                    f"bulk operation {op_id} did not finish in {timeout}s", platform=PLATFORM
                )
            self._sleep(min(wait, deadline - now))
            # A poll costs milliseconds of CPU (a GraphQL request): at a fixed interval a long
            # operation's polls were a tenth of a 20k-order backfill's CPU (issue 20). The
            # wait grows to an eighth of the time run so far (at most _LONGEST_WAIT): seen
            # done at most that late.
            grown = min((self._clock() - started) / 8, _LONGEST_WAIT)
            wait = max(min(wait * 2, self.bulk_poll_interval), grown)

    def _bulk_status(self, op_id: str) -> dict[str, Any]:
        return dict(self.graphql(queries.BULK_STATUS, {"id": op_id}, requested=1)["data"]["node"])

    def _bulk_pages(
        self,
        op_id: str,
        url: str | None,
        page_size: int,
        resource: str,
        mapper: Callable[[Mapping[str, Any]], R],
        rows: Callable[[Any], OrderRows | None] | None = None,
    ) -> Iterator[Page[R]]:
        if url is None:
            return
        # The result URL is a signed storage URL: it must not receive the access token. The
        # file is saved first (and re-fetched if the transfer breaks), so a slow consumer
        # never holds the download open.
        spool = self._download(op_id, url)
        try:
            yield from self._assemble(spool, page_size, resource, mapper, rows)
        finally:
            spool.close()

    def _download(self, op_id: str, url: str) -> IO[bytes]:
        """The result file, spooled to disk. A refused URL (signed URLs expire) is replaced
        once by a freshly signed one from the operation itself."""

        def once(target: str) -> IO[bytes]:
            response = self.http.send_once("GET", target, stream=True)
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
            try:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    spool.write(chunk)
            except requests.RequestException:
                spool.close()
                raise TransportError(f"bulk result download broke: {redact_url(target)}") from None
            finally:
                response.close()
            spool.seek(0)
            return spool

        try:
            return self.http.call(lambda: once(url))
        except AuthenticationError:
            fresh = self._bulk_status(op_id).get("url")
            if not fresh or fresh == url:
                raise
            log.info("bulk result URL of %s expired; fetched a fresh one", op_id)
            return self.http.call(lambda: once(fresh))

    def _assemble(
        self,
        spool: IO[bytes],
        page_size: int,
        resource: str,
        mapper: Callable[[Mapping[str, Any]], R],
        rows: Callable[[Any], OrderRows | None] | None = None,
    ) -> Iterator[Page[R]]:
        spool.seek(0, os.SEEK_END)
        parts = partitions(spool.tell(), self.bulk_partition_bytes)
        spool.seek(0)
        # Not in updated_at order: only the last page carries the high-water mark.
        options: dict[str, Any] = {
            "record_id": record_gid,
            "ordered": False,
            "stats": self._page_stats,
        }
        loop: PageLoop[R] = (
            PageLoop(resource, mapper, **options)
            if rows is None
            else ColumnarLoop(resource, mapper, rows, **options)
        )
        # pages are written while the read waits: at Python's threshold the collector
        # walked each page's rows again and again (7 us an order of a backfill, issue 20)
        with collector_eased():
            if parts == 1:  # the whole file is one partition: no routing pass
                yield from _partition(spool, page_size, loop)
            else:
                files: list[IO[bytes]] = [tempfile.TemporaryFile() for _ in range(parts)]  # noqa: SIM115 - closed below
                try:
                    route(spool, files, loop)
                    for part in files:
                        part.seek(0)
                        yield from _partition(part, page_size, loop)
                finally:
                    for part in files:
                        part.close()
            if loop.pending or loop.high_water is not None:
                yield loop.page(last=True)


def _partition(lines: IO[bytes], page_size: int, loop: PageLoop[Any]) -> Iterator[Page[Any]]:
    """The records of one partition's lines, each with its children attached, into ``loop``.

    Lines stay bytes until their record is mapped: a child is grouped under its parent's
    id (read off the line's end, :func:`_parent_at_end`), a root is parsed when its turn
    comes, then its children. So each line is parsed once and only a page's records are
    ever objects (a partition of parsed lines kept the garbage collector walking them:
    three quarters of the parse time, measured in benchmarks/ingest.py)."""
    roots: list[bytes] = []
    children: dict[str, list[bytes]] = {}
    columnar = loop if isinstance(loop, ColumnarLoop) else None
    typed = columnar is not None and _bulk_structs is not None
    # Typed structs read most orders, and the few parsed check their own lines (_loads):
    # the check below copies each block twice (joined, translated), into memory mapped
    # afresh each time: 19 us an order of 110 (20k orders, 31,000 page faults; issue 20)
    loads = _loads if typed else _loads_short  # unless a block holds 19 digits in a row (a
    # line ends with "}\n": no run goes on from one line to the next): one check a block
    with collector_paused():
        for block in iter(lambda: lines.readlines(_BLOCK), []):
            if loads is _loads_short and _LONG_NUMBER in b"".join(block).translate(_DIGITS):
                loads = _loads
            _group(block, roots, children)
    # In id order (a root line begins with its id: the query asks for it first): pages of
    # neighbouring ids write near one another in every table keyed by order id, where the
    # file's order (shuffled since 2026-01) spread each page over the whole of every index
    # and made a page's commit cost grow with the store (issue 20). Only speed depends on it.
    roots.sort()
    judged: set[str] = set()  # parents whose children a root took (each copy of a root
    # written twice takes them all: whichever copy the store keeps has its lines)
    at = 0
    while at < len(roots):
        with collector_paused():  # a page's work, not the reader's handling of it
            while at < len(roots) and loop.pending < page_size:
                line = roots[at]
                at += 1
                if typed and columnar is not None:
                    built = _decoded(line, children)
                    if built is not None:  # the children it took were judged
                        judged.update(built[1])
                        columnar.add(built[0])
                        continue
                root = loads(line)
                taken: list[tuple[str, list[bytes]]] = []
                if children:
                    _attach(root, children, loop, taken, judged, loads)
                if columnar is not None:  # the record again from its lines, should the store
                    # hand it back (cheaper than its JSON text, which was 5% of a backfill)
                    columnar.add(root, packed=functools.partial(_reassemble, line, taken))
                else:
                    loop.add(root)
            page = loop.page() if loop.pending >= page_size else None
        if page is not None:
            yield page
    for parent, kids in children.items():
        if parent in judged:
            continue
        # a lone surrogate (JSON's \ud800) as the routing names it: a store encodes the reason
        shown = parent.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        for raw in kids:
            text = raw.decode("utf-8", "replace").strip()
            loop.reject(text, f"bulk line without a known parent ({shown})")


def _decoded(
    line: bytes, children: dict[str, list[bytes]]
) -> tuple[dict[Any, Any], list[str]] | None:
    """The root ``line`` and its children as store rows built from typed structs
    (:mod:`._bulk_structs`, :mod:`._struct_rows`), wrapped as a node the row mapper hands on
    (:data:`._fast_orders.PREBUILT`), and the parents whose children it took; None when the
    order takes the parsed path (nothing was taken or judged)."""
    decoded = _bulk_structs.decode(line, children)
    if decoded is None:
        return None
    packed = functools.partial(_reassemble, line, decoded.taken)
    rows = _struct_rows.struct_tables(decoded, packed)
    if rows is None:
        return None
    order = decoded.order
    node = {"checkoutToken": order.checkoutToken, "cartToken": order.cartToken, PREBUILT: rows}
    return node, [pid for pid, _ in decoded.taken]


def _group(block: list[bytes], roots: list[bytes], children: dict[str, list[bytes]]) -> None:
    """The root lines of ``block`` into ``roots``, its child lines under their parent's id
    into ``children`` (read off the line's end, as :func:`_parent_at_end`)."""
    for raw in block:
        value = _tail_parent(raw)  # most child lines
        parent = value.decode() if value is not None and value.isascii() else None
        if parent is None:
            if raw.find(_PARENT_NAME) < 0 and _ESCAPE_U(raw) is None:  # a root (or blank) line
                if raw and not raw.isspace():
                    roots.append(raw)
                continue
            parent = _parent_at_end(raw)
            if parent is None:  # maybe a member named __parentId elsewhere
                line = _loads(raw)
                if "__parentId" not in line:
                    roots.append(raw)
                    continue
                parent = str(line["__parentId"])  # the line stays bytes
        kids = children.get(parent)
        if kids is None:
            children[parent] = [raw]
        else:
            kids.append(raw)


def _reassemble(root: bytes, taken: list[tuple[str, list[bytes]]]) -> dict[str, Any]:
    """A record as :func:`_partition` assembled it, from its root line and the child lines
    :func:`_attach` took for it (what it rejected then was rejected then)."""
    node: dict[str, Any] = _loads(root)
    _attach(node, dict(taken), _Unheard(), [], set())
    return node


class _Unheard:
    """A loop that takes no rejection: :func:`_reassemble`'s lines were judged once."""

    def reject(self, raw: str, reason: str) -> None:
        pass


def _attach(
    obj: dict[str, Any],
    children: dict[str, list[bytes]],
    loop: PageLoop[Any] | _Unheard,
    taken: list[tuple[str, list[bytes]]],
    judged: set[str],
    loads: Callable[[bytes], Any] = _loads,
) -> None:
    """Put the children waiting for ``obj`` (by its id) and for the objects embedded in it
    (refunds, fulfilments) into their lists, in id order, and theirs into them; what was
    taken, by parent id, into ``taken``. The children stay in ``children`` for another copy
    of ``obj`` (a root line written twice); ``judged`` holds the parents whose children were
    judged already (a line of unknown kind is rejected once)."""
    holders = [obj]
    for key in _EMBEDDED:
        items = obj.get(key)
        if items:
            holders.extend(item for item in items if isinstance(item, dict))
    for holder in holders:
        gid = holder.get("id")
        pid = str(gid) if gid else ""
        kids = children.get(pid) if pid else None
        if kids is not None and all(pid != parent for parent, _ in taken):  # (no cycle)
            first = pid not in judged
            judged.add(pid)
            taken.append((pid, kids))
            for child in _parse_lines(kids, loads):
                child.pop("__parentId", None)
                field = _CHILD_FIELDS.get(child.get("__typename", ""), "")
                if not field:
                    if first:
                        loop.reject(json.dumps(child), "bulk line of unknown kind")
                    continue
                holder.setdefault(field, []).append(child)
                # anything to do for the child: children wait for its id, it embeds objects
                # (_EMBEDDED), or it carries a list to put in id order (cheaper asked than done)
                # (an empty list among them costs a call that does nothing)
                cid = child.get("id")
                if (cid and str(cid) in children) or not _NESTED.isdisjoint(child):
                    _attach(child, children, loop, taken, judged, loads)
        for field in holder.keys() & _FIELDS:
            items = holder[field]
            if isinstance(items, list) and len(items) > 1:
                items.sort(key=_child_key)


def record_gid(node: Any) -> str | None:
    """The numeric id of a quarantined node (None when it has no usable one)."""
    return parse_gid(node.get("id"))
