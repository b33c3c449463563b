"""The shared models every adapter maps into and every retention rule reads.

They are frozen pydantic models that refuse unknown fields, so a mapping bug shows up as a
:class:`pydantic.ValidationError` naming the field instead of as a wrong number later. The
conventions they enforce:

- money is :class:`Money`: a ``Decimal`` with a currency code, never a float (every code
  Shopify or WooCommerce offers, see :mod:`shopsync._currencies`);
- quantities are exact non-negative ``Decimal`` s (:data:`Quantity`): stores that sell by
  weight or length sell 1.5 of a line; whole quantities stay whole (``Decimal(2)``);
- datetimes are timezone-aware and converted to UTC (a naive datetime is rejected);
- ids are non-empty strings, unique within ``(platform, shop)``;
- collections are tuples, so models stay hashable and immutable.

Issue 15's shared vocabulary is here under the agreed names. Details the
note left open: ``TaxLine.rate`` is a fraction (0.2 for 20 %); ``DiscountApplication.value_type``
is :class:`DiscountValueType`; ``FeeLine.total`` is plain :class:`Money` because WooCommerce
allows negative fees; amounts mean what docs/models.md says (excluding tax), converted by
:mod:`shopsync._money`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from shopsync._currencies import EXPONENTS, refusal
from shopsync._quantity import Quantity, quantity_from_units
from shopsync.errors import CurrencyMismatchError

__all__ = [
    "Address",
    "Consent",
    "ConsentState",
    "Customer",
    "DiscountApplication",
    "DiscountValueType",
    "FeeLine",
    "FinancialStatus",
    "Fulfillment",
    "FulfillmentLine",
    "FulfillmentStatus",
    "LineItem",
    "MarketingConsent",
    "Money",
    "OptInLevel",
    "Order",
    "Product",
    "Quantity",
    "Refund",
    "RefundLine",
    "TaxLine",
    "Variant",
    "json_schema",
    "quantity_from_units",
]

MONEY_DECIMALS = 4
"""Most decimal places an amount may carry: every ISO 4217 exponent (at most 4) fits, and
so do sub-cent line totals that WooCommerce stores (``"1.125"`` in a USD order)."""


MAX_AMOUNT = 10**14
"""Amounts are below this in magnitude: the store keeps ten-thousandths in a 64-bit integer
(up to about 9.2 * 10**18), and no shop's order comes near a hundred trillion."""

MAX_COUNT = 2**31 - 1
"""Largest quantity or count: the store's 32-bit integer columns."""

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (got a naive datetime, e.g. no 'Z')")
    return value.astimezone(dt.timezone.utc)


def _id(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("an id must be a string, not a boolean")
    if isinstance(value, int):
        return str(value)
    return value


UTCDateTime = Annotated[dt.datetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC."""

Id = Annotated[
    str, BeforeValidator(_id), Field(min_length=1, max_length=255, pattern=r"^[^\x00]*\S[^\x00]*$")
]
"""A platform id as a non-empty string (integers are accepted and turned into strings)."""

Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
"""Text that can be stored anywhere: no U+0000 (PostgreSQL refuses it) and, because the
constraint makes pydantic-core read the string as UTF-8, no lone surrogate either (JSON's
``"\\ud800"`` would otherwise pass). Checked in Rust, so it costs next to nothing."""

Tags = tuple[Text, ...]


def _amount(value: Any) -> Decimal:
    if isinstance(value, (float, bool)):
        raise ValueError(
            f"money must be a Decimal, int or decimal string, not {type(value).__name__}"
        )
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise ValueError(f"money must be a Decimal, int or decimal string, not {value!r}")
    if not value.is_finite():
        raise ValueError("an amount must be finite")
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(f"an amount must be below {MAX_AMOUNT:,}")
    if value != value.quantize(Decimal(1).scaleb(-MONEY_DECIMALS)):
        raise ValueError(f"an amount may have at most {MONEY_DECIMALS} decimal places")
    return value


def _currency_code(cls: Any, value: Any) -> Any:
    code = value.strip().upper() if isinstance(value, str) else value
    if not isinstance(code, str) or code not in EXPONENTS:
        raise ValueError(refusal(value))
    return code


class Money(_Frozen):
    """An amount of one currency. Adding or comparing two currencies raises."""

    amount: Annotated[Decimal, BeforeValidator(_amount)]
    """Exact decimal amount; accepts ``Decimal``, ``int`` or a decimal string, never a float."""
    currency: str
    """Currency code, upper case (``"EUR"``): ISO 4217, or a code a platform offers outside it
    (``"BTC"``, ``"IRT"``, ``"USDC"``; see :mod:`shopsync._currencies`)."""

    _currency = field_validator("currency", mode="before")(_currency_code)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Shorthand for ``Money(amount=..., currency=...)``."""
        return cls(amount=amount, currency=currency)

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} and {other.currency} amounts"
            )
        return other

    def __add__(self, other: object) -> Money:
        return Money(amount=self.amount + self._same(other).amount, currency=self.currency)

    def __sub__(self, other: object) -> Money:
        return Money(amount=self.amount - self._same(other).amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: object) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: object) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: object) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: object) -> bool:
        return self.amount >= self._same(other).amount

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def __str__(self) -> str:
        return f"{self.rounded().amount} {self.currency}"

    def rounded(self) -> Money:
        """The amount at the currency's own precision (half-up), for display and payment."""
        step = Decimal(1).scaleb(-EXPONENTS[self.currency])
        return Money(
            amount=self.amount.quantize(step, rounding=ROUND_HALF_UP), currency=self.currency
        )


