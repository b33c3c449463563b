"""The read side of a WooCommerce store: customers, orders and products, page by page.

Requests go through the official ``woocommerce`` client (``woocommerce.API``: OAuth 1.0a over
http, Basic over https) and every call runs under shopsync's one retry policy
(:class:`shopsync.http.HttpClient`): 429 and 5xx, dropped connections, timeouts and cut
bodies are retried with backoff; 401, 403 and 404 are not.

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
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import requests
import woocommerce  # type: ignore[import-untyped]
from pydantic import SecretStr

from shopsync.adapter import (
    CustomerFieldWriter,
    Deletion,
    DeletionReader,
    DiscountWriter,
    Page,
    TagWriter,
    WebhookEvent,
    WebhookParser,
)
from shopsync.adapter_kit import PageLoop, RawPage, RequestCounter
from shopsync.errors import (
    ConfigurationError,
    NotFoundError,
    PlatformError,
    ResponseError,
    TransportError,
)
from shopsync.http import HttpClient, RetryPolicy, decode_json, error_for_response, redact_url
from shopsync.models import ConsentState, Customer, Money, Order, Product
from shopsync_woocommerce import webhooks
from shopsync_woocommerce.consent import resolve_sources
from shopsync_woocommerce.mapping import (
    META,
    PLATFORM,
    customer_from_rest,
    order_from_rest,
    parse_date,
    product_from_rest,
)

__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TIMEOUT", "WooCommerceAdapter"]

DEFAULT_TIMEOUT = 30.0
"""Seconds per request. The client's own default (5 s) is too short for a page of 100 orders
on a busy shared host; 30 s lets a slow page finish and still fails a dead connection."""

DEFAULT_OVERLAP = dt.timedelta(minutes=5)
"""How far before ``updated_since`` an incremental read starts (see the module docstring)."""

R = TypeVar("R", Customer, Order, Product)


def _shop_from_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return host + parts.path.rstrip("/")


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


def _stamp(raw: Any) -> str:
    """A row's modification time as WooCommerce writes it (sortable as text)."""
    if not isinstance(raw, dict):
        return ""
    return str(raw.get("date_modified_gmt") or raw.get("date_created_gmt") or "")


def _shift(stamp: str, seconds: int) -> str:
    try:
        moved = parse_date(stamp) + dt.timedelta(seconds=seconds)
    except ValueError:
        return stamp
    return moved.strftime("%Y-%m-%dT%H:%M:%S")


def _coupon_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row.get("id"),
        "code": row.get("code"),
        "ends_at": row.get("date_expires_gmt"),
        "email_restrictions": row.get("email_restrictions"),
    }


