"""The WooCommerce adapter: one store read through the REST API ``wc/v3``, with webhooks
and write-back.

:class:`WooCommerceAdapter` is a composition of the modules that hold each part:

- :mod:`._transport`: requests through the ``woocommerce`` client under the retry policy;
- :mod:`._paging`: keyset paging on the modification date, and the full scan;
- :mod:`._reads`: customers, orders (with their refunds), products, trashed orders;
- :mod:`._access`: the key's permissions and where marketing consent comes from;
- :mod:`._write_back`: coupons, customer tags and fields (in ``meta_data``);
- :mod:`.webhooks` and :mod:`.mapping`: deliveries and quarantined records, mapped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import woocommerce  # type: ignore[import-untyped]
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
from shopsync.checkouts import Checkout
from shopsync.errors import ConfigurationError
from shopsync.http import HttpClient, RetryPolicy
from shopsync.models import Customer, Order, Product
from shopsync_woocommerce import _checkouts, webhooks
from shopsync_woocommerce._access import AccessChecks
from shopsync_woocommerce._reads import WooReads
from shopsync_woocommerce._write_back import WriteBack
from shopsync_woocommerce.consent import resolve_sources
from shopsync_woocommerce.mapping import PLATFORM

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_PARALLEL_READS",
    "DEFAULT_TIMEOUT",
    "MAX_PARALLEL_READS",
    "WooCommerceAdapter",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds per request. The client's own default (5 s) is too short for a page of 100 orders
on a busy shared host; 30 s lets a slow page finish and still fails a dead connection."""

DEFAULT_OVERLAP = dt.timedelta(minutes=5)
"""How far before ``updated_since`` an incremental read starts (see :mod:`._reads`)."""


DEFAULT_PARALLEL_READS = 2
"""Requests a large read of orders has on the wire at once. WordPress serves each request in
a PHP worker of its own, and hosts run several; two keep one busy while the reader maps the
answer of the other, without leaning on a small host."""

MAX_PARALLEL_READS = 8


def _shop_from_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return host + parts.path.rstrip("/")


class WooCommerceAdapter(
    WooReads,
    AccessChecks,
    WriteBack,
    DeletionReader,
    WebhookParser,
    DiscountWriter,
    TagWriter,
    CustomerFieldWriter,
    CheckoutReader,
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
    WooCommerce core has no consent field. ``parallel_reads`` (1-:data:`MAX_PARALLEL_READS`)
    is how many requests a large read of orders may have on the wire at once, each over its
    own window of modification time (:mod:`._windows`); 1 reads page after page.
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
        parallel_reads: int = DEFAULT_PARALLEL_READS,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("url must start with http:// or https://")
        if not 1 <= per_page <= 100:
            raise ConfigurationError("per_page must be between 1 and 100 (WooCommerce's limit)")
        if type(parallel_reads) is not int or not 1 <= parallel_reads <= MAX_PARALLEL_READS:
            raise ConfigurationError(
                f"parallel_reads must be a whole number from 1 to {MAX_PARALLEL_READS}"
            )
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
        self.parallel_reads = parallel_reads
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

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """A verified delivery, mapped (see :func:`shopsync_woocommerce.webhooks.parse_webhook`)."""
        return webhooks.parse_webhook(headers, raw_body, secret)

    @staticmethod
    def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
        """Map a quarantined REST record again (products without their variations' prices)."""
        return webhooks.map_record(resource, raw, shop)

    def read_checkouts(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Checkout]]:
        """Draft and pending orders as checkouts (:mod:`shopsync_woocommerce._checkouts`)."""
        return _checkouts.read_checkouts(self, updated_since)

    def close(self) -> None:
        self.http.close()