def _non_negative(money: Money | None) -> Money | None:
    if money is not None and money.amount < 0:
        raise ValueError("amount must not be negative")
    return money


Amount = Annotated[Money, AfterValidator(_non_negative)]
"""Money that cannot be negative (prices, totals, refunds)."""


class ConsentState(str, Enum):
    """Marketing consent of one channel, in the vocabulary both platforms map onto."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"
    NOT_SUBSCRIBED = "not_subscribed"
    UNSUBSCRIBED = "unsubscribed"
    REDACTED = "redacted"
    UNKNOWN = "unknown"


class OptInLevel(str, Enum):
    SINGLE_OPT_IN = "single_opt_in"
    CONFIRMED_OPT_IN = "confirmed_opt_in"
    UNKNOWN = "unknown"


class MarketingConsent(_Frozen):
    """Consent for one channel (email or SMS)."""

    state: ConsentState = ConsentState.UNKNOWN
    opt_in_level: OptInLevel = OptInLevel.UNKNOWN
    updated_at: UTCDateTime | None = None
    """When the platform last recorded a change, if it says."""

    @property
    def allows_marketing(self) -> bool:
        """Only an explicit subscription allows marketing; pending and unknown do not."""
        return self.state is ConsentState.SUBSCRIBED


class Consent(_Frozen):
    """A customer's marketing consent per channel."""

    email: MarketingConsent = MarketingConsent()
    sms: MarketingConsent = MarketingConsent()


class Address(_Frozen):
    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    address1: Text | None = None
    address2: Text | None = None
    city: Text | None = None
    province: Text | None = None
    zip: Text | None = None
    country_code: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2."""
    phone: Text | None = None


_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")


def _email(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip().lower()
        if not value:
            return None
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
    return value


Email = Annotated[str | None, BeforeValidator(_email)]
"""An email address, stripped and lower-cased; an empty string means none."""


class _Record(_Frozen):
    platform: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9_]+$")]
    """Adapter name, e.g. ``"shopify"``."""
    shop: Annotated[Text, Field(min_length=1)]
    """The shop's domain or URL as the adapter names it."""
    id: Id


class Customer(_Record):
    """A customer account (guest buyers are not customers: see :attr:`Order.customer_id`)."""

    email: Email = None
    phone: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    tags: Tags = ()
    consent: Consent = Consent()
    birthday: dt.date | None = None
    default_address: Address | None = None
    orders_count: Count | None = None
    """As the platform reports it; features count the synced orders instead."""
    total_spent: Amount | None = None
    """As the platform reports it."""


