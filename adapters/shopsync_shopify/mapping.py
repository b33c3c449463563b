"""Shopify wire JSON -> shared models, for both shapes Shopify sends.

The adapter reads GraphQL nodes (camelCase, ``gid://`` ids, ``MoneyBag`` amounts); webhooks
arrive REST-shaped (snake_case, integer ids, decimal strings). Both map to the same models, and
for an order known to both shapes the results are equal: that is what lets a webhook update a
record that a sync wrote.

Rules (the same in both shapes):

- **No email**: kept as ``None``. Shopify customers may have only a phone; an order may have
  neither. Neither is a reason to reject.
- **Guest order**: ``customer`` null or absent -> ``customer_id=None``; the order email stays.
- **Unknown enum values**: a financial status we do not know rejects the order (revenue
  figures depend on it); ``null`` means pending and ``EXPIRED`` means voided (Shopify has no
  "cancelled" payment state: a cancelled order is voided or refunded and carries
  ``cancelled_at``). Unknown fulfilment statuses read as
  ``unfulfilled`` (the fulfilments themselves stay the truth); unknown consent states and
  opt-in levels read as ``unknown``, which never allows marketing.
- **Malformed amount or date**: the record is rejected with :class:`InvalidRecordError`
  naming the field path (``lineItems[2].originalUnitPriceSet``); a record is never half-mapped.
  Any other wrong shape (a list where an object belongs, a number for a tag list) is rejected
  the same way, with the Python error as its reason: no payload escapes as another exception.
- **Derived values**: ``paid_at`` is ``processed_at`` once the financial status says money was
  captured (neither shape carries a payment time on the order itself); ``total_refunded`` and
  each refund's amount come from the refund transactions (REST) or ``totalRefundedSet``
  (GraphQL); a line's ``refunded_quantity`` is the sum of its refund lines; a line's
  ``total`` is ``price * quantity - discount``, its discount the sum of its discount
  allocations. A fulfilment's ``delivered_at`` is ``deliveredAt`` (GraphQL) or, in REST, the
  fulfilment's ``updated_at`` once ``shipment_status`` is ``delivered`` (the delivery event is
  its last change). Empty address strings read as ``None``. The birthday is the standard
  ``facts.birth_date`` metafield (GraphQL ``metafield``; REST ``metafields`` when the webhook
  subscription asks for the ``facts`` namespace).
- **Consent**: ``emailMarketingConsent`` / ``smsMarketingConsent`` (REST
  ``email_marketing_consent`` / ``sms_marketing_consent``); the removed ``accepts_marketing``
  is read only when the new field is absent (old payloads): true -> subscribed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError

from shopsync._money import excluding_tax, share
from shopsync.errors import SHAPE_ERRORS, InvalidRecordError
from shopsync.models import (
    Address,
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
    Product,
    Refund,
    RefundLine,
    Variant,
)
from shopsync_shopify import _order_facts as facts

__all__ = [
    "PLATFORM",
    "consent_from_webhook",
    "customer_from_graphql",
    "customer_from_webhook",
    "gid",
    "order_from_graphql",
    "order_from_webhook",
    "parse_gid",
    "product_from_graphql",
    "product_from_webhook",
]

PLATFORM = "shopify"
T = TypeVar("T")

_FINANCIAL = {
    "pending": FinancialStatus.PENDING,
    "authorized": FinancialStatus.AUTHORIZED,
    "partially_paid": FinancialStatus.PARTIALLY_PAID,
    "paid": FinancialStatus.PAID,
    "partially_refunded": FinancialStatus.PARTIALLY_REFUNDED,
    "refunded": FinancialStatus.REFUNDED,
    "voided": FinancialStatus.VOIDED,
    "expired": FinancialStatus.VOIDED,
}
_CAPTURED = {
    FinancialStatus.PAID,
    FinancialStatus.PARTIALLY_PAID,
    FinancialStatus.PARTIALLY_REFUNDED,
    FinancialStatus.REFUNDED,
}
_FULFILLMENT = {
    "fulfilled": FulfillmentStatus.FULFILLED,
    "partially_fulfilled": FulfillmentStatus.PARTIALLY_FULFILLED,
    "partial": FulfillmentStatus.PARTIALLY_FULFILLED,
    "restocked": FulfillmentStatus.RESTOCKED,
    "on_hold": FulfillmentStatus.ON_HOLD,
}
_CONSENT = {s.value: s for s in ConsentState}
_OPT_IN = {s.value: s for s in OptInLevel}


def gid(kind: str, record_id: str) -> str:
    """The GraphQL global id of a numeric id: ``gid://shopify/Order/1``."""
    return f"gid://shopify/{kind}/{record_id}"


