"""A WooCommerce store on 127.0.0.1: the REST API wc/v3 and webhooks, served from a ShopState.

It answers what a store answers, with the limits a store enforces: ``per_page`` 1-100
(``400 rest_invalid_param`` beyond), ``X-WP-Total`` / ``X-WP-TotalPages`` / ``Link``
headers, the date filters (``after``/``before`` on creation, ``modified_after``/
``modified_before``, ``dates_are_gmt``, all strict and to the second), ``orderby``/``order``,
``status``, ``include``/``exclude``/``customer``/``search``; money as strings and dates in
site-local and ``_gmt`` pairs. Authentication is :mod:`._auth`: OAuth 1.0a over http (what
the ``woocommerce`` client sends there), Basic as well when the emulator is told it is
served over https (``https=True``, as behind a TLS-terminating proxy).

Webhooks (``order.created|updated|deleted``, ``customer.created|updated|deleted``,
``product.*``) are delivered as ``WC_Webhook::deliver()`` does, and creating one through
``POST /webhooks`` first sends the ``webhook_id=<id>`` ping.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import json
import math
import secrets
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode

from shopsync.models import Customer, Order, Product
from shopsync.testing.server import Request, Response
from shopsync.testing.state import DeliveryAttempt, Event, ShopState, Subscription
from shopsync.testing.webhooks import Delivery
from shopsync_woocommerce import _render as render
from shopsync_woocommerce._auth import AuthError, Credentials, OAuthVerifier
from shopsync_woocommerce._store_habits import apply_store_habits
from shopsync_woocommerce.consent import KNOWN_SOURCES
from shopsync_woocommerce.mapping import META, parse_date
from shopsync_woocommerce.webhooks import sign

__all__ = ["WEBHOOK_TOPICS", "WooCommerceEmulator"]

M = TypeVar("M", Customer, Order, Product)

PREFIX = "/wp-json/wc/v3/"
WC_VERSION = "9.4.1"
WP_VERSION = "6.7.1"
USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"

WEBHOOK_TOPICS = {
    "customer.created": ("customer.created",),
    "customer.updated": ("customer.updated",),
    "customer.redact": ("customer.updated",),
    "customer.deleted": ("customer.deleted",),
    "order.created": ("order.created",),
    "order.updated": ("order.updated",),
    "order.paid": ("order.updated",),
    "order.cancelled": ("order.updated",),
    "order.fulfilled": ("order.updated",),
    "refund.created": ("order.updated",),
    "fulfillment.created": ("order.updated",),
    "order.deleted": ("order.deleted",),
    "product.created": ("product.created",),
    "product.updated": ("product.updated",),
}
"""Neutral state event -> the WooCommerce topics it fires (a store fires ``order.updated``
for every save of an order: payment, refund, shipment, cancellation)."""

_VALID_TOPICS = {
    f"{r}.{e}"
    for r in ("order", "customer", "product", "coupon")
    for e in ("created", "updated", "deleted", "restored")
}

_ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
    "trash",
)
_PRODUCT_STATUSES = ("draft", "pending", "private", "publish", "future", "trash")
_ORDERBY = {
    "orders": ("date", "id", "include", "title", "slug", "modified"),
    "products": (
        "date",
        "id",
        "include",
        "title",
        "slug",
        "modified",
        "price",
        "popularity",
        "rating",
        "menu_order",
    ),
    "coupons": ("date", "id", "include", "title", "slug", "modified"),
    "customers": ("id", "include", "name", "registered_date"),
}
_AUTH_PARAMS = ("oauth_", "consumer_key", "consumer_secret")


class _Invalid(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _error(code: str, message: str, status: int, **data: Any) -> Response:
    return Response.json(
        {"code": code, "message": message, "data": {"status": status, **data}}, status=status
    )


def _tz(value: str | dt.tzinfo) -> dt.tzinfo:
    if isinstance(value, dt.tzinfo):
        return value
    if value.upper() in ("UTC", "Z", "+00:00"):
        return dt.timezone.utc
    if value[:1] in "+-":
        hours, _, minutes = value[1:].partition(":")
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        return dt.timezone(-offset if value[0] == "-" else offset)
    from zoneinfo import ZoneInfo

    return ZoneInfo(value)


class WooCommerceEmulator:
    """Serves one :class:`~shopsync.testing.ShopState` as a WooCommerce store.

    Options: ``consumer_key`` / ``consumer_secret`` (default: derived from the shop name),
    ``permissions`` (``read_write``), ``https`` (answer as a store reached over https: Basic
    accepted, OAuth signed against an https URL), ``site_url`` (the store's configured home
    URL that signatures are built from; default the server's own URL), ``site_timezone``
    (``"-03:00"``, an IANA name or a tzinfo; the zone of the site-local dates),
    ``auth_clock`` (Unix time for OAuth timestamps), ``refunds_endpoint`` (serve the
    ``/refunds`` collection of WooCommerce 9.0+; False answers it ``rest_no_route`` like an
    older store), ``consent_plugin`` (``"mailchimp"``, ``"constant_contact"`` or
    ``"shopsync"``: customers carry that plugin's consent meta; the default None is a store
    as WooCommerce core has it, with no consent anywhere), ``sold_by_weight`` and
    ``fee_share`` (the share of orders given a line sold by weight, 1.5 kg, and a fee line,
    as real stores have them: :mod:`._store_habits`; 0 turns them off).
    """

    platform: ClassVar[str] = "woocommerce"

    @classmethod
    def default_shop(cls, seed: int) -> str:
        return f"emulated-{seed}.example"

    def __init__(
        self,
        state: ShopState,
        *,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        permissions: str = "read_write",
        https: bool = False,
        site_url: str | None = None,
        site_timezone: str | dt.tzinfo = "-03:00",
        auth_clock: Callable[[], float] = time.time,
        refunds_endpoint: bool = True,
        consent_plugin: str | None = None,
        sold_by_weight: float = 0.05,
        fee_share: float = 0.05,
    ) -> None:
        self.state = state
        seed = hashlib.sha256(state.shop.encode()).hexdigest()
        self.credentials = Credentials(
            consumer_key or f"ck_{seed[:40]}",
            consumer_secret or f"cs_{seed[24:64]}",
            permissions,
        )
        if consent_plugin is not None and consent_plugin not in KNOWN_SOURCES:
            raise ValueError(f"consent_plugin must be one of {sorted(KNOWN_SOURCES)} or None")
        self.consent_plugin = consent_plugin
        apply_store_habits(state, by_weight=sold_by_weight, fees=fee_share)
        self.https = https
        self.refunds_endpoint = refunds_endpoint
        self.site_url = site_url
        self.tz = _tz(site_timezone)
        self._base = site_url or ""
        self.auth = OAuthVerifier(
            self.credentials, site_url=lambda: self._base, is_ssl=https, clock=auth_clock
        )
        self._cache: dict[tuple[Any, ...], tuple[list[Any], list[Any]]] = {}
        self._cache_lock = threading.Lock()
        self._delivery_seq = itertools.count(1)
        self.trash: dict[str, tuple[Order, dt.datetime]] = {}
        """Deleted orders, as WooCommerce keeps them: status ``trash``, dated when trashed."""
        state.subscribe(self._keep_trashed)
        self.pings: list[tuple[str, int | None]] = []
        """(webhook id, HTTP status) of every ping sent."""
        self.coupons: dict[int, dict[str, Any]] = {}
        """Coupons created through ``POST /coupons``, rendered, by id."""
        self.customer_meta: dict[str, dict[str, Any]] = {}
        """meta_data set through ``PUT /customers/<id>`` (beyond what the model holds)."""
        self.writes: Counter[str] = Counter()
        """Writes by outcome: ``coupon_created``, ``coupon_exists``, ``customer_updated``."""
        self._coupon_ids = itertools.count(91_000_001)

    def __repr__(self) -> str:
        return f"WooCommerceEmulator(shop={self.state.shop!r}, https={self.https})"

    # ------------------------------------------------------------------ protocol

    def settings(self, base_url: str) -> dict[str, Any]:
        """What ``shopsync.connect("woocommerce", **settings)`` needs for this store."""
        self._base = self.site_url or base_url
        return {
            "url": self._base,
            "consumer_key": self.credentials.consumer_key,
            "consumer_secret": self.credentials.consumer_secret,
            "shop": self.state.shop,
        }

    def view(self, record: M) -> M:
        """What this store keeps of a shared model (see :func:`._render.woocommerce_view`)."""
        return render.woocommerce_view(record, self.consent_plugin)

    def rate_limited(self, retry_after: float) -> Response:
        """Core WooCommerce has no rate limit; hosts and WAFs answer 429 with Retry-After."""
        response = _error(
            "woocommerce_rest_too_many_requests", "Too many requests. Please slow down.", 429
        )
        return Response(
            429, {**response.headers, "Retry-After": f"{max(retry_after, 0):g}"}, response.body
        )

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        topics = WEBHOOK_TOPICS.get(event.topic, ())
        if subscription.topic not in topics:
            return None
        resource, _, action = subscription.topic.partition(".")
        if action == "deleted" or event.record is None:
            payload: Any = {"id": int(event.record_id)}
        else:
            # The body's _links are rest_url() on the same home_url as X-WC-Webhook-Source
            # (WC_Webhook::get_wp_api_payload through the REST controllers), not our address.
            payload = self._render_record(event.record, base=self._site())
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = hashlib.md5(
            f"{subscription.id}{time.time()}{next(self._delivery_seq)}".encode()
        ).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": self._site() + "/",
            "X-WC-Webhook-Topic": subscription.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": action,
            "X-WC-Webhook-Signature": sign(subscription.secret or "", body),
            "X-WC-Webhook-ID": str(subscription.id),
            "X-WC-Webhook-Delivery-ID": delivery_id,
        }
        return Delivery(headers=headers, body=body, id=delivery_id)

    def handle(self, request: Request) -> Response:
        if not self._base:
            self._base = request.base_url
        if not request.path.startswith(PREFIX):
            return _error(
                "rest_no_route", "No route was found matching the URL and request method.", 404
            )
        form = None
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(request.body.decode(errors="replace")))
        try:
            authenticated = self.auth.authenticate(
                request.method, request.path, request.query_string, request.headers, form
            )
        except AuthError as exc:
            return _error(exc.code, exc.message, 401)
        if not authenticated:
            verb = "list resources" if request.method == "GET" else "create resources"
            return _error("woocommerce_rest_cannot_view", f"Sorry, you cannot {verb}.", 401)
        parts = request.path[len(PREFIX) :].strip("/").split("/")
        try:
            return self._route(request, parts)
        except _Invalid as bad:
            return _error(
                "rest_invalid_param",
                f"Invalid parameter(s): {bad.param}",
                400,
                params={bad.param: bad.message},
            )

    # ------------------------------------------------------------------ routing

    def _route(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        head, rest = parts[0], parts[1:]
        if head in ("customers", "orders", "products") and method == "GET":
            if not rest:
                return self._list(request, head)
            if len(rest) == 1 and rest[0].isdigit():
                return self._one(head, rest[0])
            if head == "orders" and len(rest) == 2 and rest[1] == "refunds":
                order = self._get("orders", rest[0])
                if order is None:
                    return self._not_found("orders")
                return Response.json(render.render_refunds(order, tz=self.tz, base=self._home()))
            if head == "products" and len(rest) == 2 and rest[1] == "variations":
                product = self._get("products", rest[0])
                if product is None:
                    return self._not_found("products")
                return Response.json(
                    render.render_variations(product, tz=self.tz, base=self._home())
                )
        if head == "data" and rest == ["currencies", "current"] and method == "GET":
            code = self.state.currency
            return Response.json(
                {
                    "code": code,
                    "name": code,
                    "symbol": "$" if code == "USD" else code,
                    "_links": {"collection": [{"href": f"{self._home()}{PREFIX}data/currencies"}]},
                }
            )
        if head == "refunds" and not rest and method == "GET" and self.refunds_endpoint:
            return self._all_refunds(request)
        if head == "coupons" and method == "POST" and not rest:
            return self._create_coupon(request)
        if head == "customers" and method in ("PUT", "POST", "PATCH") and len(rest) == 1:
            return self._update_customer(request, rest[0])
        if head == "coupons" and method == "GET":
            return self._coupons(request, rest)
        if head == "webhooks":
            return self._webhooks(request, rest)
        return _error(
            "rest_no_route", "No route was found matching the URL and request method.", 404
        )

    def _site(self) -> str:
        """The store's home URL as webhooks name it: ``site_url``, else ``http://<shop>``
        (the emulator answers on 127.0.0.1 but is the shop named by its state)."""
        return (self.site_url or f"http://{self.state.shop}").rstrip("/")

    def _home(self) -> str:
        return self._base.rstrip("/")

    def _get(self, resource: str, record_id: str) -> Any:
        with self.state.lock:
            return self.state.records(resource).get(record_id)

    @staticmethod
    def _not_found(resource: str) -> Response:
        code = {
            "orders": "woocommerce_rest_shop_order_invalid_id",
            "products": "woocommerce_rest_product_invalid_id",
            "coupons": "woocommerce_rest_shop_coupon_invalid_id",
            "webhooks": "woocommerce_rest_webhook_invalid_id",
        }.get(resource, "woocommerce_rest_invalid_id")
        message = "Invalid resource ID." if resource == "customers" else "Invalid ID."
        return _error(code, message, 404)

    def _one(self, resource: str, record_id: str) -> Response:
        record = self._get(resource, record_id)
        if record is None:
            return self._not_found(resource)
        return Response.json(self._render_record(record))

    def _render_record(self, record: Any, base: str | None = None) -> dict[str, Any]:
        base, tz = base or self._home(), self.tz
        faults = self.state.faults
        if isinstance(record, Order):
            return render.render_order(
                record, tz=tz, base=base, corrupt=faults.corrupt("orders", record.id)
            )
        if isinstance(record, Customer):
            body = render.render_customer(
                record,
                tz=tz,
                base=base,
                corrupt=faults.corrupt("customers", record.id),
                consent_plugin=self.consent_plugin,
            )
            extra = self.customer_meta.get(record.id)
            if extra:
                body["meta_data"] = [m for m in body["meta_data"] if m["key"] not in extra] + [
                    {"id": 7_000_000 + i, "key": k, "value": v}
                    for i, (k, v) in enumerate(sorted(extra.items()))
                ]
            return body
        if isinstance(record, Product):
            return render.render_product(
                record,
                tz=tz,
                base=base,
                currency=self.state.currency,
                corrupt=faults.corrupt("products", record.id),
            )
        raise TypeError(f"cannot render {type(record).__name__}")

    # ------------------------------------------------------------------ collections

    def _int(
        self, query: dict[str, str], name: str, default: int, low: int, high: int | None = None
    ) -> int:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _Invalid(name, f"{name} is not of type integer.") from None
        if value < low or (high is not None and value > high):
            bound = (
                f"between {low} (inclusive) and {high} (inclusive)"
                if high
                else f"greater than or equal to {low}"
            )
            raise _Invalid(name, f"{name} must be {bound}")
        return value

    def _date_param(self, query: dict[str, str], name: str, gmt: bool) -> dt.datetime | None:
        raw = query.get(name)
        if not raw:
            return None
        try:
            return parse_date(raw, assume=dt.timezone.utc if gmt else self.tz)
        except ValueError:
            raise _Invalid(name, "Invalid date.") from None

    def _ids(self, query: dict[str, str], name: str) -> list[str]:
        raw = query.get(name) or ""
        ids = [
            part.strip()
            for part in raw.replace("[", "").replace("]", "").split(",")
            if part.strip()
        ]
        for part in ids:
            if not part.isdigit():
                raise _Invalid(name, f"{name}[0] is not of type integer.")
        return ids

    def _select(self, request: Request, resource: str) -> list[Any]:
        """The filtered, sorted records of a collection query (cached until the state changes)."""
        q = request.query
        order = (q.get("order") or ("asc" if resource == "customers" else "desc")).lower()
        if order not in ("asc", "desc"):
            raise _Invalid("order", "order is not one of asc, desc.")
        default_by = {"customers": "name"}.get(resource, "date")
        orderby = q.get("orderby") or default_by
        if orderby not in _ORDERBY["coupons" if resource == "coupons" else resource]:
            raise _Invalid("orderby", f"orderby is not one of {', '.join(_ORDERBY[resource])}.")
        gmt = (q.get("dates_are_gmt") or "").lower() in ("1", "true", "yes")
        dates = {
            name: None if resource == "customers" else self._date_param(q, name, gmt)
            for name in ("after", "before", "modified_after", "modified_before")
        }
        include, exclude = self._ids(q, "include"), self._ids(q, "exclude")
        statuses: set[str] | None = None
        if resource in ("orders", "products"):
            raw = (q.get("status") or "any").split(",")
            allowed = _ORDER_STATUSES if resource == "orders" else _PRODUCT_STATUSES
            wanted = {s.strip().removeprefix("wc-") for s in raw if s.strip()}
            for s in wanted - {"any"}:
                if s not in allowed:
                    raise _Invalid("status", f"status[0] is not one of any, {', '.join(allowed)}.")
            statuses = None if "any" in wanted else wanted
        customer = q.get("customer") if resource == "orders" else None
        search = (q.get("search") or "").strip().lower()
        email = (q.get("email") or "").strip().lower() if resource == "customers" else ""
        role = (q.get("role") or "customer") if resource == "customers" else "customer"
        if resource == "customers" and role not in ("customer", "all"):
            return []
        plain = not (include or exclude or statuses or customer or search or email)
        if orderby == "modified" and plain and not (dates["after"] or dates["before"]):
            return self._by_modified(resource, order, dates)
        with self.state.lock:
            base = self.state.ordered(resource, "id")
        key = (
            resource,
            id(base),
            len(base),
            order,
            orderby,
            gmt,
            tuple(dates.items()),
            tuple(include),
            tuple(exclude),
            frozenset(statuses or ()),
            statuses is None,
            customer,
            search,
            email,
        )
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is base:
                return hit[1]

        def second(value: dt.datetime) -> dt.datetime:
            return value.replace(microsecond=0)

        rows = []
        inc, exc = set(include), set(exclude)
        for r in base:
            if (inc and r.id not in inc) or r.id in exc:
                continue
            if dates["after"] and not second(r.created_at) > dates["after"]:
                continue
            if dates["before"] and not second(r.created_at) < dates["before"]:
                continue
            if dates["modified_after"] and not second(r.updated_at) > dates["modified_after"]:
                continue
            if dates["modified_before"] and not second(r.updated_at) < dates["modified_before"]:
                continue
            if statuses is not None:
                status = (
                    render.wc_status(r)
                    if resource == "orders"
                    else render.WC_PRODUCT_STATUS.get(r.status or "active", r.status)
                )
                if status not in statuses:
                    continue
            if customer is not None and (r.customer_id or "0") != customer:
                continue
            if email and (getattr(r, "email", None) or "") != email:
                continue
            if search and search not in self._haystack(r):
                continue
            rows.append(r)
        sort_key = self._sort_key(orderby, include)
        rows.sort(key=sort_key, reverse=order == "desc")
        with self._cache_lock:
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = (base, rows)
        return rows

    def _by_modified(
        self, resource: str, order: str, dates: dict[str, dt.datetime | None]
    ) -> list[Any]:
        """A modification-date window by bisection: incremental readers ask for a new window
        with every request, so filtering all records each time would be quadratic."""
        with self.state.lock:
            rows = self.state.ordered(resource, "updated_at")

        def second(record: Any) -> dt.datetime:
            return record.updated_at.replace(microsecond=0)  # type: ignore[no-any-return]

        lo, hi = 0, len(rows)
        if dates["modified_after"] is not None:
            lo = bisect.bisect_right(rows, dates["modified_after"], key=second)
        if dates["modified_before"] is not None:
            hi = bisect.bisect_left(rows, dates["modified_before"], key=second)
        window = rows[lo : max(lo, hi)]
        return window[::-1] if order == "desc" else window

    @staticmethod
    def _haystack(record: Any) -> str:
        fields = [
            record.id,
            getattr(record, "email", None),
            getattr(record, "first_name", None),
            getattr(record, "last_name", None),
            getattr(record, "title", None),
            getattr(record, "name", None),
        ]
        return " ".join(str(f).lower() for f in fields if f)

    @staticmethod
    def _sort_key(orderby: str, include: list[str]) -> Callable[[Any], Any]:
        def num(r: Any) -> int:
            return int(r.id) if r.id.isdigit() else 0

        if orderby == "id":
            return num
        if orderby == "include":
            where = {v: k for k, v in enumerate(include)}
            return lambda r: (where.get(r.id, len(where)), num(r))
        if orderby in ("date", "registered_date"):
            return lambda r: (r.created_at.replace(microsecond=0), num(r))
        if orderby == "modified":
            return lambda r: (r.updated_at.replace(microsecond=0), num(r))
        if orderby in ("title", "slug"):
            return lambda r: (getattr(r, "title", "") or getattr(r, "name", "") or "", num(r))
        if orderby == "name":
            return lambda r: (f"{r.first_name or ''} {r.last_name or ''}".strip().lower(), num(r))
        return num

    def _page(
        self, request: Request, rows: list[Any], render_row: Callable[[Any], Any]
    ) -> Response:
        q = request.query
        per_page = self._int(q, "per_page", 10, 1, 100)
        page = self._int(q, "page", 1, 1)
        offset = self._int(q, "offset", -1, 0)
        start = offset if offset >= 0 else (page - 1) * per_page
        total = len(rows)
        pages = math.ceil(total / per_page) if total else 0
        chosen = rows[start : start + per_page]
        return self._listing([render_row(r) for r in chosen], total, pages, request, page)

    def _listing(
        self, body: list[Any], total: int, pages: int, request: Request, page: int
    ) -> Response:
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        keep = [(k, v) for k, v in request.query.items() if not k.startswith(_AUTH_PARAMS)]
        base = f"{self._home()}{request.path}"
        links = []
        if page > 1 and pages:
            prev = [(k, v) for k, v in keep if k != "page"] + [("page", str(min(page - 1, pages)))]
            links.append(f'<{base}?{urlencode(prev)}>; rel="prev"')
        if page < pages:
            nxt = [(k, v) for k, v in keep if k != "page"] + [("page", str(page + 1))]
            links.append(f'<{base}?{urlencode(nxt)}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return Response.json(body, headers=headers)

    def _list(self, request: Request, resource: str) -> Response:
        if resource == "orders" and (request.query.get("status") or "").strip() == "trash":
            return self._trashed(request)
        rows = self._select(request, resource)
        return self._page(request, rows, self._render_record)

    def _keep_trashed(self, event: Event) -> None:
        if event.topic == "order.deleted" and isinstance(event.record, Order):
            self.trash[event.record_id] = (event.record, event.at)

    def _trashed(self, request: Request) -> Response:
        """``status=trash``: what ``status=any`` leaves out, filtered by ``modified_after``
        (the trashing is the last modification), in id order."""
        gmt = (request.query.get("dates_are_gmt") or "").lower() in ("1", "true", "yes")
        after = self._date_param(request.query, "modified_after", gmt)
        rows = sorted(
            (
                (order, at)
                for order, at in self.trash.values()
                if after is None or at.replace(microsecond=0) > after
            ),
            key=lambda row: int(row[0].id),
        )

        def render_row(row: tuple[Order, dt.datetime]) -> dict[str, Any]:
            order, at = row
            body = self._render_record(order)
            body["status"] = "trash"
            body.update(render._dates("date_modified", at, self.tz))
            return body

        return self._page(request, rows, render_row)

    # ------------------------------------------------------------------ refunds

    def _all_refunds(self, request: Request) -> Response:
        """``GET /refunds`` (WooCommerce 9.0+): every order's refunds in one collection."""
        q = request.query
        order = (q.get("order") or "desc").lower()
        if order not in ("asc", "desc"):
            raise _Invalid("order", "order is not one of asc, desc.")
        orderby = q.get("orderby") or "date"
        if orderby not in _ORDERBY["orders"]:
            raise _Invalid("orderby", f"orderby is not one of {', '.join(_ORDERBY['orders'])}.")
        gmt = (q.get("dates_are_gmt") or "").lower() in ("1", "true", "yes")
        after, before = self._date_param(q, "after", gmt), self._date_param(q, "before", gmt)
        with self.state.lock:
            base = self.state.ordered("orders", "id")
        key = ("refunds", id(base), len(base))
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] is base:
            everything = hit[1]
        else:
            everything = [(r, o) for o in base for r in o.refunds]
            with self._cache_lock:
                self._cache[key] = (base, everything)
        rows = [
            (r, o)
            for r, o in everything
            if (after is None or r.created_at.replace(microsecond=0) > after)
            and (before is None or r.created_at.replace(microsecond=0) < before)
        ]
        if orderby == "id":
            rows.sort(key=lambda row: int(row[0].id), reverse=order == "desc")
        else:
            rows.sort(
                key=lambda row: (row[0].created_at.replace(microsecond=0), int(row[0].id)),
                reverse=order == "desc",
            )
        tz, home = self.tz, self._home()
        return self._page(
            request, rows, lambda row: render.render_refund(row[1], row[0], tz=tz, base=home)
        )

    # ------------------------------------------------------------------ coupons

    def _coupon_table(self) -> list[tuple[int, str, list[Order]]]:
        with self.state.lock:
            orders = list(self.state.orders.values())
        used: dict[str, list[Order]] = {}
        for o in orders:
            for code in o.discount_codes:
                used.setdefault(code.lower(), []).append(o)
        return [(90_000_000 + k, code, used[code]) for k, code in enumerate(sorted(used), 1)]

    def _coupons(self, request: Request, rest: list[str]) -> Response:
        base, tz = self._home(), self.tz
        table = self._coupon_table()
        if rest:
            if rest[0].isdigit() and int(rest[0]) in self.coupons:
                return Response.json(self.coupons[int(rest[0])])
            for cid, code, orders in table:
                if rest[0] == str(cid):
                    return Response.json(render.render_coupon(cid, code, orders, tz=tz, base=base))
            return self._not_found("coupons")
        code = (request.query.get("code") or "").lower()
        rows: list[tuple[int, Any]] = [
            (cid, (cid, c, o)) for cid, c, o in table if not code or c == code
        ]
        rows += [(cid, b) for cid, b in self.coupons.items() if not code or b["code"] == code]
        reverse = (request.query.get("order") or "desc") == "desc"
        rows.sort(key=lambda row: row[0], reverse=reverse)
        return self._page(
            request,
            rows,
            lambda row: (
                row[1]
                if isinstance(row[1], dict)
                else render.render_coupon(*row[1], tz=tz, base=base)
            ),
        )

    def _create_coupon(self, request: Request) -> Response:
        """``POST /coupons``: codes are unique and kept lower-cased, as ``wc_format_coupon_code``
        does; dates in ``date_expires`` (site time) or ``date_expires_gmt``."""
        try:
            data = request.json() or {}
        except ValueError:
            return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
        if not isinstance(data, dict):
            return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
        code = str(data.get("code") or "").strip().lower()
        if not code:
            raise _Invalid("code", "code is required.")
        emails = data.get("email_restrictions") or []
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise _Invalid("email_restrictions", "email_restrictions[0] is not a valid email.")
        try:
            amount = Decimal(str(data.get("amount") or "0"))
        except ArithmeticError:
            raise _Invalid("amount", "amount is not of type string.") from None
        gmt = data.get("date_expires_gmt") is not None
        raw_expires = data.get("date_expires_gmt") or data.get("date_expires")
        try:
            expires = (
                parse_date(str(raw_expires), assume=dt.timezone.utc if gmt else self.tz)
                if raw_expires
                else None
            )
        except ValueError:
            raise _Invalid("date_expires", "Invalid date.") from None
        with self._cache_lock:
            taken = {body["code"] for body in self.coupons.values()}
            taken |= {c for _, c, _ in self._coupon_table()}
            if code in taken:
                self.writes["coupon_exists"] += 1
                return _error(
                    "woocommerce_rest_coupon_code_already_exists",
                    "The coupon code already exists",
                    400,
                )
            cid = next(self._coupon_ids)
            now = self.state.clock()
            body: dict[str, Any] = {
                "id": cid,
                "code": code,
                "amount": f"{amount:.2f}",
                **render._dates("date_created", now, self.tz),
                **render._dates("date_modified", now, self.tz),
                "discount_type": str(data.get("discount_type") or "fixed_cart"),
                "description": str(data.get("description") or ""),
                **render._dates("date_expires", expires, self.tz),
                "usage_count": 0,
                "individual_use": bool(data.get("individual_use", False)),
                "product_ids": [],
                "excluded_product_ids": [],
                "usage_limit": data.get("usage_limit"),
                "usage_limit_per_user": data.get("usage_limit_per_user"),
                "limit_usage_to_x_items": None,
                "free_shipping": bool(data.get("free_shipping", False)),
                "product_categories": [],
                "excluded_product_categories": [],
                "exclude_sale_items": False,
                "minimum_amount": "0.00",
                "maximum_amount": "0.00",
                "email_restrictions": [e.strip().lower() for e in emails],
                "used_by": [],
                "meta_data": [],
                "_links": {
                    "self": [{"href": f"{self._home()}{PREFIX}coupons/{cid}"}],
                    "collection": [{"href": f"{self._home()}{PREFIX}coupons"}],
                },
            }
            self.coupons[cid] = body
            self.writes["coupon_created"] += 1
        return Response.json(body, status=201)

    def _update_customer(self, request: Request, customer_id: str) -> Response:
        """``PUT /customers/<id>``: ``meta_data`` entries update their key in place
        (``_shopsync_tags`` becomes the customer's tags); a save stamps ``date_modified``."""
        try:
            data = request.json() or {}
        except ValueError:
            return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
        with self.state.lock:
            if customer_id not in self.state.customers:
                return _error("woocommerce_rest_invalid_id", "Invalid resource id.", 400)
            fields: dict[str, Any] = {}
            for item in data.get("meta_data") or ():
                if not isinstance(item, dict) or not item.get("key"):
                    raise _Invalid("meta_data", "meta_data[0][key] is required.")
                if item["key"] == META["tags"]:
                    value = item.get("value") or []
                    tags = value if isinstance(value, list) else str(value).split(",")
                    fields["tags"] = tuple(sorted({str(t).strip() for t in tags if str(t).strip()}))
                else:
                    self.customer_meta.setdefault(customer_id, {})[str(item["key"])] = item.get(
                        "value"
                    )
            customer = self.state.update_customer(customer_id, **fields)
            self.writes["customer_updated"] += 1
        return Response.json(self._render_record(customer))

    # ------------------------------------------------------------------ webhooks

    def _webhook_json(self, sub: Subscription) -> dict[str, Any]:
        resource, _, event = sub.topic.partition(".")
        now = dt.datetime.now(dt.timezone.utc)
        return {
            "id": int(sub.id),
            "name": getattr(sub, "name", None) or f"{resource.title()} {event}",
            "status": "active",
            "topic": sub.topic,
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{resource}_{event}"],
            "delivery_url": sub.address,
            **{
                k: v
                for k, v in (
                    ("date_created", render.wc_date(now, self.tz)),
                    ("date_created_gmt", render.wc_date(now, dt.timezone.utc)),
                    ("date_modified", render.wc_date(now, self.tz)),
                    ("date_modified_gmt", render.wc_date(now, dt.timezone.utc)),
                )
            },
            "_links": {
                "self": [{"href": f"{self._home()}{PREFIX}webhooks/{sub.id}"}],
                "collection": [{"href": f"{self._home()}{PREFIX}webhooks"}],
            },
        }

    def _webhooks(self, request: Request, rest: list[str]) -> Response:
        state = self.state
        if request.method == "GET" and not rest:
            with state.lock:
                subs = list(state.webhooks)
            return self._page(request, subs, self._webhook_json)
        if request.method == "POST" and not rest:
            try:
                data = request.json() or {}
            except ValueError:
                return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
            topic = str(data.get("topic") or "")
            if topic not in _VALID_TOPICS:
                return _error(
                    "woocommerce_rest_webhook_invalid_topic",
                    "Webhook topic is required and must be valid.",
                    400,
                )
            address = str(data.get("delivery_url") or "")
            if not address.startswith(("http://", "https://")):
                return _error(
                    "woocommerce_rest_webhook_invalid_delivery_url",
                    "Webhook delivery URL must be a valid URL starting with http:// or https://.",
                    400,
                )
            secret = str(data.get("secret") or "") or secrets.token_urlsafe(36)
            sub = Subscription(state.new_id("webhooks"), topic, address, secret)
            with state.lock:
                state.webhooks.append(sub)
            self._ping(sub)
            return Response.json(self._webhook_json(sub), status=201)
        if len(rest) == 1 and rest[0].isdigit():
            with state.lock:
                found = [s for s in state.webhooks if s.id == rest[0]]
                if found and request.method == "DELETE":
                    state.webhooks.remove(found[0])
            if not found:
                return self._not_found("webhooks")
            return Response.json(self._webhook_json(found[0]))
        return _error(
            "rest_no_route", "No route was found matching the URL and request method.", 404
        )

    def _ping(self, sub: Subscription) -> None:
        """``WC_Webhook::deliver_ping()``: a form body ``webhook_id=<id>``, in the background."""
        body = f"webhook_id={sub.id}".encode()

        def post() -> None:
            req = urllib.request.Request(
                sub.address,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": f"WordPress/{WP_VERSION}; {self._site()}",
                },
            )
            status: int | None
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(req, timeout=10) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            self.pings.append((sub.id, status))
            with self.state.lock:
                self.state.deliveries.append(DeliveryAttempt(sub.id, f"ping-{sub.id}", status))

        threading.Thread(target=post, name=f"wc-webhook-ping-{sub.id}", daemon=True).start()
