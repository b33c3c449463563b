"""What :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter` reads: customers, orders
and products, page by page, and orders moved to the trash.

How each resource is read:

- **orders** and **products**: incremental through ``modified_after`` with
  ``dates_are_gmt=true``, read in modification order with keyset paging (each request asks
  for what changed after the last page), so a record saved during the read is read again at
  the end instead of shifting the pages and making the reader skip another, and every page's
  ``high_water`` is a safe checkpoint. WooCommerce compares dates to the second and strictly,
  and a save that began before the read may commit a little after it, so the filter starts
  ``overlap`` (default 5 minutes) plus one second before ``updated_since``: a few records
  come twice, none is skipped.
  The order record lists its refunds without dates or lines, so before the orders the
  adapter reads ``/refunds`` (WooCommerce 9.0+: every refund created since the same instant,
  100 per request) and matches them to orders by their ``up`` link; an order whose refunds
  are not all there (an older store, a refund created during the read, an old refund on a
  recently changed order) gets its own ``/orders/<id>/refunds`` request. A variable product
  likewise fetches its ``/variations``.
- **customers**: ``/customers`` has no modification filter (woocommerce/woocommerce#41371), so
  every read is a full scan in id order; with ``updated_since`` each row's
  ``date_modified_gmt`` is compared first and only the changed ones are mapped and returned.
  Only the scan's last page reports a ``high_water``: an interrupted scan must start over.

Paging follows ``X-WP-TotalPages``. A record that cannot be mapped becomes a
:class:`~shopsync.adapter.Rejected` (reason + raw JSON) and the read goes on.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from shopsync.adapter import Deletion, Page
from shopsync.errors import InvalidRecordError, NotFoundError, ResponseError, ShopSyncError
from shopsync.ingest_columns import OrderRows
from shopsync.models import Customer, Order, Product
from shopsync_woocommerce._fast_orders import order_tables
from shopsync_woocommerce._paging import ModifiedPaging
from shopsync_woocommerce._transport import wc_time
from shopsync_woocommerce.mapping import (
    ORDER_FIELDS,
    PLATFORM,
    customer_from_rest,
    order_from_rest,
    parse_date,
    product_from_rest,
)

__all__ = ["WooReads"]

_ASKED = frozenset(ORDER_FIELDS)
WHOLE_REFETCHES = 50
"""The most refused records of a ``_fields`` read asked for again whole (one request each):
a shop refusing every order (a currency a plugin adds) costs at most this many requests
more, not one per order; the rest are quarantined as read (the same reason)."""
_KEPT_REFUNDS = 256
"""Records whose refunds are kept for a second mapper: more than a page (WooCommerce serves at
most 100 records a page), so a record the store hands back is still there."""


def _parent_order(refund: Any) -> str | None:
    """The order a ``/refunds`` record belongs to (``parent_id``, else its ``up`` link)."""
    if not isinstance(refund, dict):
        return None
    if refund.get("parent_id"):
        return str(refund["parent_id"])
    try:
        href = refund["_links"]["up"][0]["href"]
    except (KeyError, IndexError, TypeError):
        return None
    tail = str(href).rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.isdigit() else None


class WooReads(ModifiedPaging):
    """The read capability of the adapter (a part of it: ``__init__`` is the adapter's)."""

    site_timezone: dt.tzinfo | None
    consent_sources: tuple[str, ...]
    customer_role: str
    bulk_refunds: bool
    _bulk_refunds_missing: bool
    _currency: str | None
    fast_ingest: bool = True
    """Orders take the columnar ingest path (:mod:`shopsync.ingest_columns`) when the reader
    takes rows (``takes_rows``, set by the sync): pages carry store rows built without a model
    per order (:mod:`._fast_orders`). False: models only (the row path)."""
    takes_rows: bool = False
    request_fields: bool = True
    """Order pages ask for :data:`~.mapping.ORDER_FIELDS` only (WordPress's ``_fields``: some
    28 % fewer bytes to decode); a record they fail to map is asked for again whole, so
    the quarantine keeps all of it. False: whole records."""

    @property
    def currency(self) -> str:
        """The store currency (asked once, from ``/data/currencies/current``)."""
        if self._currency is None:
            body, _ = self._get("data/currencies/current", {})
            code = body.get("code") if isinstance(body, dict) else None
            if not isinstance(code, str) or not code:
                raise ResponseError(
                    "no currency code in /data/currencies/current", platform=PLATFORM
                )
            self._currency = code.upper()
        return self._currency

    def read_orders(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        since = self._since("orders", updated_since, cursor)
        index: dict[str, list[Any]] | None = None

        def prepare() -> None:
            nonlocal index
            index = self._refund_index(since) if self.bulk_refunds else None

        read: OrderedDict[int, tuple[Any, list[Any] | None]] = OrderedDict()

        def refunds_of(raw: Any) -> list[Any] | None:
            """Read once per record though both mappers may ask: a row refused at once, or
            one the store hands back to the model after its page's rows (a tombstone
            concerns it). The last records' refunds are kept, each with its record (so its
            ``id()`` is not reused while kept). Most orders list none: nothing to read or
            keep."""
            if type(raw) is dict and not raw.get("refunds"):
                return None
            found = read.get(id(raw))
            if found is not None and found[0] is raw:
                return found[1]
            refunds = self._refunds_of(raw, index)
            read[id(raw)] = (raw, refunds)
            if len(read) > _KEPT_REFUNDS:
                read.popitem(last=False)
            return refunds

        fields = ORDER_FIELDS if self.request_fields else None
        refetches = WHOLE_REFETCHES

        def convert(raw: Any) -> Order:
            try:
                return order_from_rest(
                    raw, shop=self.shop, refunds=refunds_of(raw), site_timezone=self.site_timezone
                )
            except InvalidRecordError:
                nonlocal refetches
                if fields is not None and refetches > 0 and self._made_whole(raw):
                    refetches -= 1
                raise

        def rows(raw: Any) -> OrderRows | None:
            return order_tables(raw, refunds_of(raw))

        fast = rows if self.fast_ingest and self.takes_rows else None
        yield from self._read_by_modified("orders", since, convert, prepare, fast, fields)

    def _made_whole(self, raw: Any) -> bool:
        """A record of a ``_fields`` page that goes to the quarantine, replaced in place by
        the whole record (``GET /orders/<id>``) when that holds the same value of every
        field read, so the quarantine holds what a whole read would (the mapping reads only
        :data:`~.mapping.ORDER_FIELDS`: the reason is the same). Kept as read when the
        record cannot be asked for (no id, gone, an error) or has changed meanwhile, and
        not asked for when it is already whole (a key outside the fields asked for). True:
        a request was made."""
        if type(raw) is not dict or type(raw.get("id")) is not int:
            return False
        if not _ASKED.issuperset(raw):
            return False  # a key not asked for: the store ignores _fields, the record is whole
        try:
            whole, _ = self._get(f"orders/{raw['id']}", {})
        except ShopSyncError:
            return True
        if isinstance(whole, dict) and all(k in whole and whole[k] == v for k, v in raw.items()):
            raw.clear()
            raw.update(whole)
        return True

    def _refund_index(self, since: str | None) -> dict[str, list[Any]] | None:
        """Refunds created since ``since`` (all when None) by order id, from ``/refunds``
        (WooCommerce 9.0+); None when the store has no such endpoint."""
        if self._bulk_refunds_missing:
            return None
        params = {"orderby": "id", "order": "asc", "dates_are_gmt": "true", "per_page": "100"}
        if since:
            params["after"] = since
        index: dict[str, list[Any]] = {}
        page = 1
        while True:
            try:
                rows, pages = self._list("refunds", {**params, "page": str(page)})
            except NotFoundError:  # rest_no_route before 9.0
                self._bulk_refunds_missing = True
                return None
            for refund in rows:
                parent = _parent_order(refund)
                if parent is not None:
                    index.setdefault(parent, []).append(refund)
            last = page >= pages if pages is not None else len(rows) < 100
            if not rows or last:
                return index
            page += 1

    def _refunds_of(self, raw: Any, index: dict[str, list[Any]] | None) -> list[Any] | None:
        """The order's refund records: from the bulk index when it has all the ids the order
        lists, else from ``/orders/<id>/refunds``; None for an order without refunds."""
        if not isinstance(raw, dict) or not raw.get("refunds") or not raw.get("id"):
            return None
        summary = raw["refunds"] if isinstance(raw["refunds"], list) else []
        wanted = {str(r.get("id")) for r in summary if isinstance(r, dict)}
        if index is not None:
            known = [r for r in index.get(str(raw["id"]), ()) if str(r.get("id")) in wanted]
            if {str(r.get("id")) for r in known} == wanted:
                return known
        try:
            refunds, _ = self._list(f"orders/{raw['id']}/refunds", {"per_page": "100"})
        except NotFoundError:
            return None  # deleted meanwhile: the summary will do
        return refunds

    def read_products(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Product]]:
        since = self._since("products", updated_since, cursor)

        def convert(raw: Any) -> Product:
            variations = None
            if isinstance(raw, dict) and raw.get("type") == "variable" and raw.get("variations"):
                try:
                    variations, _ = self._list(
                        f"products/{raw['id']}/variations", {"per_page": "100"}
                    )
                except NotFoundError:
                    variations = None
            return product_from_rest(
                raw,
                shop=self.shop,
                currency=self.currency,
                variations=variations,
                site_timezone=self.site_timezone,
            )

        yield from self._read_by_modified("products", since, convert)

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]:
        """Orders moved to the trash since then (``status=trash``, which ``status=any``
        leaves out). An order deleted for good, and a deleted customer, leave no trace in
        the API: only the ``order.deleted`` / ``customer.deleted`` webhooks tell."""
        params = {"status": "trash", "orderby": "id", "order": "asc", "dates_are_gmt": "true"}
        if updated_since is not None:
            params["modified_after"] = wc_time(updated_since - dt.timedelta(seconds=1))
        page = 1
        while True:
            rows, pages = self._list(
                "orders", {**params, "page": str(page), "per_page": str(self.per_page)}
            )
            for row in rows:
                if not isinstance(row, dict) or row.get("id") in (None, ""):
                    continue
                stamp = row.get("date_modified_gmt") or row.get("date_modified")
                try:
                    deleted_at = parse_date(stamp)
                except ValueError:
                    deleted_at = dt.datetime.now(dt.timezone.utc)
                yield Deletion("orders", str(row["id"]), deleted_at)
            if not rows or (pages is not None and page >= pages) or len(rows) < self.per_page:
                return
            page += 1

    def read_customers(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Customer]]:
        """A full scan (``/customers`` has no modification filter); with ``updated_since`` only
        rows whose ``date_modified_gmt`` is recent enough are mapped and returned.
        ``cursor`` is accepted for symmetry; a scan restarts from its first page."""
        since = self._since("customers", updated_since, None)
        threshold = parse_date(since) if since else None
        params = {"orderby": "id", "order": "asc", "role": self.customer_role}

        def convert(raw: Any) -> Customer | None:
            if threshold is not None and isinstance(raw, dict):
                stamp = raw.get("date_modified_gmt") or raw.get("date_created_gmt")
                try:
                    if stamp and parse_date(stamp) < threshold:
                        return None  # unchanged: not even mapped
                except ValueError:
                    pass  # let the mapping reject it with its reason
            return customer_from_rest(
                raw,
                shop=self.shop,
                site_timezone=self.site_timezone,
                consent_sources=self.consent_sources,
            )

        yield from self._read_full_scan("customers", params, convert)