def parse_gid(value: Any) -> str:
    """The numeric part of a GraphQL global id (plain ids pass through as strings)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an id")
    text = str(value)
    if text.startswith("gid://"):
        text = text.rsplit("/", 1)[-1].split("?", 1)[0]
    if not text.strip():
        raise ValueError(f"{value!r} is not an id")
    return text


def _short(reason: str, limit: int = 300) -> str:
    """A reason fit for the quarantine: a 1 MB value is not repeated in full."""
    return reason if len(reason) <= limit else reason[:limit] + "..."


class _Ctx:
    """Carries the raw record so every failure names it and the field path."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def fail(self, path: str, reason: str) -> NoReturn:
        raise InvalidRecordError(_short(reason), raw=self.raw, path=path)

    def get(self, obj: Any, key: str, path: str) -> Any:
        if not isinstance(obj, Mapping):
            self.fail(path, f"expected an object, got {type(obj).__name__}")
        return obj.get(key)

    def required(self, obj: Any, key: str, path: str) -> Any:
        value = self.get(obj, key, path)
        if value is None:
            self.fail(f"{path}.{key}".lstrip("."), "required field is missing")
        return value

    def id(self, value: Any, path: str) -> str:
        try:
            return parse_gid(value)
        except ValueError as exc:
            self.fail(path, str(exc))

    def opt_id(self, value: Any, path: str) -> str | None:
        return None if value is None else self.id(value, path)

    def when(self, value: Any, path: str) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(path, f"{value!r} is not an ISO 8601 date-time")
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            self.fail(path, f"{value!r} is not an ISO 8601 date-time")
        if parsed.tzinfo is None:
            self.fail(path, f"{value!r} has no UTC offset")
        return parsed.astimezone(dt.timezone.utc)

    def when_req(self, value: Any, path: str) -> dt.datetime:
        parsed = self.when(value, path)
        if parsed is None:
            self.fail(path, "required date-time is missing")
        return parsed

    def amount(self, value: Any, path: str) -> Decimal:
        if isinstance(value, bool) or value is None:
            self.fail(path, f"{value!r} is not an amount")
        if isinstance(value, float):
            # REST sends a few amounts as JSON numbers (refund line subtotal); their
            # shortest repr is the decimal Shopify meant.
            value = repr(value)
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.fail(path, f"{value!r} is not a decimal amount")
        if not number.is_finite():
            self.fail(path, f"{value!r} is not a finite amount")
        return number

    def money(self, value: Any, currency: str, path: str) -> Money:
        try:
            return Money(amount=self.amount(value, path), currency=currency)
        except ValidationError as exc:
            self.fail(path, _first_error(exc))

    def bag(self, value: Any, currency: str, path: str) -> Money:
        """A GraphQL ``MoneyBag``: the shop-currency amount."""
        shop_money = self.get(value, "shopMoney", path) if value is not None else None
        if shop_money is None:
            self.fail(path, "required amount is missing")
        code = self.get(shop_money, "currencyCode", f"{path}.shopMoney") or currency
        return self.money(
            self.get(shop_money, "amount", f"{path}.shopMoney"), code, f"{path}.shopMoney.amount"
        )

    def int(self, value: Any, path: str) -> int:
        if isinstance(value, bool):
            self.fail(path, f"{value!r} is not an integer")
        try:
            number = int(str(value)) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            self.fail(path, f"{value!r} is not an integer")
        return number

    def build(self, factory: Callable[..., T], path: str, **fields: Any) -> T:
        try:
            return factory(**fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error.get("loc", ()))
            self.fail(".".join(p for p in (path, where) if p) or path, error.get("msg", str(exc)))


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(mapper: F) -> F:
    """Turn any failure of ``mapper`` on a malformed payload into :class:`InvalidRecordError`."""

    @functools.wraps(mapper)
    def guarded(payload: Any, **kwargs: Any) -> Any:
        try:
            return mapper(payload, **kwargs)
        except InvalidRecordError:
            raise
        except ValidationError as exc:
            raise InvalidRecordError(_first_error(exc), raw=payload) from None
        except SHAPE_ERRORS as exc:
            reason = _short(f"malformed record ({type(exc).__name__}: {exc})")
            raise InvalidRecordError(reason, raw=payload) from None

    return guarded  # type: ignore[return-value]


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    return str(errors[0].get("msg")) if errors else str(exc)


