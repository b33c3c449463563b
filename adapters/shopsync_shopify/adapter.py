"""The Shopify adapter: one shop read through the GraphQL Admin API, paced by the cost
bucket, with bulk operations for big backfills, webhooks and write-back.

:class:`ShopifyAdapter` is a composition of the modules that hold each part:

- :mod:`._transport`: the GraphQL call, paced by the cost bucket, under the retry policy;
- :mod:`._paging`: page sizes under the cost cap, and the estimate that picks paging or bulk;
- :mod:`._reads`: customers, orders, products, deletions, counts, the shop currency;
- :mod:`._bulk`: bulk operations (run, poll, download, reassemble the JSONL);
- :mod:`._access`: granted scopes, the 60-day order window, the API version's support;
- :mod:`._write_back`: discount codes, customer tags, customer metafields;
- :mod:`.webhooks` and :mod:`.mapping`: deliveries and quarantined records, mapped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar, Literal

from pydantic import SecretStr

from shopsync.adapter import (
    CheckoutReader,
    CustomerFieldWriter,
    DeletionReader,
    DiscountWriter,
    Page,
    TagWriter,
    WebhookEvent,
    WebhookParser,
)
from shopsync.adapter_kit import RequestCounter
from shopsync.checkouts import Checkout
from shopsync.errors import ConfigurationError
from shopsync.http import HttpClient, RetryPolicy
from shopsync.models import Customer, Order, Product
from shopsync_shopify import _checkouts, mapping, webhooks
from shopsync_shopify._access import AccessChecks
from shopsync_shopify._paging import BULK_OVERHEAD_SECONDS, BULK_THRESHOLD, MAX_PAGE
from shopsync_shopify._reads import ShopifyReads
from shopsync_shopify._write_back import WriteBack
from shopsync_shopify.mapping import PLATFORM
from shopsync_shopify.versions import API_VERSION

__all__ = ["API_VERSION", "BULK_OVERHEAD_SECONDS", "BULK_THRESHOLD", "ShopifyAdapter"]


class ShopifyAdapter(
    ShopifyReads,
    AccessChecks,
    WriteBack,
    DeletionReader,
    WebhookParser,
    DiscountWriter,
    TagWriter,
    CustomerFieldWriter,
    CheckoutReader,
):
    """Reads one Shopify shop through the GraphQL Admin API.

    ``shop`` is the ``*.myshopify.com`` domain; ``base_url`` overrides ``https://{shop}`` (the
    emulator); ``page_size`` caps a page (the cost cap may make it smaller);
    ``bulk_threshold`` chooses the read path: ``"auto"`` by estimated cost against
    ``bulk_overhead`` seconds, an int as a fixed record count, ``None`` never bulk.
    """

    platform = PLATFORM
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "customer_id"
    """A code is limited to customers by id (``context.customers``)."""
    access_needed: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "sync": ("read_customers", "read_orders", "read_all_orders", "read_products"),
        "apply": ("write_customers", "write_discounts"),
    }
    """Access scopes per use: sync reads, apply writes tags, metafields and discount codes
    (``read_all_orders`` lifts the 60-day limit on orders)."""
    access_hint: ClassVar[str] = (
        "grant the missing scopes to the app (a custom app: Settings > Apps and sales "
        "channels > Develop apps > Configuration > Admin API access scopes; a Partner app: "
        "the access_scopes of shopify.app.toml), then reinstall or approve the app so the "
        "token carries them; a public app must also request read_all_orders from Shopify"
    )

    def __init__(
        self,
        *,
        shop: str,
        access_token: SecretStr | str,
        api_version: str = API_VERSION,
        base_url: str | None = None,
        timeout: float = 30.0,
        page_size: int | None = None,
        bulk_threshold: int | Literal["auto"] | None = BULK_THRESHOLD,
        bulk_overhead: float = BULK_OVERHEAD_SECONDS,
        bulk_poll_interval: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not shop:
            raise ConfigurationError("shopify: shop is required (e.g. 'acme.myshopify.com')")
        if page_size is not None and not 1 <= page_size <= MAX_PAGE:
            raise ConfigurationError(f"shopify: page_size must be between 1 and {MAX_PAGE}")
        self.shop = shop
        self._token = (
            access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        )
        self.api_version = api_version
        self.base_url = (base_url or f"https://{shop}").rstrip("/")
        self.endpoint = f"{self.base_url}/admin/api/{api_version}/graphql.json"
        self.page_size = page_size
        if not (
            bulk_threshold is None or bulk_threshold == "auto" or isinstance(bulk_threshold, int)
        ):
            raise ConfigurationError('shopify: bulk_threshold is "auto", a record count or None')
        self.bulk_threshold = bulk_threshold
        self.bulk_overhead = bulk_overhead
        self.bulk_poll_interval = bulk_poll_interval
        self.http = HttpClient(
            PLATFORM, timeout=timeout, policy=retry_policy or RetryPolicy(), sleep=sleep
        )
        self._sleep = sleep
        self._counter = RequestCounter(self.http.stats)
        """HTTP stats already reported in a page (see :meth:`_page_stats`)."""
        self._clock = clock
        self._bucket: tuple[float, float, float, float] | None = None
        """(maximum, available, restore rate, clock time) from the last throttleStatus."""
        self._per_node: dict[str, float] = {}
        """Requested cost of one node of a page query, learned from Shopify's answers."""
        self._cap: dict[str, int] = {}
        """Page sizes Shopify refused as too costly, per resource (a pricing we mis-model)."""
        self._per_record: dict[str, float] = {}
        """Actual points per record read by paging, as Shopify charged them."""
        self._granted: frozenset[str] | None = None
        self.read_path: dict[str, str] = {}
        """Per resource, how the last read went: ``"paging"`` or ``"bulk"``."""
        self._currency: str | None = None
        self.counters = {"throttled": 0, "paced_seconds": 0, "queries": 0, "actual_cost": 0}

    def __repr__(self) -> str:
        return f"ShopifyAdapter(shop={self.shop!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ShopifyAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """A verified delivery, mapped (see :func:`shopsync_shopify.webhooks.parse_webhook`)."""
        return webhooks.parse_webhook(headers, raw_body, secret)

    def read_checkouts(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Checkout]]:
        """Abandoned checkouts updated since then (see :mod:`shopsync_shopify._checkouts`)."""
        return _checkouts.read_checkouts(self, updated_since)

    @staticmethod
    def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
        """Map a quarantined record again (see :func:`shopsync_shopify.mapping.map_record`)."""
        return mapping.map_record(resource, raw, shop)
