"""What an adapter is, and how shopsync finds one by name.

An adapter knows one platform and nothing about retention: it reads the shop's customers,
orders and products page by page and maps them to :mod:`shopsync.models`. Adapters are
plugins: a distribution registers a class in the ``shopsync.adapters`` entry-point group
and :func:`connect` builds it from keyword settings::

    [project.entry-points."shopsync.adapters"]
    bigcommerce = "shopsync_bigcommerce:BigCommerceAdapter"

The built-in Shopify and WooCommerce adapters register the same way; the core never
imports a concrete adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from shopsync.errors import AdapterNotFoundError, ConfigurationError
from shopsync.models import Customer, MarketingConsent, Order, Product

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "CustomerChange",
    "Deletion",
    "Page",
    "RecordMapper",
    "Rejected",
    "Resource",
    "WebhookEvent",
    "WebhookParser",
    "adapter_class",
    "available_adapters",
    "connect",
]

ENTRY_POINT_GROUP = "shopsync.adapters"

Resource = Literal["customers", "orders", "products"]
RecordT = TypeVar("RecordT", Customer, Order, Product)


@dataclass(frozen=True)
class Rejected:
    """A platform record that could not be mapped; it goes to the quarantine, not away."""

    resource: str
    record_id: str | None
    raw: str
    """The record as received (JSON text)."""
    reason: str


@dataclass(frozen=True)
class Page(Generic[RecordT]):
    """One page of a read: the mapped records, the rejected ones, and where it ends.

    ``high_water`` is the instant up to which the read is complete: a new read from it (minus
    an overlap) misses nothing. A read ordered by ``updated_at`` sets it to the largest
    ``updated_at`` seen so far; an unordered scan leaves it None until its last page.
    ``cursor`` is the adapter's own position, kept for diagnostics.
    """

    records: Sequence[RecordT]
    rejected: Sequence[Rejected] = ()
    cursor: str | None = None
    high_water: dt.datetime | None = None
    stats: dict[str, int] = field(default_factory=dict)
    """Request counters of this page (``requests``, ``retries``, ``throttle_waits``)."""


@dataclass(frozen=True)
class Deletion:
    """A record the platform reports as deleted."""

    resource: Resource
    record_id: str
    deleted_at: dt.datetime


@dataclass(frozen=True)
class CustomerChange:
    """A fact about a stored customer that arrives without the customer record (Shopify's
    consent and tag topics since 2025-01): applied to the stored row, never replacing it.

    A consent is applied unless the store holds one updated later (a retried delivery that
    arrives after a newer one changes nothing)."""

    customer_id: str
    email_consent: MarketingConsent | None = None
    sms_consent: MarketingConsent | None = None
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook delivery, mapped: what the store must do with it."""

    topic: str
    """The platform's topic, e.g. ``orders/updated`` or ``order.updated``."""
    shop: str
    delivery_id: str | None
    """The platform's id of this delivery (the same across its retries): the de-dup key."""
    records: Sequence[Customer | Order | Product] = ()
    rejected: Sequence[Rejected] = ()
    deleted: Sequence[Deletion] = ()
    redact_customer: str | None = None
    """Customer id whose personal data must be erased (GDPR customers/redact)."""
    redact_orders: Sequence[str] = ()
    """Further orders to erase with it (Shopify's ``orders_to_redact``, guest orders too)."""
    redact_contacts: Sequence[str] = ()
    """The customer's email and phone as the platform names them in the erasure request."""
    data_request_customer: str | None = None
    """Customer id whose data must be exported (GDPR customers/data_request)."""
    data_request_orders: Sequence[str] = ()
    """Further orders the access request names (Shopify's ``orders_requested``)."""
    redact_shop: bool = False
    ping: bool = False
    """A test delivery with nothing to apply (WooCommerce sends one on creation)."""
    customer_changes: Sequence[CustomerChange] = ()
    """Consent and tag changes of stored customers (see :class:`CustomerChange`)."""
    notice: Mapping[str, str] | None = None
    """A platform notice with nothing to store, e.g. Shopify's ``bulk_operations/finish``
    (``bulk_operation``, ``status``, ``error_code``): a waiting reader may act on it."""


@runtime_checkable
class Adapter(Protocol):
    """The read side every platform adapter provides.

    ``updated_since`` limits a read to records updated at or after that instant; the adapter
    may return a few older ones (an overlap window) but must never skip a newer one.
    """

    platform: str
    """Entry-point name of the adapter, e.g. ``"shopify"``."""
    shop: str
    """The shop as it appears in :attr:`shopsync.models.Customer.shop`."""

    def read_customers(
        self, updated_since: dt.datetime | None = None
    ) -> Iterator[Page[Customer]]: ...

    def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Order]]: ...

    def read_products(
        self, updated_since: dt.datetime | None = None
    ) -> Iterator[Page[Product]]: ...

    def close(self) -> None: ...


@runtime_checkable
class RecordMapper(Protocol):
    """What an adapter class offers to map one raw record again (quarantine retry)."""

    @staticmethod
    def map_record(resource: str, raw: str, shop: str) -> Customer | Order | Product:
        """Map the JSON text of one record as the platform sent it; raise InvalidRecordError."""
        ...


@runtime_checkable
class WebhookParser(Protocol):
    """What an adapter class offers to turn a raw delivery into a :class:`WebhookEvent`."""

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """Verify the signature (raise ``SignatureError``) and map the payload."""
        ...


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_adapters() -> list[str]:
    """Names of the installed adapters."""
    return sorted(_entry_points())


def adapter_class(name: str) -> Any:
    """The class (or factory) registered as ``name`` in the entry-point group."""
    found = _entry_points().get(name)
    if found is None:
        raise AdapterNotFoundError(name, available_adapters())
    try:
        return found.load()
    except ImportError as exc:
        raise ConfigurationError(
            f"adapter {name!r} is installed but cannot be imported: {exc}"
        ) from exc


def connect(name: str, **settings: Any) -> Adapter:
    """Build the adapter registered as ``name`` from its keyword settings.

    >>> shop = shopsync.connect("shopify", shop="acme.myshopify.com", access_token=token)
    """
    factory = adapter_class(name)
    try:
        adapter = factory(**settings)
    except TypeError as exc:
        raise ConfigurationError(f"adapter {name!r} does not accept these settings: {exc}") from exc
    if not isinstance(adapter, Adapter):
        raise ConfigurationError(f"adapter {name!r} does not implement shopsync.adapter.Adapter")
    return adapter