class FinancialStatus(str, Enum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    CANCELLED = "cancelled"


class FulfillmentStatus(str, Enum):
    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    RESTOCKED = "restocked"
    ON_HOLD = "on_hold"


class LineItem(_Frozen):
    id: Id
    product_id: Id | None = None
    """None when the product was deleted from the shop."""
    variant_id: Id | None = None
    sku: Text | None = None
    title: Text
    product_type: Text | None = None
    quantity: Quantity
    """Units bought, exact (1.5 for a line sold by weight); an edited order's current quantity."""
    unit_price: Amount
    """Price of one unit before discounts, excluding tax (see docs/models.md and
    :func:`shopsync._money.excluding_tax` for platforms whose prices include tax)."""
    total_discount: Amount | None = None
    """Discounts allocated to this line; None when the platform does not say."""
    total: Amount
    """What the customer paid for the line: after line discounts, excluding tax."""
    refunded_quantity: Quantity = Decimal(0)

    @model_validator(mode="after")
    def _check(self) -> LineItem:
        if self.refunded_quantity > self.quantity:
            raise ValueError("refunded_quantity exceeds quantity")
        currencies = {self.unit_price.currency, self.total.currency}
        if self.total_discount is not None:
            currencies.add(self.total_discount.currency)
        if len(currencies) > 1:
            raise ValueError(f"line item mixes currencies {sorted(currencies)}")
        return self


class RefundLine(_Frozen):
    line_item_id: Id
    quantity: Quantity
    subtotal: Amount | None = None


class Refund(_Frozen):
    id: Id
    created_at: UTCDateTime
    amount: Amount
    """Money returned to the customer (sum of the refund's transactions)."""
    note: Text | None = None
    lines: tuple[RefundLine, ...] = ()


class FulfillmentLine(_Frozen):
    line_item_id: Id
    quantity: Quantity


class Fulfillment(_Frozen):
    id: Id
    created_at: UTCDateTime
    status: Text = "success"
    """Platform status, lower case (``success``, ``cancelled``, ``pending``...)."""
    tracking_company: Text | None = None
    tracking_numbers: tuple[Text, ...] = ()
    tracking_urls: tuple[Text, ...] = ()
    delivered_at: UTCDateTime | None = None
    """When the carrier reported delivery, if the platform knows."""
    lines: tuple[FulfillmentLine, ...] = ()


class TaxLine(_Frozen):
    """One tax the platform charged on the order (summed over its lines and shipping)."""

    title: Text
    """The tax's name as the shop calls it (``"VAT"``, ``"CA State Tax"``)."""
    rate: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None = None
    """The rate as a fraction (0.2 for 20 %), when the platform says; WooCommerce gives a
    percentage, which the adapter divides by 100."""
    amount: Amount


class DiscountValueType(str, Enum):
    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"


class DiscountApplication(_Frozen):
    """A discount applied to the order: what it was, not how it was spread over the lines."""

    type: Text
    """The platform's kind, lower case: ``discount_code``, ``automatic``, ``manual``, ``script``
    (Shopify) or ``coupon`` (WooCommerce)."""
    code: Text | None = None
    """The code the customer entered, for a code discount."""
    title: Text | None = None
    value: Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
    """The discount's value: a percentage (``10`` for 10 %) or an amount in the order's currency,
    per :attr:`value_type`."""
    value_type: DiscountValueType
    allocation: Text | None = None
    """Shopify's ``allocationMethod`` / ``target_selection`` (``across``, ``each``, ``all``...)."""


class FeeLine(_Frozen):
    """A WooCommerce fee line (a surcharge or a negative-fee discount the shop added)."""

    id: Id
    name: Text
    total: Money
    """The fee excluding tax; negative for a negative fee (WooCommerce allows them as discounts)."""
    total_tax: Money | None = None


class Order(_Record):
    """An order, its lines, refunds and fulfilments, in the shop's currency."""

    name: Text | None = None
    """What the shop calls it, e.g. ``"#1001"``."""
    customer_id: Id | None = None
    """None for a guest checkout."""
    email: Email = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    processed_at: UTCDateTime | None = None
    paid_at: UTCDateTime | None = None
    cancelled_at: UTCDateTime | None = None
    closed_at: UTCDateTime | None = None
    financial_status: FinancialStatus
    fulfillment_status: FulfillmentStatus = FulfillmentStatus.UNFULFILLED
    currency: str
    subtotal: Amount
    """Line totals after line discounts, before shipping and tax."""
    total_discounts: Amount
    total_shipping: Amount
    total_tax: Amount
    total: Amount
    total_refunded: Amount
    line_items: tuple[LineItem, ...] = ()
    refunds: tuple[Refund, ...] = ()
    fulfillments: tuple[Fulfillment, ...] = ()
    discount_codes: tuple[Text, ...] = ()
    source: Text | None = None
    """Sales channel (``web``, ``pos``, ``checkout``...)."""
    tags: Tags = ()
    billing_address: Address | None = None
    shipping_address: Address | None = None
    test: bool = False
    """A test order (Shopify ``test``: placed through a test gateway). Stored and shown, never
    counted as revenue, loyalty or a purchase (the one rule: docs/models.md, "Purchases")."""
    taxes_included: bool | None = None
    """Whether the platform's prices included tax (Shopify ``taxesIncluded``, WooCommerce
    ``prices_include_tax``); None when the payload did not say. The amounts here are already
    normalised to exclude tax (docs/models.md); this records what the platform showed."""
    cancel_reason: Text | None = None
    """Shopify's ``cancelReason`` lower case (``customer``, ``fraud``, ``inventory``, ``declined``,
    ``staff``, ``other``); None when not cancelled or not said."""
    total_tip: Amount | None = None
    """Tips the customer added, when the platform says (Shopify ``totalTipReceivedSet``)."""
    total_duties: Amount | None = None
    """Import duties charged, when the platform says (Shopify ``currentTotalDutiesSet``)."""
    tax_lines: tuple[TaxLine, ...] = ()
    discount_applications: tuple[DiscountApplication, ...] = ()
    fee_lines: tuple[FeeLine, ...] = ()
    refunds_complete: bool = True
    """False when the payload carried only a refund summary (a WooCommerce webhook order lists
    refund ids and totals, not their lines): the next sync reads the refunds whole."""

    _currency = field_validator("currency", mode="before")(_currency_code)

    @model_validator(mode="after")
    def _one_currency(self) -> Order:
        amounts: list[Money] = [
            self.subtotal,
            self.total_discounts,
            self.total_shipping,
            self.total_tax,
            self.total,
            self.total_refunded,
        ]
        for line in self.line_items:
            amounts += [line.unit_price, line.total]
            if line.total_discount is not None:
                amounts.append(line.total_discount)
        amounts += [refund.amount for refund in self.refunds]
        amounts += [tax.amount for tax in self.tax_lines]
        for fee in self.fee_lines:
            amounts += [fee.total] if fee.total_tax is None else [fee.total, fee.total_tax]
        amounts += [m for m in (self.total_tip, self.total_duties) if m is not None]
        others = sorted({m.currency for m in amounts} - {self.currency})
        if others:
            raise ValueError(f"order in {self.currency} carries amounts in {others}")
        if self.total_refunded > self.total:
            raise ValueError("total_refunded exceeds the order total")
        for name in ("line_items", "refunds", "fulfillments"):  # the store's keys
            twice = _repeated(child.id for child in getattr(self, name))
            if twice is not None:
                raise ValueError(f"{name.replace('_', ' ')} id {twice!r} appears twice")
        return self

    @property
    def is_guest(self) -> bool:
        return self.customer_id is None


def _repeated(ids: Iterable[str]) -> str | None:
    """The first id that comes again, or None."""
    seen: set[str] = set()
    for one in ids:
        if one in seen:
            return one
        seen.add(one)
    return None


class Variant(_Frozen):
    id: Id
    sku: Text | None = None
    title: Text | None = None
    price: Amount | None = None


class Product(_Record):
    title: Text
    product_type: Text | None = None
    vendor: Text | None = None
    tags: Tags = ()
    categories: tuple[Text, ...] = ()
    status: Text | None = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    variants: tuple[Variant, ...] = ()


MODELS: Sequence[type[BaseModel]] = (
    Money,
    MarketingConsent,
    Consent,
    Address,
    Customer,
    LineItem,
    RefundLine,
    Refund,
    FulfillmentLine,
    Fulfillment,
    TaxLine,
    DiscountApplication,
    FeeLine,
    Order,
    Variant,
    Product,
)


def json_schema() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of every shared model, keyed by model name."""
    return {model.__name__: model.model_json_schema() for model in MODELS}
