"""An emulated Shopify shop: GraphQL Admin API, a REST subset, bulk operations, OAuth and
webhooks, rendered from a :class:`~shopsync.testing.state.ShopState`.

It enforces what decides a client's design on the real platform, with the real numbers:

- GraphQL cost: requested cost computed from the query before it runs (Shopify's rules, see
  :mod:`._graphql`), a per-shop leaky bucket (standard plan 2000 points, 100/s restore by
  default), the difference to the actual cost refunded, ``extensions.cost.throttleStatus``
  on every answer, ``THROTTLED`` as HTTP 200 with ``actualQueryCost: null`` when the bucket
  cannot hold the request, ``MAX_COST_EXCEEDED`` above 1000 points;
- cursor pagination with ``first``/``after`` (max 250), ``query: "updated_at:>'…'"`` filters
  and ``sortKey: UPDATED_AT`` tie-broken by id, so equal timestamps page stably;
- bulk operations: ``bulkOperationRunQuery``, up to five at once from 2026-01, polled
  through ``node(id:)`` or ``currentBulkOperation``, a JSONL result (children on their own
  lines with ``__parentId``, ungrouped and shuffled from 2026-01, ``/`` escaped as Shopify
  writes it) served from an expiring signed URL, ``partialDataUrl`` on failure and the
  ``bulk_operations/finish`` webhook (see :mod:`._emu_bulk`);
- REST: ``shop.json``, ``customers.json``, ``orders.json``, ``products.json`` with
  ``Link``-header cursor pagination exactly as ShopifyAPI parses it, the 40-call/2-per-second
  bucket, ``X-Shopify-Shop-Api-Call-Limit`` and 429 with ``Retry-After``;
- ``X-Shopify-Access-Token`` on every Admin API call (401 otherwise), and the OAuth install
  flow (``/admin/oauth/authorize`` redirects with a signed callback,
  ``/admin/oauth/access_token`` exchanges the code).

Each protocol is a module of handlers over the shared state (moto's ``responses``):
:mod:`._emu_graphql` with :mod:`._emu_writes` and :mod:`._emu_bulk`, :mod:`._emu_rest`,
:mod:`._emu_oauth` and :mod:`._emu_webhooks`; this class holds the state and the one route
table (``ShopifyEmulator.routes``) that lists every endpoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from shopsync.testing.profile import GenerationProfile
from shopsync.testing.routes import Handler, Route, RouteTable
from shopsync.testing.server import Request, Response
from shopsync_shopify import _emu_bulk as bulk_emu
from shopsync_shopify import _render as render
from shopsync_shopify._emu_bulk import BulkApi, BulkOperation
from shopsync_shopify._emu_graphql import MAX_QUERY_COST, GraphQLApi
from shopsync_shopify._emu_oauth import BAD_TOKEN, OAuth
from shopsync_shopify._emu_rest import RestApi
from shopsync_shopify._emu_topics import CustomerFacts
from shopsync_shopify._emu_variety import add_variety
from shopsync_shopify._emu_webhooks import Webhooks
from shopsync_shopify._emu_writes import DiscountCode, Mutations
from shopsync_shopify._graphql import Executor
from shopsync_shopify.versions import API_VERSION

if TYPE_CHECKING:
    from shopsync.testing.state import Event, ShopState, Subscription
    from shopsync.testing.webhooks import Delivery

__all__ = ["DEFAULT_API_VERSION", "PLANS", "ShopifyEmulator"]

DEFAULT_API_VERSION = API_VERSION
PLANS: dict[str, tuple[float, float]] = {
    "legacy": (1000.0, 50.0),
    "standard": (2000.0, 100.0),
    "advanced": (4000.0, 200.0),
    "plus": (20000.0, 1000.0),
}
"""GraphQL bucket size and restore rate (points, points/s) per plan."""
ORDER_WINDOW = dt.timedelta(days=60)
"""What an app without ``read_all_orders`` sees of a shop's orders."""

_API_PATH = re.compile(r"^/admin/api/(?P<version>[^/]+)/(?P<rest>.+)$")
_API = "/admin/api/{version}"
_RESOURCE = "{resource:customers|orders|products}"


class LeakyBucket:
    """Shopify's leaky bucket: ``available`` refills at ``rate`` per second up to ``size``."""

    def __init__(self, size: float, rate: float, clock: Callable[[], float]) -> None:
        self.size, self.rate, self.clock = size, rate, clock
        self._available = size
        self._at = clock()
        self.lock = threading.Lock()

    def available(self) -> float:
        now = self.clock()
        self._available = min(self.size, self._available + (now - self._at) * self.rate)
        self._at = now
        return self._available

    def take(self, amount: float) -> None:
        self.available()
        self._available -= amount

    def give(self, amount: float) -> None:
        self.available()
        self._available = min(self.size, self._available + amount)