def _wc_time(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


class WooCommerceAdapter(
    DeletionReader, WebhookParser, DiscountWriter, TagWriter, CustomerFieldWriter
):
    """Reads one WooCommerce store (REST API wc/v3).

    >>> shop = shopsync.connect("woocommerce", url="https://shop.example",
    ...                         consumer_key="ck_...", consumer_secret="cs_...")

    ``shop`` defaults to the URL's host and path (``shop.example``); ``timeout`` is seconds
    per request (:data:`DEFAULT_TIMEOUT`); ``per_page`` 1-100; ``overlap`` a timedelta or
    seconds (:data:`DEFAULT_OVERLAP`); ``site_timezone`` is only needed for stores whose
    records lack the ``*_gmt`` dates; ``customer_role`` is the ``role`` filter of
    ``/customers`` (``"all"`` includes non-customer accounts); ``retry_policy`` tunes
    :class:`shopsync.http.RetryPolicy`; ``bulk_refunds=False`` skips
    ``/refunds`` and asks each refunded order for its refunds instead. ``consent_sources``
    names where the store keeps marketing consent (``"mailchimp"``, ``"constant_contact"``,
    ``"shopsync"``, ``"meta:<key>"``, ``"none"``; default all known, see :mod:`.consent`):
    WooCommerce core has no consent field.
    """

    platform = PLATFORM
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "email"
    """A coupon is limited to customers by email (``email_restrictions``), so a customer
    without an address cannot be given one."""
    access_needed: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "sync": ("read",),
        "apply": ("write",),
    }
    """The key's permissions per use: sync reads, apply writes coupons and customer meta."""
    access_hint: ClassVar[str] = (
        "in WordPress, WooCommerce > Settings > Advanced > REST API: give the key Read/Write "
        "permissions (or create one for a Shop manager or Administrator user) and update the "
        "consumer key and secret shopsync reads"
    )

    def __init__(
        self,
        *,
        url: str,
        consumer_key: str,
        consumer_secret: str | SecretStr,
        shop: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        per_page: int = 100,
        overlap: dt.timedelta | float = DEFAULT_OVERLAP,
        retry_policy: RetryPolicy | None = None,
        site_timezone: dt.tzinfo | None = None,
        customer_role: str = "customer",
        currency: str | None = None,
        bulk_refunds: bool = True,
        verify_ssl: bool = True,
        sleep: Callable[[float], None] | None = None,
        consent_sources: str | Sequence[str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("url must start with http:// or https://")
        if not 1 <= per_page <= 100:
            raise ConfigurationError("per_page must be between 1 and 100 (WooCommerce's limit)")
        if not consumer_key:
            raise ConfigurationError("consumer_key is required")
        secret = (
            consumer_secret
            if isinstance(consumer_secret, SecretStr)
            else SecretStr(consumer_secret)
        )
        if not secret.get_secret_value():
            raise ConfigurationError("consumer_secret is required")
        self.url = url.rstrip("/")
        self.shop = shop or _shop_from_url(self.url)
        self.per_page = per_page
        self.overlap = (
            overlap if isinstance(overlap, dt.timedelta) else dt.timedelta(seconds=overlap)
        )
        self.site_timezone = site_timezone
        self.consent_sources = resolve_sources(consent_sources)
        self.customer_role = customer_role
        self._currency = currency
        self.bulk_refunds = bulk_refunds
        self._bulk_refunds_missing = False
        self._consumer_key = consumer_key
        self._secret = secret
        self.http = HttpClient(
            platform=PLATFORM, timeout=timeout, policy=retry_policy or RetryPolicy()
        )
        if sleep is not None:
            self.http.sleep = sleep
        self.api = woocommerce.API(
            url=self.url,
            consumer_key=consumer_key,
            consumer_secret=secret.get_secret_value(),
            version="wc/v3",
            wp_api=True,
            timeout=timeout,
            verify_ssl=verify_ssl,
            user_agent=f"shopsync (WooCommerce-Python-REST-API/{woocommerce.__version__})",
        )

    def __repr__(self) -> str:
        return f"WooCommerceAdapter(url={self.url!r}, shop={self.shop!r})"

    # ------------------------------------------------------------------ HTTP

    def _get(self, endpoint: str, params: Mapping[str, str]) -> tuple[Any, Mapping[str, str]]:
        """One GET under the retry policy: (decoded JSON, response headers)."""
        where = f"GET {self.url}/wp-json/wc/v3/{endpoint}"

        def once() -> tuple[Any, Mapping[str, str]]:
            # The woocommerce client signs and sends; HttpClient counts, maps errors (their
            # text carries the signed URL, so it never reaches a message) and decodes.
            response = self.http.exchange(
                lambda: self.api.get(endpoint, params=dict(params)), where
            )
            return decode_json(response, where=where, platform=PLATFORM), response.headers

        return self.http.call(once)

    def _list(self, endpoint: str, params: Mapping[str, str]) -> tuple[list[Any], int | None]:
        body, headers = self._get(endpoint, params)
        if not isinstance(body, list):
            raise ResponseError(f"expected a JSON list from {endpoint}", platform=PLATFORM)
        pages = headers.get("X-WP-TotalPages")
        return body, int(pages) if pages and pages.isdigit() else None

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

    # ------------------------------------------------------------------ paging

    def _read_by_modified(
        self,
        resource: str,
        since: str | None,
        convert: Callable[[Any], R],
        prepare: Callable[[], None] | None = None,
    ) -> Iterator[Page[R]]:
        loop: PageLoop[R] = PageLoop(resource, convert, stats=RequestCounter(self.http.stats))
        return loop.run(self._modified_pages(resource, since, prepare))

    def _modified_pages(
        self, resource: str, since: str | None, prepare: Callable[[], None] | None
    ) -> Iterator[RawPage]:
        """Keyset paging on the modification date: each request asks for what changed after
        the last page (``orderby=modified``), so a record saved during the read moves to the
        end and is read again instead of shifting the pages under the reader. WooCommerce's
        filter is strict and to the second, so each request re-includes the last second
        (rows already read are skipped by id); a second holding more than a page of records
        is read by page number inside a one-second window before moving past it."""
        base = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "status": "any"}
        base["per_page"] = str(self.per_page)
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
        return _wc_time(updated_since - self.overlap - dt.timedelta(seconds=1))

    # ------------------------------------------------------------------ resources

    def read_orders(
        self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
    ) -> Iterator[Page[Order]]:
        since = self._since("orders", updated_since, cursor)
        index: dict[str, list[Any]] | None = None

        def prepare() -> None:
            nonlocal index
            index = self._refund_index(since) if self.bulk_refunds else None

        def convert(raw: Any) -> Order:
            return order_from_rest(
                raw,
                shop=self.shop,
                refunds=self._refunds_of(raw, index),
                site_timezone=self.site_timezone,
            )

        yield from self._read_by_modified("orders", since, convert, prepare)

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
            params["modified_after"] = _wc_time(updated_since - dt.timedelta(seconds=1))
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

    def access_notes(self, granted: frozenset[str]) -> list[str]:
        """Where marketing consent comes from, read off the first page of customers: WooCommerce
        core has no consent field, so a store without a plugin the settings name (or an
        import, or double opt-ins) can contact nobody (:mod:`.consent`)."""
        if "read" not in granted:
            return []
        page = next(iter(self.read_customers()), None)
        records = list(page.records) if page is not None else []
        said = sum(c.consent.email.state is not ConsentState.UNKNOWN for c in records)
        sources = ", ".join(self.consent_sources) or "none"
        if not records:
            return []
        if not said:
            return [
                f"NO MARKETING CONSENT: none of the first {len(records)} customers carries the "
                f"consent meta of the configured sources ({sources}). WooCommerce core has no "
                "consent field, so no customer can be e-mailed until you name your newsletter "
                "plugin in consent_sources, import a consent list (shopsync consent import "
                "FILE) or collect double opt-ins (docs/adapters/woocommerce.md)"
            ]
        return [
            f"marketing consent comes from plugin meta ({sources}): {said} of the first "
            f"{len(records)} customers carry it"
        ]

    def granted_access(self) -> frozenset[str]:
        """``read`` and ``write`` as far as the key's permissions and its user's role allow,
        found by two requests that change nothing: a one-order page and an empty customer
        batch. WooCommerce refuses a key without the permission before any route runs."""
        granted = {
            name
            for name, method, endpoint in (
                ("read", "GET", "orders"),
                ("write", "POST", "customers/batch"),
            )
            if self._permitted(method, endpoint)
        }
        return frozenset(granted)

    def _permitted(self, method: str, endpoint: str) -> bool:
        def once() -> bool:
            self.http.stats.requests += 1
            where = f"{method} {redact_url(self.url)}/wp-json/wc/v3/{endpoint}"
            try:
                if method == "GET":
                    response = self.api.get(endpoint, params={"per_page": "1"})
                else:
                    response = self.api.post(endpoint, {})
            except requests.Timeout:
                raise TransportError(f"timed out: {where}") from None
            except requests.RequestException as exc:
                raise TransportError(f"connection failed: {where} ({type(exc).__name__})") from None
            error = error_for_response(response, PLATFORM)
            if error is None:
                return True
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = str(body.get("code", "")) if isinstance(body, dict) else ""
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
            if code.startswith("woocommerce_rest_cannot_") or "permissions" in message:
                return False  # a valid key without this permission (or a user without the role)
            if method == "POST" and error.status in (400, 404):
                return True  # authenticated and permitted; the empty batch itself is moot
            raise error

        return self.http.call(once)

    # ------------------------------------------------------------------ write side

    def _send(self, method: str, endpoint: str, data: Mapping[str, Any]) -> Any:
        """One POST or PUT under the retry policy; the decoded JSON answer. A refusal
        (4xx) raises with ``code``, WooCommerce's error code, set on the error."""

        def once() -> Any:
            self.http.stats.requests += 1
            where = f"{method} {redact_url(self.url)}/wp-json/wc/v3/{endpoint}"
            call = self.api.post if method == "POST" else self.api.put
            try:
                response = call(endpoint, dict(data))
            except requests.Timeout:
                raise TransportError(f"timed out: {where}") from None
            except requests.RequestException as exc:
                raise TransportError(f"connection failed: {where} ({type(exc).__name__})") from None
            error = error_for_response(response, PLATFORM)
            if error is not None:
                try:
                    body = response.json()
                except ValueError:
                    body = {}
                code = body.get("code") if isinstance(body, dict) else None
                error.code = code  # type: ignore[attr-defined]
                if code and not error.retryable:
                    error.message = f"{error.message}: {code}"
                    error.args = (error.message,)
                raise error
            try:
                return response.json()
            except ValueError:
                raise ResponseError(
                    f"response is not valid JSON: {where}",
                    status=response.status_code,
                    platform=PLATFORM,
                ) from None

        return self.http.call(once)

    def find_coupon(self, code: str) -> dict[str, Any] | None:
        """The coupon with this code (WooCommerce keeps codes lower-cased), or None."""
        rows, _ = self._list("coupons", {"code": code, "per_page": "10"})
        for row in rows:
            if isinstance(row, dict) and str(row.get("code", "")).lower() == code.lower():
                return row
        return None

    def create_discount_code(
        self,
        code: str,
        *,
        customer: Customer,
        amount: Money | None = None,
        percent: int | None = None,
        starts_at: dt.datetime,
        expires_at: dt.datetime,
        title: str = "",
    ) -> dict[str, Any]:
        """A coupon usable once, by this customer's email only, until ``expires_at``:
        ``amount`` off the cart (``fixed_cart``) or ``percent`` off (``percent``); ``title``
        is its description. A coupon starts when it is made (it has no start date).

        Looked up by code first, so a retry after a crash finds the coupon instead of making
        a second one (``created`` in the answer says which happened); an "already exists"
        refusal is resolved the same way.
        """
        if (amount is None) == (percent is None):
            raise ConfigurationError("create_discount_code needs an amount or a percent")
        if not customer.email:
            raise ConfigurationError(
                f"customer {customer.id} has no email address to limit the coupon to"
            )
        found = self.find_coupon(code)
        if found is not None:
            return {**_coupon_summary(found), "created": False}
        data = {
            "code": code,
            "discount_type": "fixed_cart" if amount is not None else "percent",
            "amount": str(amount.rounded().amount) if amount is not None else str(percent),
            "individual_use": True,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "email_restrictions": [customer.email],
            "date_expires_gmt": _wc_time(expires_at),
            "description": title,
        }
        try:
            created = self._send("POST", "coupons", data)
        except PlatformError as exc:
            if getattr(exc, "code", None) != "woocommerce_rest_coupon_code_already_exists":
                raise
            again = self.find_coupon(code)
            if again is None:
                raise
            return {**_coupon_summary(again), "created": False}
        if not isinstance(created, dict) or "id" not in created:
            raise ResponseError("POST coupons answered without a coupon id", platform=PLATFORM)
        return {**_coupon_summary(created), "created": True}

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        """The customer record as WooCommerce renders it (meta_data included)."""
        body, _ = self._get(f"customers/{customer_id}", {})
        if not isinstance(body, dict):
            raise ResponseError(f"customers/{customer_id} is not an object", platform=PLATFORM)
        return body

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        """Set meta_data ``_{namespace}_{key}`` on a customer (WooCommerce updates a key in
        place, so setting the same value again changes nothing); values are kept as text."""
        self._set_meta(customer_id, {f"_{namespace}_{k}": str(v) for k, v in values.items()})

    def _set_meta(self, customer_id: str, values: Mapping[str, Any]) -> None:
        meta = [{"key": key, "value": value} for key, value in values.items()]
        self._send("PUT", f"customers/{customer_id}", {"meta_data": meta})

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Add tags to the ``_shopsync_tags`` meta (WooCommerce has no customer tags)."""
        self._change_tags(customer_id, add=tags, remove=())

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self._change_tags(customer_id, add=(), remove=tags)

    def _change_tags(self, customer_id: str, *, add: Sequence[str], remove: Sequence[str]) -> None:
        current: list[str] = []
        for item in self.get_customer(customer_id).get("meta_data") or ():
            if isinstance(item, dict) and item.get("key") == META["tags"]:
                value = item.get("value")
                current = (
                    [str(v) for v in value]
                    if isinstance(value, list)
                    else [v.strip() for v in str(value or "").split(",") if v.strip()]
                )
        wanted = sorted((set(current) | set(add)) - set(remove))
        if wanted != sorted(current):
            self._set_meta(customer_id, {META["tags"]: wanted})

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """A verified delivery, mapped (see :func:`shopsync_woocommerce.webhooks.parse_webhook`)."""
        return webhooks.parse_webhook(headers, raw_body, secret)

    @staticmethod
    def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
        """Map a quarantined REST record again (products without their variations' prices)."""
        return webhooks.map_record(resource, raw, shop)

    def close(self) -> None:
        self.http.close()