def _nodes(value: Any) -> list[Any]:
    """Children of a connection (``edges``/``nodes``), of a plain list, or of a bulk regroup."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        if "nodes" in value and value["nodes"] is not None:
            return list(value["nodes"])
        if "edges" in value and value["edges"] is not None:
            return [edge.get("node") for edge in value["edges"]]
    return []


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(tag.strip() for tag in value.split(",") if tag.strip())
    return tuple(str(tag) for tag in value)


def _blank(value: Any) -> Any:
    return None if value == "" else value


def _enum(table: Mapping[str, T], value: Any, default: T) -> T:
    if not isinstance(value, str):
        return default
    return table.get(value.lower(), default)


def _financial(ctx: _Ctx, value: Any, path: str) -> FinancialStatus:
    if value is None:
        return FinancialStatus.PENDING
    status = _FINANCIAL.get(str(value).lower())
    if status is None:
        ctx.fail(path, f"unknown financial status {value!r}")
    return status


# --------------------------------------------------------------------------- GraphQL


def _address_gql(ctx: _Ctx, value: Any, path: str) -> Address | None:
    if value is None:
        return None
    get: Callable[[str], Any] = lambda key: _blank(ctx.get(value, key, path))  # noqa: E731
    return ctx.build(
        Address,
        path,
        first_name=get("firstName"),
        last_name=get("lastName"),
        company=get("company"),
        address1=get("address1"),
        address2=get("address2"),
        city=get("city"),
        province=get("province"),
        zip=get("zip"),
        country_code=get("countryCodeV2") or get("countryCode"),
        phone=get("phone"),
    )


def _consent_gql(ctx: _Ctx, value: Any, path: str) -> MarketingConsent:
    if value is None:
        return MarketingConsent()
    return MarketingConsent(
        state=_enum(_CONSENT, ctx.get(value, "marketingState", path), ConsentState.UNKNOWN),
        opt_in_level=_enum(_OPT_IN, value.get("marketingOptInLevel"), OptInLevel.UNKNOWN),
        updated_at=ctx.when(value.get("consentUpdatedAt"), f"{path}.consentUpdatedAt"),
    )


def _birthday(ctx: _Ctx, value: Any, path: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        ctx.fail(path, f"{value!r} is not a date")


@_guarded
def customer_from_graphql(node: Mapping[str, Any], *, shop: str) -> Customer:
    """A ``Customer`` node (as :data:`shopsync_shopify.queries.CUSTOMER_FIELDS` selects it)."""
    ctx = _Ctx(node)
    spent = node.get("amountSpent")
    total_spent = None
    if spent is not None:
        total_spent = ctx.money(
            ctx.get(spent, "amount", "amountSpent"),
            ctx.required(spent, "currencyCode", "amountSpent"),
            "amountSpent.amount",
        )
    count = node.get("numberOfOrders")
    birth = node.get("metafield")
    return ctx.build(
        Customer,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        email=node.get("email"),
        phone=node.get("phone"),
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
        created_at=ctx.when_req(node.get("createdAt"), "createdAt"),
        updated_at=ctx.when_req(node.get("updatedAt"), "updatedAt"),
        tags=_tags(node.get("tags")),
        consent=Consent(
            email=_consent_gql(ctx, node.get("emailMarketingConsent"), "emailMarketingConsent"),
            sms=_consent_gql(ctx, node.get("smsMarketingConsent"), "smsMarketingConsent"),
        ),
        birthday=_birthday(ctx, birth.get("value") if birth else None, "metafield.value"),
        default_address=_address_gql(ctx, node.get("defaultAddress"), "defaultAddress"),
        orders_count=None if count is None else ctx.int(count, "numberOfOrders"),
        total_spent=total_spent,
    )


def _line_gql(
    ctx: _Ctx,
    node: Any,
    currency: str,
    refunded: Mapping[str, Decimal],
    path: str,
    taxes_included: bool | None = None,
    rates: tuple[Decimal, ...] = (),
    ordered: dict[str, tuple[int, Money]] | None = None,
) -> LineItem:
    line_id = ctx.id(ctx.required(node, "id", path), f"{path}.id")
    count = ctx.int(ctx.required(node, "quantity", path), f"{path}.quantity")
    quantity = facts.current_quantity(
        ctx,
        count,
        node.get("currentQuantity"),
        int(refunded.get(line_id, 0)),
        f"{path}.currentQuantity",
    )
    unit = ctx.bag(node.get("originalUnitPriceSet"), currency, f"{path}.originalUnitPriceSet")
    discount = ctx.bag(node.get("totalDiscountSet"), currency, f"{path}.totalDiscountSet")
    if ordered is not None:
        ordered[line_id] = (count, discount)
    discount = share(discount, quantity, count)  # an edit's kept units (the module doc)
    product = node.get("product") or {}
    variant = node.get("variant") or {}
    tax, line_rates = facts.line_tax(
        ctx, node.get("taxLines"), currency, f"{path}.taxLines", graphql=True
    )
    unit, discount, total = facts.net_line(
        unit, quantity, discount, taxes_included, tax, line_rates or rates
    )
    return ctx.build(
        LineItem,
        path,
        id=line_id,
        product_id=ctx.opt_id(product.get("id"), f"{path}.product.id"),
        variant_id=ctx.opt_id(variant.get("id"), f"{path}.variant.id"),
        sku=_blank(node.get("sku")),
        title=node.get("title") or node.get("name") or "",
        product_type=None,
        quantity=quantity,
        unit_price=unit,
        total_discount=discount,
        total=total,
        refunded_quantity=refunded.get(line_id, 0),
    )


def _refund_gql(ctx: _Ctx, node: Any, currency: str, path: str) -> Refund:
    lines = []
    for j, item in enumerate(_nodes(node.get("refundLineItems"))):
        where = f"{path}.refundLineItems[{j}]"
        subtotal = item.get("subtotalSet")
        lines.append(
            RefundLine(
                line_item_id=ctx.id(
                    ctx.required(item.get("lineItem") or {}, "id", f"{where}.lineItem"),
                    f"{where}.lineItem.id",
                ),
                quantity=ctx.int(item.get("quantity"), f"{where}.quantity"),
                subtotal=None
                if subtotal is None
                else ctx.bag(subtotal, currency, f"{where}.subtotalSet"),
            )
        )
    return ctx.build(
        Refund,
        path,
        id=ctx.id(ctx.required(node, "id", path), f"{path}.id"),
        created_at=ctx.when_req(node.get("createdAt"), f"{path}.createdAt"),
        amount=ctx.bag(node.get("totalRefundedSet"), currency, f"{path}.totalRefundedSet"),
        note=_blank(node.get("note")),
        lines=tuple(lines),
    )


def _fulfillment_gql(ctx: _Ctx, node: Any, path: str) -> Fulfillment:
    tracking = node.get("trackingInfo") or []
    company = next((t.get("company") for t in tracking if t.get("company")), None)
    lines = tuple(
        FulfillmentLine(
            line_item_id=ctx.id(
                ctx.required(item.get("lineItem") or {}, "id", f"{path}.fulfillmentLineItems[{j}]"),
                f"{path}.fulfillmentLineItems[{j}].lineItem.id",
            ),
            quantity=ctx.int(item.get("quantity"), f"{path}.fulfillmentLineItems[{j}].quantity"),
        )
        for j, item in enumerate(_nodes(node.get("fulfillmentLineItems")))
    )
    return ctx.build(
        Fulfillment,
        path,
        id=ctx.id(ctx.required(node, "id", path), f"{path}.id"),
        created_at=ctx.when_req(node.get("createdAt"), f"{path}.createdAt"),
        status=str(node.get("status") or "success").lower(),
        tracking_company=company,
        tracking_numbers=tuple(t["number"] for t in tracking if t.get("number")),
        tracking_urls=tuple(t["url"] for t in tracking if t.get("url")),
        delivered_at=ctx.when(node.get("deliveredAt"), f"{path}.deliveredAt"),
        lines=lines,
    )


_CURRENT_GQL = {
    "total": "currentTotalPriceSet",
    "subtotal": "currentSubtotalPriceSet",
    "tax": "currentTotalTaxSet",
    "discounts": "currentTotalDiscountsSet",
}
"""Shopify's figures after edits, returns and refunds (see :mod:`._order_facts`)."""
_CURRENT_REST = {
    "total": "current_total_price",
    "subtotal": "current_subtotal_price",
    "tax": "current_total_tax",
    "discounts": "current_total_discounts",
}


