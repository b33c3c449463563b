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

Each part is a module of handlers over the shared state (moto's ``responses``):
:mod:`._emu_rest` (reads), :mod:`._emu_writes` (coupons, customer meta),
:mod:`._emu_webhooks` and :mod:`._auth`; this class holds the state and the one route table
(``WooCommerceEmulator.routes``) that lists every endpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

from shopsync.models import Customer, Order, Product
from shopsync.testing.profile import GenerationProfile
from shopsync.testing.routes import Route, RouteTable
from shopsync.testing.server import Request, Response
from shopsync.testing.state import Event, ShopState, Subscription
from shopsync.testing.webhooks import Delivery
from shopsync_woocommerce import _render as render
from shopsync_woocommerce._auth import AuthError, Credentials, OAuthVerifier
from shopsync_woocommerce._emu_fields import filter_response, requested_fields
from shopsync_woocommerce._emu_rest import PREFIX, Invalid, RestApi, error, no_route
from shopsync_woocommerce._emu_webhooks import WEBHOOK_TOPICS, Webhooks
from shopsync_woocommerce._emu_writes import Writes
from shopsync_woocommerce._store_habits import apply_store_habits
from shopsync_woocommerce.consent import KNOWN_SOURCES

__all__ = ["WEBHOOK_TOPICS", "WooCommerceEmulator"]

M = TypeVar("M", Customer, Order, Product)

_RECORDS = "{resource:customers|orders|products}"


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
    generation: ClassVar[GenerationProfile] = GenerationProfile(
        # created_via: the storefront checkout or the admin screen; a product with one
        # option is a "simple" product, with no variations (WooCommerce REST API, order
        # properties and product "type": https://woocommerce.github.io/woocommerce-rest-api-docs/)
        order_sources=(("checkout", 0.93), ("admin", 0.07)),
        single_option_has_variant=False,
    )

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
        self.rest = RestApi(self)
        self.writes_api = Writes(self)
        self.webhooks = Webhooks(self)
        self.routes = self._route_table()

    def __repr__(self) -> str:
        return f"WooCommerceEmulator(shop={self.state.shop!r}, https={self.https})"

    def _route_table(self) -> RouteTable:
        """Every endpoint of the store, once (paths under ``/wp-json/wc/v3/``)."""
        rest, writes, hooks = self.rest, self.writes_api, self.webhooks
        # WooCommerce 9.0 added GET /refunds; an older store has no such route.
        refunds = (
            [Route("GET", f"{PREFIX}refunds", rest.all_refunds)] if self.refunds_endpoint else []
        )
        return RouteTable(
            [
                Route("GET", f"{PREFIX}{_RECORDS}", rest.collection),
                Route("GET", f"{PREFIX}{_RECORDS}/{{id:\\d+}}", rest.one),
                Route("GET", f"{PREFIX}orders/{{id}}/refunds", rest.order_refunds),
                Route("GET", f"{PREFIX}products/{{id}}/variations", rest.variations),
                Route("GET", f"{PREFIX}data/currencies/current", rest.currency),
                *refunds,
                Route("GET", f"{PREFIX}coupons", writes.coupons),
                Route("POST", f"{PREFIX}coupons", writes.create_coupon),
                Route("GET", f"{PREFIX}coupons/{{id}}", writes.coupon),
                Route("PUT", f"{PREFIX}customers/{{id}}", writes.update_customer),
                Route("POST", f"{PREFIX}customers/{{id}}", writes.update_customer),
                Route("PATCH", f"{PREFIX}customers/{{id}}", writes.update_customer),
                Route("GET", f"{PREFIX}webhooks", hooks.collection),
                Route("POST", f"{PREFIX}webhooks", hooks.create),
                Route("GET", f"{PREFIX}webhooks/{{id:\\d+}}", hooks.one),
                Route("DELETE", f"{PREFIX}webhooks/{{id:\\d+}}", hooks.delete),
            ],
            fallback=no_route,
        )

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
        response = error(
            "woocommerce_rest_too_many_requests", "Too many requests. Please slow down.", 429
        )
        return Response(
            429, {**response.headers, "Retry-After": f"{max(retry_after, 0):g}"}, response.body
        )

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        return self.webhooks.webhook(event, subscription)

    def handle(self, request: Request) -> Response:
        """Authenticate (before any route, as WordPress does), then dispatch. A trailing or
        doubled slash names the same route."""
        if not self._base:
            self._base = request.base_url
        if not request.path.startswith(PREFIX):
            return no_route(request)
        form = None
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(request.body.decode(errors="replace")))
        try:
            authenticated = self.auth.authenticate(
                request.method, request.path, request.query_string, request.headers, form
            )
        except AuthError as exc:
            return error(exc.code, exc.message, 401)
        if not authenticated:
            verb = "list resources" if request.method == "GET" else "create resources"
            return error("woocommerce_rest_cannot_view", f"Sorry, you cannot {verb}.", 401)
        found = self.routes.match(request.method, PREFIX + request.path[len(PREFIX) :].strip("/"))
        try:
            if found is None:
                return no_route(request)
            route, params = found
            response = route.handler(request, params)
        except Invalid as bad:
            return error(
                "rest_invalid_param",
                f"Invalid parameter(s): {bad.param}",
                400,
                params={bad.param: bad.message},
            )
        return self._fields(request, route.handler, response)

    def _fields(self, request: Request, handler: Any, response: Response) -> Response:
        """``_fields`` on the answers the read handlers did not filter themselves (WordPress
        filters every answer but an error: :mod:`._emu_fields`; filtering is idempotent)."""
        fields = requested_fields(request.query, request.query_string)
        if fields is None or response.status >= 400 or not response.body:
            return response
        if getattr(handler, "__self__", None) is self.rest:
            return response
        body = filter_response(json.loads(response.body), fields)
        return Response.json(body, response.status, response.headers)

    def site(self) -> str:
        """The store's home URL as webhooks name it: ``site_url``, else ``http://<shop>``
        (the emulator answers on 127.0.0.1 but is the shop named by its state)."""
        return (self.site_url or f"http://{self.state.shop}").rstrip("/")

    def home(self) -> str:
        """The URL the store is reached at, for links in bodies and headers."""
        return self._base.rstrip("/")

    def _keep_trashed(self, event: Event) -> None:
        if event.topic == "order.deleted" and isinstance(event.record, Order):
            self.trash[event.record_id] = (event.record, event.at)
