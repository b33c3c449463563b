"""Store rows straight from a decoded bulk order (:mod:`._bulk_structs`), issue 20 item 3.1.

:func:`._fast_orders.order_tables` on the structs instead of the reassembled dict: the same
rows, value for value, with the same refusals (None: today's path takes the order, so what
it refuses or quarantines is decided there, by the same code as before). The JSON types were
checked by the decoder; what is left is what :mod:`._fast_orders` checks of the values.
tests/shopify/test_bulk_structs.py holds the two to the same store rows and quarantine on
real bulk files with hostile lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from msgspec import UNSET

from shopsync._currencies import EXPONENTS
from shopsync.ingest_columns import OrderRows, order_rows
from shopsync.models import MAX_COUNT
from shopsync_shopify._bulk_structs import (
    Address,
    AutomaticDiscount,
    Bag,
    Decoded,
    Discount,
    ManualDiscount,
    Order,
    Ref,
    ScriptDiscount,
    TaxLine,
)
from shopsync_shopify._fast_orders import (
    _CAPTURED,
    _COUNTRY,
    _EMAIL,
    _MAX_UNITS,
    _PLAIN,
    _UNITS,
    _micros,
    _rate,
    _Refuse,
    _value,
    line_row,
    text_units,
)
from shopsync_shopify._map_common import _FINANCIAL, _FULFILLMENT

__all__ = ["struct_tables"]


_KINDS = {
    Discount: "discount_code",
    AutomaticDiscount: "automatic",
    ManualDiscount: "manual",
    ScriptDiscount: "script",
}


def _text(value: str) -> str:
    """A model ``Text`` (the decoder gave a str without a lone surrogate)."""
    if "\x00" in value:
        raise _Refuse
    return value


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


def _blank(value: str | None) -> str | None:
    return None if value is None or value == "" else _text(value)


def _id(value: str | None) -> str:
    if value is None:
        raise _Refuse
    tail = value[value.rfind("/") + 1 :] if value.startswith("gid://shopify/") else value
    if not (tail.isascii() and tail.isdigit()) or len(tail) > 255:
        raise _Refuse
    return tail


def _opt_micros(value: str | None) -> int | None:
    return None if value is None else _micros(value)


_REFS: dict[str, str] = {}
"""Product and variant gids already read (a shop's catalogue repeats line after line), and
their ids; at most ``_REFS_HELD``."""
_REFS_HELD = 1 << 16


def _ref(value: Ref | None) -> str | None:
    """The id of a product or variant reference (None: none)."""
    if value is None or value.id is None:
        return None
    gid = value.id
    tail = _REFS.get(gid)
    if tail is None:
        tail = _id(gid)
        if len(_REFS) < _REFS_HELD:
            _REFS[gid] = tail
    return tail


def _count(value: int) -> int:
    """A whole number of units (the decoder refused any other JSON type)."""
    if not 0 <= value <= MAX_COUNT:
        raise _Refuse
    return value


class _Money:
    """The amounts of one order, each in its currency (``_fast_orders._Reader``)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def _shop(self, bag: Bag) -> str:
        shop = bag.shopMoney
        code = shop.currencyCode
        if code != self.currency and code is not None and code != "":
            raise _Refuse
        return shop.amount

    def units(self, bag: Bag) -> int:
        """``text_units`` of the shop amount, the common case in this one call (ten an
        order)."""
        shop = bag.shopMoney
        code = shop.currencyCode
        if code != self.currency and code is not None and code != "":
            raise _Refuse
        units = _UNITS.get(shop.amount)
        return text_units(shop.amount) if units is None else units

    def money(self, bag: Bag) -> dict[str, str]:
        text = self._shop(bag)
        if not _PLAIN.match(text):
            raise _Refuse
        return {"amount": text, "currency": self.currency}


def _address(value: Address | None) -> dict[str, Any] | None:
    if value is None:
        return None
    country = _blank(value.countryCodeV2) or _blank(value.countryCode)
    if country is not None and not _COUNTRY.fullmatch(country):
        raise _Refuse
    return {
        "first_name": _blank(value.firstName),
        "last_name": _blank(value.lastName),
        "company": _blank(value.company),
        "address1": _blank(value.address1),
        "address2": _blank(value.address2),
        "city": _blank(value.city),
        "province": _blank(value.province),
        "zip": _blank(value.zip),
        "country_code": country,
        "phone": _blank(value.phone),
    }


def _tags(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if type(value) is str:
        return [_text(t.strip()) for t in value.split(",") if t.strip()]
    return [_text(t) for t in value]


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    if not text:
        return None
    if not _EMAIL.match(text):
        raise _Refuse
    return text


def _tax_lines(money: _Money, items: list[TaxLine] | None) -> list[dict[str, Any]]:
    return [
        {
            "title": _text(item.title or "tax"),
            "rate": _rate(item.rate),
            "amount": money.money(item.priceSet),
        }
        for item in items or ()
    ]


def _discounts(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in () if items is UNSET else items:
        value = item.value
        if value is not None and value.percentage is not UNSET:
            amount, value_type = value.percentage, "percentage"
        else:
            amount, value_type = (None if value is None else value.amount), "fixed_amount"
        number = _value(amount)
        if number < 0:
            raise _Refuse
        allocation = item.allocationMethod
        out.append(
            {
                "type": _KINDS[type(item)],
                "code": _opt_text(item.code or None),
                "title": _opt_text(item.title or item.description or None),
                "value": str(number),
                "value_type": value_type,
                "allocation": _text(allocation.lower()) if allocation else None,
            }
        )
    return out


def _refunds(
    money: _Money, order: Order, key: dict[str, Any], refunded: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for i, item in enumerate(order.refunds or ()):
        lines = []
        for rl in () if item.refundLineItems is UNSET else item.refundLineItems:
            line_id = _id(rl.lineItem.id)
            quantity = _count(rl.quantity)
            refunded[line_id] = refunded.get(line_id, 0) + quantity
            subtotal = rl.subtotalSet
            lines.append(
                {
                    "line_item_id": line_id,
                    "quantity": str(quantity),
                    "subtotal": None if subtotal is None else money.money(subtotal),
                }
            )
        rows.append(
            {
                **key,
                "id": _id(item.id),
                "position": i,
                "created_at": _micros(item.createdAt),
                "amount": money.units(item.totalRefundedSet),
                "note": _blank(item.note),
                "lines": lines,
            }
        )
    return rows


def _fulfillments(order: Order, key: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, item in enumerate(order.fulfillments or ()):
        tracking = item.trackingInfo or ()
        company = next((t.company for t in tracking if t.company), None)
        lines = [
            {"line_item_id": _id(fl.lineItem.id), "quantity": str(_count(fl.quantity))}
            for fl in (() if item.fulfillmentLineItems is UNSET else item.fulfillmentLineItems)
        ]
        rows.append(
            {
                **key,
                "id": _id(item.id),
                "position": i,
                "created_at": _micros(item.createdAt),
                "status": _text((item.status or "success").lower()),
                "tracking_company": _opt_text(company),
                "tracking_numbers": [_text(t.number) for t in tracking if t.number],
                "tracking_urls": [_text(t.url) for t in tracking if t.url],
                "delivered_at": _opt_micros(item.deliveredAt),
                "lines": lines,
            }
        )
    return rows


def _lines(
    money: _Money, order: Order, order_id: str, refunded: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    units = money.units
    for i, item in enumerate(() if order.lineItems is UNSET else order.lineItems):
        line_id = _id(item.id)
        count = _count(item.quantity)
        current = item.currentQuantity
        took = refunded.get(line_id, 0)
        if current is not None and _count(current) + took < count:
            raise _Refuse  # an edit shortened the line
        if took > count:
            raise _Refuse
        unit = units(item.originalUnitPriceSet)
        discount = units(item.totalDiscountSet)
        for tax in item.taxLines or ():  # read (and refused if malformed) though unused
            money.money(tax.priceSet)
            _rate(tax.rate)
        sku = item.sku
        rows.append(
            line_row(
                order_id,
                line_id,
                i,
                _ref(item.product),
                _ref(item.variant),
                None if sku is None or sku == "" else _text(sku),
                _text(item.title or item.name or ""),
                (count, took, unit, discount),
            )
        )
    return rows


def _tables(order: Order, packed: Callable[[], Mapping[str, Any]]) -> OrderRows | None:
    currency = order.currencyCode
    if currency not in EXPONENTS:
        raise _Refuse
    if order.edited is True or order.taxesIncluded is True:
        raise _Refuse
    money = _Money(currency)
    order_id = _id(order.id)
    key = {"order_id": order_id}
    refunded: dict[str, int] = {}
    refunds = _refunds(money, order, key, refunded)
    tax_lines = _tax_lines(money, order.taxLines)
    discounts = _discounts(order.discountApplications)
    lines = _lines(money, order, order_id, refunded)
    fulfillments = _fulfillments(order, key)
    status = order.displayFinancialStatus
    if status is None:
        financial = "pending"
    elif status.lower() in _FINANCIAL:
        financial = _FINANCIAL[status.lower()].value
    else:
        raise _Refuse
    shown = order.displayFulfillmentStatus
    fulfillment = (
        _FULFILLMENT[shown.lower()].value
        if shown is not None and shown.lower() in _FULFILLMENT
        else "unfulfilled"
    )
    created_text, processed_text = order.createdAt, order.processedAt
    created = _micros(created_text)
    # most orders are processed as they are created: that stamp read once
    processed = created if processed_text == created_text else _opt_micros(processed_text)
    customer = order.customer
    tip = order.totalTipReceivedSet
    tip_units = None if tip is None else money.units(tip)
    duties = order.currentTotalDutiesSet
    refunded_bag = order.totalRefundedSet
    total = money.units(order.totalPriceSet)
    total_refunded = (
        money.units(refunded_bag) if refunded_bag is not None else sum(r["amount"] for r in refunds)
    )
    if total_refunded > total or total_refunded >= _MAX_UNITS:
        raise _Refuse
    included = order.taxesIncluded
    reason = order.cancelReason
    owner = None if customer is None or customer.id is None else _id(customer.id)
    updated = _micros(order.updatedAt)
    billing_in, shipping_in = order.billingAddress, order.shippingAddress
    billing = _address(billing_in)  # most orders ship where they bill: mapped once
    row: dict[str, Any] = {
        "id": order_id,
        "name": _opt_text(order.name),
        "customer_id": owner,
        "email": _email(order.email),
        "created_at": created,
        "updated_at": updated,
        "content_hash": None,
        "processed_at": processed,
        "paid_at": processed if financial in _CAPTURED else None,
        "cancelled_at": _opt_micros(order.cancelledAt),
        "closed_at": _opt_micros(order.closedAt),
        "financial_status": financial,
        "fulfillment_status": fulfillment,
        "currency": currency,
        "subtotal": money.units(order.subtotalPriceSet),
        "total_discounts": money.units(order.totalDiscountsSet),
        "total_shipping": money.units(order.totalShippingPriceSet),
        "total_tax": money.units(order.totalTaxSet),
        "total": total,
        "total_refunded": total_refunded,
        "discount_codes": [_text(c) for c in order.discountCodes or ()],
        "source": _opt_text(order.sourceName),
        "tags": _tags(order.tags),
        "billing_address": billing,
        "shipping_address": billing if shipping_in == billing_in else _address(shipping_in),
        "test": bool(order.test),
        "taxes_included": included,
        "cancel_reason": _text(reason.lower()) if reason else None,
        "total_tip": tip_units if tip_units else None,
        "total_duties": None if duties is None else money.units(duties),
        "tax_lines": tax_lines,
        "discount_applications": discounts,
        "fee_lines": [],
        "refunds_complete": True,
    }
    return order_rows(row, (lines, refunds, fulfillments), packed)


def struct_tables(decoded: Decoded, packed: Callable[[], Mapping[str, Any]]) -> OrderRows | None:
    """The store rows of a decoded order, or None when today's path must take it (the
    refusals of :func:`._fast_orders.order_tables`); ``packed`` gives the node again."""
    try:
        return _tables(decoded.order, packed)
    except (_Refuse, ArithmeticError, AttributeError, KeyError, TypeError, ValueError):
        return None
