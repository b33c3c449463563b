"""What an adapter is, and how shopsync finds one by name.

An adapter knows one platform and nothing about retention: it reads the shop's customers,
orders and products page by page and maps them to :mod:`shopsync.models`. Adapters are
plugins: a distribution registers a class in the ``shopsync.adapters`` entry-point group
and :func:`connect` builds it from keyword settings::

    [project.entry-points."shopsync.adapters"]
    bigcommerce = "shopsync_bigcommerce:BigCommerceAdapter"

The built-in adapters register the same way; the core never imports a concrete adapter.

Capabilities are types, checked when the adapter is built (as pluggy checks a plugin when it
registers, not when a hook is first called). Every adapter reads (:class:`Adapter`); what it
can do beyond that it declares by subclassing the capability protocols, one vocabulary for
every platform::

    class BigCommerceAdapter(DeletionReader, WebhookParser, DiscountWriter, TagWriter,
                             CustomerFieldWriter): ...

:func:`connect` (and :func:`check_capabilities`) refuse an adapter that declares a
capability without implementing each of its members, with the missing names; code outside
the adapter asks :func:`capability` for a typed view instead of testing for names, so mypy
checks the call and an undeclared method is never called.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, overload, runtime_checkable

from shopsync.checkouts import Checkout
from shopsync.errors import AdapterNotFoundError, ConfigurationError
from shopsync.models import Customer, MarketingConsent, Money, Order, Product

__all__ = [
    "CAPABILITIES",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Capability",
    "CapabilityError",
    "CheckoutReader",
    "CustomerChange",
    "CustomerFieldWriter",
    "Deletion",
    "DeletionReader",
    "DiscountWriter",
    "Page",
    "RecordMapper",
    "Rejected",
    "Resource",
    "TagWriter",
    "WebhookEvent",
    "WebhookParser",
    "adapter_class",
    "available_adapters",
    "capabilities",
    "capability",
    "check_capabilities",
    "connect",
]

ENTRY_POINT_GROUP = "shopsync.adapters"

Resource = Literal["customers", "orders", "products"]
RecordT = TypeVar("RecordT", Customer, Order, Product, Checkout)


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
    completed_checkouts: Sequence[tuple[str, dt.datetime]] = ()
    """Checkouts the page's orders were placed from, with when (Shopify ``checkoutToken``):
    the sync completes them in the page's transaction, as an order webhook's."""


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
    checkouts: Sequence[Checkout] = ()
    """Checkouts the delivery carries (Shopify ``checkouts/create``/``update``; issue 22)."""
    deleted_checkouts: Sequence[tuple[str, dt.datetime]] = ()
    """Checkouts the platform deleted, with when (Shopify ``checkouts/delete``)."""
    completed_checkouts: Sequence[tuple[str, dt.datetime]] = ()
    """Checkouts an order was placed from, with when (Shopify ``checkout_token``)."""
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
    """Capability ``webhooks``: turn a raw delivery into a :class:`WebhookEvent`.

    Header names arrive lower-cased (:func:`shopsync.webhooks.handle` does that)."""

    @staticmethod
    def parse_webhook(headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookEvent:
        """Verify the signature (raise ``SignatureError``) and map the payload."""
        ...


@runtime_checkable
class DeletionReader(Protocol):
    """Capability ``deletions``: records the platform reports as deleted since an instant
    (the sync deletes them from the store). May return some older ones, never skip one."""

    def read_deletions(self, updated_since: dt.datetime | None = None) -> Iterator[Deletion]: ...


@runtime_checkable
class DiscountWriter(Protocol):
    """Capability ``discount_codes``: single-use codes only one customer can redeem."""

    discount_limited_by: ClassVar[Literal["customer_id", "email"]]
    """What the platform limits a code to: the customer's id, or their email address (then
    a customer without one cannot be given a code, and the platform sink cancels it)."""

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
        """A code worth ``amount`` off the order or ``percent`` off (exactly one; else raise
        ``ConfigurationError``), usable once, by ``customer`` only, until ``expires_at``.

        Idempotent by code: a retry finds the code made before instead of making a second
        one. The answer carries at least ``id``, ``code`` and ``created`` (False when the
        code already existed)."""
        ...


@runtime_checkable
class TagWriter(Protocol):
    """Capability ``tags``: customer tags (a platform without them keeps a list elsewhere,
    but reads it back as :attr:`shopsync.models.Customer.tags`)."""

    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Add tags; tags already there stay, adding twice changes nothing."""
        ...

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        """Remove these tags; the others stay, removing an absent one changes nothing."""
        ...


@runtime_checkable
class CustomerFieldWriter(Protocol):
    """Capability ``customer_fields``: named values on a customer (loyalty balance, tier)."""

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        """Set ``{key: value}`` under ``namespace``, as an upsert (setting the same value
        again changes nothing). An ``int`` is stored as the platform's integer type where it
        has one; :meth:`customer_fields` reads every value back as text."""
        ...


@runtime_checkable
class CheckoutReader(Protocol):
    """Capability ``checkouts``: checkouts shoppers started, finished or not (issue 22:
    Shopify's abandoned checkouts, WooCommerce's draft and pending orders), updated at or
    after an instant; may return some older ones, never skip one."""

    def read_checkouts(
        self, updated_since: dt.datetime | None = None
    ) -> Iterator[Page[Checkout]]: ...


Capability = Literal[
    "read", "deletions", "webhooks", "discount_codes", "tags", "customer_fields", "checkouts"
]