def _shortened(lines: Iterable[LineItem], ordered: Mapping[str, tuple[int, Money]]) -> bool:
    """Whether an edit took units off a line: it holds fewer than ordered, refunds counted."""
    return any(line.quantity < ordered[line.id][0] for line in lines if line.id in ordered)


def _after_edits_gql(
    ctx: _Ctx,
    node: Mapping[str, Any],
    currency: str,
    lines: tuple[LineItem, ...],
    ordered: Mapping[str, tuple[int, Money]],
    refunds: tuple[Refund, ...],
    included: bool | None,
) -> dict[str, Money]:
    """The totals an edited order is stored with (``{}`` when not edited: nothing read)."""
    if node.get("edited") is not True and not _shortened(lines, ordered):
        return {}
    refund_tax = Money.zero(currency)
    for i, item in enumerate(_nodes(node.get("refunds"))):
        for j, rl in enumerate(_nodes(item.get("refundLineItems"))):
            if rl.get("totalTaxSet") is not None:
                where = f"refunds[{i}].refundLineItems[{j}].totalTaxSet"
                refund_tax += ctx.bag(rl["totalTaxSet"], currency, where)
    current = {
        name: None if node.get(key) is None else ctx.bag(node.get(key), currency, key)
        for name, key in _CURRENT_GQL.items()
    }
    return facts.after_edits(
        current,
        edited=True,
        lines=lines,
        ordered=ordered,
        refunds=refunds,
        refund_tax=refund_tax,
        taxes_included=included,
    )


def _after_edits_rest(
    ctx: _Ctx,
    data: Mapping[str, Any],
    currency: str,
    lines: tuple[LineItem, ...],
    ordered: Mapping[str, tuple[int, Money]],
    refunds: tuple[Refund, ...],
    included: bool | None,
) -> dict[str, Money]:
    """:func:`_after_edits_gql` for a REST/webhook order (REST says no ``edited``)."""
    if not _shortened(lines, ordered):
        return {}
    refund_tax = Money.zero(currency)
    for i, item in enumerate(data.get("refunds") or ()):
        for j, rl in enumerate(item.get("refund_line_items") or ()):
            where = f"refunds[{i}].refund_line_items[{j}]"
            tax = _set_or_amount(ctx, rl, "total_tax_set", "total_tax", currency, where)
            refund_tax += tax if tax is not None else Money.zero(currency)
    return facts.after_edits(
        {name: facts.rest_amount(ctx, data, key, currency) for name, key in _CURRENT_REST.items()},
        edited=True,
        lines=lines,
        ordered=ordered,
        refunds=refunds,
        refund_tax=refund_tax,
        taxes_included=included,
    )


def _refunded_quantities(refunds: Iterable[Refund]) -> dict[str, Decimal]:
    counts: dict[str, Decimal] = {}
    for refund in refunds:
        for line in refund.lines:
            counts[line.line_item_id] = counts.get(line.line_item_id, 0) + line.quantity
    return counts