class ShopifyEmulator:
    """Serves one :class:`ShopState` the way Shopify's Admin API does.

    Options: ``access_token``; ``api_key``/``api_secret`` (the app's OAuth client and the
    webhook signing secret); ``plan`` (``standard`` by default) or ``bucket_size`` and
    ``restore_rate``; ``max_query_cost``; ``rest_bucket_size``/``rest_leak_rate`` (40, 2/s);
    ``throttle_status`` (200 as Shopify answers, 429 for clients that want it);
    ``bulk_delay`` (seconds a bulk operation stays RUNNING, to test polling);
    ``bulk_fail_after`` (a bulk operation FAILS after that many records, with its partial
    data); ``bulk_url_ttl`` (seconds a signed result URL stays valid, on ``clock``);
    ``webhook_metafield_namespaces`` (metafields included in customer webhooks, as a
    subscription's ``metafieldNamespaces`` would; default ``("facts",)`` for birthdays);
    ``scopes`` (comma-separated, what ``access_scopes.json`` and an install report);
    ``order_variety`` (test orders, tips, duties, tax lines and cancel reasons at the rates
    of :mod:`._emu_variety`); ``clock`` (monotonic seconds for the buckets, replaceable in tests).
    """

    platform: ClassVar[str] = "shopify"
    generation: ClassVar[GenerationProfile] = GenerationProfile(
        # an order's source_name: the online store, point of sale or a draft order
        # (https://shopify.dev/docs/api/admin-rest/latest/resources/order, source_name)
        order_sources=(("web", 0.86), ("pos", 0.06), ("shopify_draft_order", 0.08)),
    )

    @classmethod
    def default_shop(cls, seed: int) -> str:
        return f"emulated-{seed}.myshopify.com"

    def __init__(
        self,
        state: ShopState,
        *,
        access_token: str | None = None,
        api_key: str = "emulated-api-key",
        api_secret: str = "emulated-api-secret",
        api_version: str = DEFAULT_API_VERSION,
        plan: str = "standard",
        bucket_size: float | None = None,
        restore_rate: float | None = None,
        max_query_cost: int = MAX_QUERY_COST,
        rest_bucket_size: int = 40,
        rest_leak_rate: float = 2.0,
        throttle_status: int = 200,
        bulk_delay: float = 0.0,
        bulk_fail_after: int | None = None,
        bulk_url_ttl: float = bulk_emu.URL_TTL,
        scopes: str = (
            "read_customers,read_orders,read_all_orders,read_products,"
            "write_customers,write_discounts"
        ),
        webhook_metafield_namespaces: tuple[str, ...] = ("facts",),
        order_variety: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        label = state.shop.split(".", 1)[0]
        self.access_token = access_token or f"shpat_{label}_emulated"
        self.api_key = api_key
        self.api_secret = api_secret
        self.api_version = api_version
        size, rate = PLANS[plan]
        self.gql_bucket = LeakyBucket(bucket_size or size, restore_rate or rate, clock)
        self.rest_bucket = LeakyBucket(float(rest_bucket_size), rest_leak_rate, clock)
        self.max_query_cost = max_query_cost
        self.throttle_status = throttle_status
        self.bulk_delay = bulk_delay
        self.bulk_fail_after = bulk_fail_after
        self.bulk_url_ttl = bulk_url_ttl
        self.customer_facts = CustomerFacts()
        if order_variety:
            add_variety(state)
        self._clock = clock
        self.scopes = scopes
        self.webhook_metafield_namespaces = tuple(webhook_metafield_namespaces)
        self.executor = Executor()
        self.tokens = {self.access_token}
        self.codes: set[str] = set()
        self.bulk_ops: dict[str, BulkOperation] = {}
        self.stats: dict[str, int] = {
            "graphql": 0,
            "throttled": 0,
            "rest": 0,
            "rest_429": 0,
            "bulk": 0,
        }
        self._ids = itertools.count(4046733967549)
        self._lock = threading.Lock()
        self.discounts: dict[str, DiscountCode] = {}
        """Code discounts created through ``discountCodeBasicCreate``, by lower-cased code."""
        self.metafields: dict[tuple[str, str, str], dict[str, Any]] = {}
        """Customer metafields set through ``metafieldsSet``, by (customer id, namespace, key)."""
        self.writes: Counter[str] = Counter()
        """Mutations by outcome: ``discount_created``, ``discount_taken``, ``tags_added``..."""
        self.graphql = GraphQLApi(self)
        self.mutations = Mutations(self)
        self.bulk = BulkApi(self)
        self.rest = RestApi(self)
        self.oauth = OAuth(self)
        self.webhooks = Webhooks(self)
        self.routes = self._route_table()

    def __repr__(self) -> str:
        return f"ShopifyEmulator(shop={self.state.shop!r})"

    def _route_table(self) -> RouteTable:
        """Every endpoint of the emulated shop, once. Admin API calls need the access token
        (``_admin``); REST calls also take from the REST bucket (``rest.metered``)."""
        admin, rest = self._admin, self.rest
        return RouteTable(
            [
                Route("GET", "/admin/oauth/authorize", self.oauth.authorize),
                Route("POST", "/admin/oauth/access_token", self.oauth.access_token),
                Route("GET", "/admin/oauth/access_scopes.json", self.oauth.access_scopes),
                Route("GET", r"/_emulator/bulk/{id:\d+}.jsonl", self.bulk.file),
                Route("GET", r"/_emulator/bulk/{id:\d+}.partial.jsonl", self.bulk.partial_file),
                Route("POST", f"{_API}/graphql.json", admin(self.graphql.handle)),
                Route("GET", f"{_API}/shop.json", admin(rest.metered(rest.shop))),
                Route("GET", f"{_API}/events.json", admin(rest.metered(rest.events))),
                Route("GET", f"{_API}/{_RESOURCE}.json", admin(rest.metered(rest.collection))),
                Route("GET", f"{_API}/{_RESOURCE}/count.json", admin(rest.metered(rest.count))),
                Route("GET", f"{_API}/{_RESOURCE}/{{id}}.json", admin(rest.metered(rest.one))),
            ],
            fallback=self._unrouted,
        )

    def _admin(self, handler: Handler) -> Handler:
        """``handler`` behind ``X-Shopify-Access-Token``: 401 without a known token."""

        def call(request: Request, params: Mapping[str, str]) -> Response:
            if request.headers.get("x-shopify-access-token") not in self.tokens:
                return Response.json({"errors": BAD_TOKEN}, status=401)
            return handler(request, params)

        return call

    def _unrouted(self, request: Request) -> Response:
        """No such endpoint: ``404 {"errors": "Not Found"}``, after the token check (and, on
        a REST path, the call limit) as Shopify does it."""
        match = _API_PATH.match(request.path)
        if match is None:
            return Response.json({"errors": "Not Found"}, status=404)

        def not_found(request: Request, params: Mapping[str, str]) -> Response:
            return Response.json({"errors": "Not Found"}, status=404)

        handler: Handler = not_found
        if match.group("rest") != "graphql.json":
            handler = self.rest.metered(self.rest.not_found)
        return self._admin(handler)(request, {})

    # ------------------------------------------------------------------ protocol

    def settings(self, base_url: str) -> dict[str, Any]:
        return {
            "shop": self.state.shop,
            "access_token": self.access_token,
            "base_url": base_url,
            "api_version": self.api_version,
        }

    def view(self, record: Any) -> Any:
        """What Shopify's payloads can carry of a shared model (see
        :func:`._render.expressible`): what a perfect sync stores."""
        return render.expressible(record)

    def rate_limited(self, retry_after: float) -> Response:
        return self.rest.rate_limited(retry_after)

    def handle(self, request: Request) -> Response:
        return self.routes.dispatch(request)

    def webhook(self, event: Event, subscription: Subscription) -> Delivery | None:
        return self.webhooks.webhook(event, subscription)

    def webhook_payload(self, topic: str, event: Event) -> dict[str, Any] | None:
        """The REST-shaped body Shopify posts for ``topic``."""
        return self.webhooks.webhook_payload(topic, event)

    def callback_hmac(self, params: Mapping[str, str]) -> str:
        """The ``hmac`` Shopify puts on an OAuth callback (see :mod:`._emu_oauth`)."""
        return self.oauth.callback_hmac(params)

    # ------------------------------------------------------------------ what an app sees

    def visible(self, resource: str, record: Any) -> bool:
        """Without ``read_all_orders`` Shopify shows only orders created in the last 60 days,
        silently (https://shopify.dev/docs/api/usage/access-scopes, ``read_all_orders``)."""
        if resource != "orders" or "read_all_orders" in self.scopes.split(","):
            return True
        return bool(record.created_at >= self.state.clock() - ORDER_WINDOW)

    def window(self, resource: str, rows: list[Any]) -> list[Any]:
        if resource != "orders" or "read_all_orders" in self.scopes.split(","):
            return rows
        return [r for r in rows if self.visible(resource, r)]