CAPABILITIES: Mapping[Capability, type] = {
    "read": Adapter,
    "deletions": DeletionReader,
    "webhooks": WebhookParser,
    "discount_codes": DiscountWriter,
    "tags": TagWriter,
    "customer_fields": CustomerFieldWriter,
    "checkouts": CheckoutReader,
}
"""Each capability's protocol. ``read`` every adapter has; the others an adapter declares by
subclassing the protocol."""

_METHODS: Mapping[Capability, tuple[str, ...]] = {
    "read": ("read_customers", "read_orders", "read_products", "close"),
    "deletions": ("read_deletions",),
    "webhooks": ("parse_webhook",),
    "discount_codes": ("create_discount_code",),
    "tags": ("add_customer_tags", "remove_customer_tags"),
    "customer_fields": ("set_customer_fields",),
    "checkouts": ("read_checkouts",),
}
_CLASS_ATTRIBUTES: Mapping[Capability, tuple[str, ...]] = {
    "read": ("platform",),
    "discount_codes": ("discount_limited_by",),
}
_PROTOCOLS = frozenset(CAPABILITIES.values())


class CapabilityError(ConfigurationError):
    """An adapter declares a capability without implementing all of it (``missing``)."""

    def __init__(self, adapter: str, capability: Capability, missing: tuple[str, ...]) -> None:
        protocol = CAPABILITIES[capability].__name__
        verb = "declares" if capability != "read" else "is"
        super().__init__(
            f"adapter {adapter} {verb} a shopsync.adapter.{protocol} ({capability!r}) but "
            f"has no {', '.join(missing)}"
        )
        self.adapter = adapter
        self.capability = capability
        self.missing = missing


def _class(adapter: object) -> type:
    return adapter if isinstance(adapter, type) else type(adapter)


def capabilities(adapter: object) -> frozenset[Capability]:
    """What an adapter (or adapter class) declares it can do, ``read`` always included."""
    mro = _class(adapter).__mro__
    return frozenset(
        name for name, protocol in CAPABILITIES.items() if name == "read" or protocol in mro
    )


def _implemented(adapter: object, name: str) -> bool:
    """True if ``name`` is defined by the adapter itself, not inherited as a protocol stub."""
    if not isinstance(adapter, type) and name in getattr(adapter, "__dict__", {}):
        return callable(adapter.__dict__[name])
    for klass in _class(adapter).__mro__:
        if name in vars(klass):
            found = vars(klass)[name]
            return klass not in _PROTOCOLS and callable(found)
    return False


def check_capabilities(
    adapter: object, name: str | None = None, *, only: Capability | None = None
) -> None:
    """Raise :class:`CapabilityError` naming each member a declared capability lacks.

    Works on an adapter or its class (then instance attributes such as ``shop`` are not
    checked). ``name`` is how the message calls it (default: its ``platform`` and class);
    ``only`` checks that one capability (if declared)."""
    cls = _class(adapter)
    where = f"{cls.__module__}.{cls.__qualname__}"
    name = f"{name or getattr(adapter, 'platform', None) or cls.__name__!r} ({where})"
    declared = capabilities(adapter)
    for capability in CAPABILITIES:  # reading first
        if capability not in declared or (only is not None and capability != only):
            continue
        missing = tuple(m for m in _METHODS[capability] if not _implemented(adapter, m))
        missing += tuple(
            a for a in _CLASS_ATTRIBUTES.get(capability, ()) if not hasattr(adapter, a)
        )
        if capability == "read" and not isinstance(adapter, type) and not hasattr(adapter, "shop"):
            missing += ("shop",)
        if missing:
            raise CapabilityError(name, capability, missing)


@overload
def capability(adapter: object, name: Literal["read"]) -> Adapter | None: ...
@overload
def capability(adapter: object, name: Literal["deletions"]) -> DeletionReader | None: ...
@overload
def capability(adapter: object, name: Literal["webhooks"]) -> WebhookParser | None: ...
@overload
def capability(adapter: object, name: Literal["discount_codes"]) -> DiscountWriter | None: ...
@overload
def capability(adapter: object, name: Literal["tags"]) -> TagWriter | None: ...
@overload
def capability(adapter: object, name: Literal["customer_fields"]) -> CustomerFieldWriter | None: ...
@overload
def capability(adapter: object, name: Literal["checkouts"]) -> CheckoutReader | None: ...
def capability(adapter: object, name: Capability) -> object | None:
    """The adapter typed as capability ``name``'s protocol if it declares it, else None::

    tags = capability(adapter, "tags")
    if tags is not None:
        tags.add_customer_tags(customer_id, ["vip"])
    """
    if name not in CAPABILITIES:
        raise ValueError(f"unknown capability {name!r}; expected one of {sorted(CAPABILITIES)}")
    return adapter if name in capabilities(adapter) else None


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
    """Build the adapter registered as ``name`` from its keyword settings, and check it
    implements every capability it declares (:func:`check_capabilities`).

    >>> shop = shopsync.connect("shopify", shop="acme.myshopify.com", access_token=token)
    """
    factory = adapter_class(name)
    try:
        adapter = factory(**settings)
    except TypeError as exc:
        raise ConfigurationError(f"adapter {name!r} does not accept these settings: {exc}") from exc
    try:
        check_capabilities(adapter, name)
    except CapabilityError as exc:
        if exc.capability != "read":
            raise
        raise ConfigurationError(
            f"adapter {name!r} does not implement shopsync.adapter.Adapter: no "
            f"{', '.join(exc.missing)}"
        ) from None
    return adapter  # type: ignore[no-any-return]