@_guarded
def order_from_graphql(node: Mapping[str, Any], *, shop: str) -> Order:
    """An ``Order`` node (as :data:`shopsync_shopify.queries.ORDER_FIELDS` selects it).

    Connections may come as ``edges``, ``nodes`` or plain lists (a regrouped bulk result).
    """
    ctx = _Ctx(node)
    currency = ctx.required(node, "currencyCode", "")
    if not isinstance(currency, str):
        ctx.fail("currencyCode", f"{currency!r} is not a currency code")
    refunds = tuple(
        _refund_gql(ctx, item, currency, f"refunds[{i}]")
        for i, item in enumerate(_nodes(node.get("refunds")))
    )
    refunded = _refunded_quantities(refunds)
    extra = facts.facts_gql(ctx, node, currency)
    included = extra["taxes_included"]
    rates = tuple(t.rate for t in extra["tax_lines"] if t.rate is not None)
    ordered: dict[str, tuple[int, Money]] = {}
    lines = tuple(
        _line_gql(ctx, item, currency, refunded, f"lineItems[{i}]", included, rates, ordered)
        for i, item in enumerate(_nodes(node.get("lineItems")))
    )
    now = _after_edits_gql(ctx, node, currency, lines, ordered, refunds, included)
    fulfillments = tuple(
        _fulfillment_gql(ctx, item, f"fulfillments[{i}]")
        for i, item in enumerate(_nodes(node.get("fulfillments")))
    )
    cancelled_at = ctx.when(node.get("cancelledAt"), "cancelledAt")
    processed_at = ctx.when(node.get("processedAt"), "processedAt")
    financial = _financial(ctx, node.get("displayFinancialStatus"), "displayFinancialStatus")
    customer = node.get("customer")
    total_refunded = node.get("totalRefundedSet")
    return ctx.build(
        Order,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        name=node.get("name"),
        customer_id=ctx.opt_id(customer.get("id"), "customer.id") if customer else None,
        email=node.get("email"),
        created_at=ctx.when_req(node.get("createdAt"), "createdAt"),
        updated_at=ctx.when_req(node.get("updatedAt"), "updatedAt"),
        processed_at=processed_at,
        paid_at=processed_at if financial in _CAPTURED else None,
        cancelled_at=cancelled_at,
        closed_at=ctx.when(node.get("closedAt"), "closedAt"),
        financial_status=financial,
        fulfillment_status=_enum(
            _FULFILLMENT, node.get("displayFulfillmentStatus"), FulfillmentStatus.UNFULFILLED
        ),
        currency=currency,
        subtotal=now.get("subtotal")
        or (
            sum((line.total for line in lines), Money.zero(currency))
            if included
            else ctx.bag(node.get("subtotalPriceSet"), currency, "subtotalPriceSet")
        ),
        total_discounts=now.get("total_discounts")
        or ctx.bag(node.get("totalDiscountsSet"), currency, "totalDiscountsSet"),
        total_shipping=ctx.bag(
            node.get("totalShippingPriceSet"), currency, "totalShippingPriceSet"
        ),
        total_tax=now.get("total_tax") or ctx.bag(node.get("totalTaxSet"), currency, "totalTaxSet"),
        total=now.get("total") or ctx.bag(node.get("totalPriceSet"), currency, "totalPriceSet"),
        total_refunded=(
            ctx.bag(total_refunded, currency, "totalRefundedSet")
            if total_refunded is not None
            else sum((r.amount for r in refunds), Money.zero(currency))
        ),
        line_items=lines,
        refunds=refunds,
        fulfillments=fulfillments,
        discount_codes=tuple(node.get("discountCodes") or ()),
        source=node.get("sourceName"),
        tags=_tags(node.get("tags")),
        billing_address=_address_gql(ctx, node.get("billingAddress"), "billingAddress"),
        shipping_address=_address_gql(ctx, node.get("shippingAddress"), "shippingAddress"),
        **extra,
    )


def _categories_gql(node: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(c["title"] for c in _nodes(node.get("collections")) if c and c.get("title"))


@_guarded
def product_from_graphql(node: Mapping[str, Any], *, shop: str, currency: str) -> Product:
    """A ``Product`` node; variant prices are in the shop's ``currency``."""
    ctx = _Ctx(node)
    variants = []
    for i, item in enumerate(_nodes(node.get("variants"))):
        path = f"variants[{i}]"
        price = item.get("price")
        variants.append(
            ctx.build(
                Variant,
                path,
                id=ctx.id(ctx.required(item, "id", path), f"{path}.id"),
                sku=_blank(item.get("sku")),
                title=item.get("title"),
                price=None if price is None else ctx.money(price, currency, f"{path}.price"),
            )
        )
    status = node.get("status")
    return ctx.build(
        Product,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        title=node.get("title") or "",
        product_type=_blank(node.get("productType")),
        vendor=_blank(node.get("vendor")),
        tags=_tags(node.get("tags")),
        categories=_categories_gql(node),
        status=status.lower() if isinstance(status, str) else None,
        created_at=ctx.when_req(node.get("createdAt"), "createdAt"),
        updated_at=ctx.when_req(node.get("updatedAt"), "updatedAt"),
        variants=tuple(variants),
    )


# --------------------------------------------------------------------------- REST / webhooks


def _unwrap(payload: Any, key: str) -> Any:
    if isinstance(payload, (bytes, str)):
        payload = json.loads(payload)
    if isinstance(payload, Mapping) and key in payload and isinstance(payload[key], Mapping):
        return payload[key]
    return payload


def _address_rest(ctx: _Ctx, value: Any, path: str) -> Address | None:
    if not value:
        return None
    get: Callable[[str], Any] = lambda key: _blank(ctx.get(value, key, path))  # noqa: E731
    return ctx.build(
        Address,
        path,
        first_name=get("first_name"),
        last_name=get("last_name"),
        company=get("company"),
        address1=get("address1"),
        address2=get("address2"),
        city=get("city"),
        province=get("province"),
        zip=get("zip"),
        country_code=get("country_code"),
        phone=get("phone"),
    )


def _consent_rest(ctx: _Ctx, value: Any, path: str) -> MarketingConsent:
    if value is None:
        return MarketingConsent()
    return MarketingConsent(
        state=_enum(_CONSENT, ctx.get(value, "state", path), ConsentState.UNKNOWN),
        opt_in_level=_enum(_OPT_IN, value.get("opt_in_level"), OptInLevel.UNKNOWN),
        updated_at=ctx.when(value.get("consent_updated_at"), f"{path}.consent_updated_at"),
    )


def _metafield(payload: Mapping[str, Any], namespace: str, key: str) -> Any:
    for field in payload.get("metafields") or ():
        if (
            isinstance(field, Mapping)
            and field.get("namespace") == namespace
            and field.get("key") == key
        ):
            return field.get("value")
    return None


def _set_or_amount(
    ctx: _Ctx,
    payload: Mapping[str, Any],
    set_key: str,
    plain_key: str | None,
    currency: str,
    path: str,
) -> Money | None:
    """A REST amount: the ``*_set.shop_money`` twin when present, else the plain field."""

    def where(key: str) -> str:
        return f"{path}.{key}" if path else key

    money_set = payload.get(set_key)
    if isinstance(money_set, Mapping) and isinstance(money_set.get("shop_money"), Mapping):
        shop_money = money_set["shop_money"]
        return ctx.money(
            shop_money.get("amount"), shop_money.get("currency_code") or currency, where(set_key)
        )
    if plain_key is not None and payload.get(plain_key) is not None:
        return ctx.money(payload[plain_key], currency, where(plain_key))
    return None


@_guarded
def customer_from_webhook(
    payload: Mapping[str, Any] | bytes | str, *, shop: str, currency: str | None = None
) -> Customer:
    """A REST/webhook customer (``{"customer": {...}}`` or the bare object).

    ``currency`` is used for ``total_spent`` when the payload does not name one; without
    either, ``total_spent`` is left unknown rather than guessed.

    Only the fields the payload carries are given to the model (``model_fields_set``), so
    the store keeps what it holds for the rest: since 2025-01 Shopify's customer webhooks
    carry no ``tags``, marketing consents, ``orders_count`` or ``total_spent`` (changelog
    https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload),
    and the birthday metafield only when the subscription names its namespace.
    """
    data = _unwrap(payload, "customer")
    ctx = _Ctx(data)
    if not isinstance(data, Mapping):
        ctx.fail("", "a customer must be a JSON object")
    carried: dict[str, Any] = {
        key: data.get(key) for key in ("email", "phone", "first_name", "last_name") if key in data
    }
    if "tags" in data:
        carried["tags"] = _tags(data.get("tags"))
    email_consent = data.get("email_marketing_consent")
    if email_consent is None and data.get("accepts_marketing") is not None:
        email_consent = {"state": "subscribed" if data["accepts_marketing"] else "not_subscribed"}
    if email_consent is not None or data.get("sms_marketing_consent") is not None:
        carried["consent"] = Consent(
            email=_consent_rest(ctx, email_consent, "email_marketing_consent"),
            sms=_consent_rest(ctx, data.get("sms_marketing_consent"), "sms_marketing_consent"),
        )
    if "metafields" in data:
        carried["birthday"] = _birthday(
            ctx, _metafield(data, "facts", "birth_date"), "metafields.facts.birth_date"
        )
    if "default_address" in data:
        carried["default_address"] = _address_rest(
            ctx, data.get("default_address"), "default_address"
        )
    if "orders_count" in data:
        count = data.get("orders_count")
        carried["orders_count"] = None if count is None else ctx.int(count, "orders_count")
    code = data.get("currency") or currency
    if "total_spent" in data:
        spent = data.get("total_spent")
        carried["total_spent"] = (
            ctx.money(spent, code, "total_spent") if spent is not None and code else None
        )
    return ctx.build(
        Customer,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        created_at=ctx.when_req(data.get("created_at"), "created_at"),
        updated_at=ctx.when_req(data.get("updated_at"), "updated_at"),
        **carried,
    )


@_guarded
def consent_from_webhook(value: Any, *, path: str) -> MarketingConsent:
    """One channel's consent as the consent topics send it (``state``, ``opt_in_level``,
    ``consent_updated_at``); an unknown state reads as ``unknown``."""
    ctx = _Ctx(value)
    if not isinstance(value, Mapping):
        ctx.fail(path, "a consent must be a JSON object")
    return _consent_rest(ctx, value, path)


def _refund_rest(ctx: _Ctx, data: Any, currency: str, path: str) -> Refund:
    lines = []
    for j, item in enumerate(data.get("refund_line_items") or ()):
        where = f"{path}.refund_line_items[{j}]"
        line_id = item.get("line_item_id")
        if line_id is None:
            line_id = (item.get("line_item") or {}).get("id")
        lines.append(
            RefundLine(
                line_item_id=ctx.id(line_id, f"{where}.line_item_id"),
                quantity=ctx.int(item.get("quantity"), f"{where}.quantity"),
                subtotal=_set_or_amount(ctx, item, "subtotal_set", "subtotal", currency, where),
            )
        )
    amount = Money.zero(currency)
    for j, txn in enumerate(data.get("transactions") or ()):
        if txn.get("kind") == "refund" and txn.get("status") == "success":
            amount += ctx.money(txn.get("amount"), currency, f"{path}.transactions[{j}].amount")
    return ctx.build(
        Refund,
        path,
        id=ctx.id(ctx.required(data, "id", path), f"{path}.id"),
        created_at=ctx.when_req(data.get("created_at"), f"{path}.created_at"),
        amount=amount,
        note=_blank(data.get("note")),
        lines=tuple(lines),
    )


def _fulfillment_rest(ctx: _Ctx, data: Any, path: str) -> Fulfillment:
    delivered = None
    if data.get("shipment_status") == "delivered":
        delivered = ctx.when(data.get("updated_at"), f"{path}.updated_at")
    numbers = data.get("tracking_numbers")
    if numbers is None:
        numbers = [data["tracking_number"]] if data.get("tracking_number") else []
    urls = data.get("tracking_urls")
    if urls is None:
        urls = [data["tracking_url"]] if data.get("tracking_url") else []
    return ctx.build(
        Fulfillment,
        path,
        id=ctx.id(ctx.required(data, "id", path), f"{path}.id"),
        created_at=ctx.when_req(data.get("created_at"), f"{path}.created_at"),
        status=str(data.get("status") or "success").lower(),
        tracking_company=_blank(data.get("tracking_company")),
        tracking_numbers=tuple(n for n in numbers if n),
        tracking_urls=tuple(u for u in urls if u),
        delivered_at=delivered,
        lines=tuple(
            FulfillmentLine(
                line_item_id=ctx.id(item.get("id"), f"{path}.line_items[{j}].id"),
                quantity=ctx.int(item.get("quantity"), f"{path}.line_items[{j}].quantity"),
            )
            for j, item in enumerate(data.get("line_items") or ())
        ),
    )


def _line_rest(
    ctx: _Ctx,
    item: Any,
    currency: str,
    refunded: Mapping[str, Decimal],
    path: str,
    taxes_included: bool | None = None,
    ordered: dict[str, tuple[int, Money]] | None = None,
) -> LineItem:
    line_id = ctx.id(ctx.required(item, "id", path), f"{path}.id")
    count = ctx.int(ctx.required(item, "quantity", path), f"{path}.quantity")
    quantity = facts.current_quantity(
        ctx,
        count,
        item.get("current_quantity"),
        int(refunded.get(line_id, 0)),
        f"{path}.current_quantity",
    )
    unit = _set_or_amount(ctx, item, "price_set", "price", currency, path)
    if unit is None:
        ctx.fail(f"{path}.price", "required amount is missing")
    allocations = item.get("discount_allocations")
    if allocations:
        discount = Money.zero(unit.currency)
        for j, alloc in enumerate(allocations):
            part = _set_or_amount(
                ctx, alloc, "amount_set", "amount", currency, f"{path}.discount_allocations[{j}]"
            )
            if part is not None:
                discount += part
    else:
        given = _set_or_amount(ctx, item, "total_discount_set", "total_discount", currency, path)
        discount = given if given is not None else Money.zero(unit.currency)
    if ordered is not None:
        ordered[line_id] = (count, discount)
    discount = share(discount, quantity, count)  # an edit's kept units (see _order_facts)
    tax, rates = facts.line_tax(
        ctx, item.get("tax_lines"), currency, f"{path}.tax_lines", graphql=False
    )
    unit, discount, total = facts.net_line(unit, quantity, discount, taxes_included, tax, rates)
    return ctx.build(
        LineItem,
        path,
        id=line_id,
        product_id=ctx.opt_id(item.get("product_id"), f"{path}.product_id"),
        variant_id=ctx.opt_id(item.get("variant_id"), f"{path}.variant_id"),
        sku=_blank(item.get("sku")),
        title=item.get("title") or item.get("name") or "",
        product_type=None,
        quantity=quantity,
        unit_price=unit,
        total_discount=discount,
        total=total,
        refunded_quantity=refunded.get(line_id, 0),
    )


@_guarded
def order_from_webhook(payload: Mapping[str, Any] | bytes | str, *, shop: str) -> Order:
    """A REST/webhook order (``{"order": {...}}`` or the bare object).

    REST line items carry no product type: ``LineItem.product_type`` is ``None`` here and in
    :func:`order_from_graphql` alike (join the product for it), so both shapes agree.
    """
    data = _unwrap(payload, "order")
    ctx = _Ctx(data)
    if not isinstance(data, Mapping):
        ctx.fail("", "an order must be a JSON object")
    currency = ctx.required(data, "currency", "")
    if not isinstance(currency, str):
        ctx.fail("currency", f"{currency!r} is not a currency code")
    refunds = tuple(
        _refund_rest(ctx, item, currency, f"refunds[{i}]")
        for i, item in enumerate(data.get("refunds") or ())
    )
    refunded = _refunded_quantities(refunds)
    extra = facts.facts_rest(ctx, data, currency)
    included = extra["taxes_included"]
    ordered: dict[str, tuple[int, Money]] = {}
    lines = tuple(
        _line_rest(ctx, item, currency, refunded, f"line_items[{i}]", included, ordered)
        for i, item in enumerate(data.get("line_items") or ())
    )
    now = _after_edits_rest(ctx, data, currency, lines, ordered, refunds, included)
    line_tax = Money.zero(currency)
    for i, item in enumerate(data.get("line_items") or ()):
        tax, _ = facts.line_tax(
            ctx, item.get("tax_lines"), currency, f"line_items[{i}].tax_lines", graphql=False
        )
        line_tax += tax if tax is not None else Money.zero(currency)
    fulfillments = tuple(
        _fulfillment_rest(ctx, item, f"fulfillments[{i}]")
        for i, item in enumerate(data.get("fulfillments") or ())
    )
    shipping = _set_or_amount(ctx, data, "total_shipping_price_set", None, currency, "")
    if shipping is None:
        shipping = Money.zero(currency)
        for i, line in enumerate(data.get("shipping_lines") or ()):
            shipping += ctx.money(line.get("price"), currency, f"shipping_lines[{i}].price")
    cancelled_at = ctx.when(data.get("cancelled_at"), "cancelled_at")
    processed_at = ctx.when(data.get("processed_at"), "processed_at")
    financial = _financial(ctx, data.get("financial_status"), "financial_status")
    customer = data.get("customer")

    def money(key: str) -> Money:
        value = _set_or_amount(ctx, data, f"{key}_set", key, currency, "")
        if value is None:
            ctx.fail(key, "required amount is missing")
        return value

    return ctx.build(
        Order,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        name=data.get("name"),
        customer_id=ctx.opt_id(customer.get("id"), "customer.id") if customer else None,
        email=data.get("email") or data.get("contact_email"),
        created_at=ctx.when_req(data.get("created_at"), "created_at"),
        updated_at=ctx.when_req(data.get("updated_at"), "updated_at"),
        processed_at=processed_at,
        paid_at=processed_at if financial in _CAPTURED else None,
        cancelled_at=cancelled_at,
        closed_at=ctx.when(data.get("closed_at"), "closed_at"),
        financial_status=financial,
        fulfillment_status=_enum(
            _FULFILLMENT, data.get("fulfillment_status"), FulfillmentStatus.UNFULFILLED
        ),
        currency=currency,
        subtotal=now.get("subtotal")
        or excluding_tax(
            money("subtotal_price"), taxes_included=included, tax=line_tax if included else None
        ),
        total_discounts=now.get("total_discounts") or money("total_discounts"),
        total_shipping=shipping,
        total_tax=now.get("total_tax") or money("total_tax"),
        total=now.get("total") or money("total_price"),
        total_refunded=sum((r.amount for r in refunds), Money.zero(currency)),
        line_items=lines,
        refunds=refunds,
        fulfillments=fulfillments,
        discount_codes=tuple(
            d.get("code") for d in data.get("discount_codes") or () if d.get("code")
        ),
        source=data.get("source_name"),
        tags=_tags(data.get("tags")),
        billing_address=_address_rest(ctx, data.get("billing_address"), "billing_address"),
        shipping_address=_address_rest(ctx, data.get("shipping_address"), "shipping_address"),
        **extra,
    )


@_guarded
def product_from_webhook(
    payload: Mapping[str, Any] | bytes | str, *, shop: str, currency: str
) -> Product:
    """A REST/webhook product; REST carries no collections, so ``categories`` is empty."""
    data = _unwrap(payload, "product")
    ctx = _Ctx(data)
    return ctx.build(
        Product,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        title=data.get("title") or "",
        product_type=_blank(data.get("product_type")),
        vendor=_blank(data.get("vendor")),
        tags=_tags(data.get("tags")),
        status=data.get("status"),
        created_at=ctx.when_req(data.get("created_at"), "created_at"),
        updated_at=ctx.when_req(data.get("updated_at"), "updated_at"),
        variants=tuple(
            ctx.build(
                Variant,
                f"variants[{i}]",
                id=ctx.id(v.get("id"), f"variants[{i}].id"),
                sku=_blank(v.get("sku")),
                title=v.get("title"),
                price=None
                if v.get("price") is None
                else ctx.money(v["price"], currency, f"variants[{i}].price"),
            )
            for i, v in enumerate(data.get("variants") or ())
        ),
    )
