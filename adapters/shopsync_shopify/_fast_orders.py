"""A reassembled bulk ``Order`` node straight to store rows, without the models (issue 20).

The row path maps a node into an :class:`~shopsync.models.Order` (:func:`.order_from_graphql`)
and the store turns the model into rows (``store._rows.order_rows``); a model per order and
its validators cost most of a bulk backfill's CPU. This module writes the same rows directly,
for the orders whose shape it knows to be plain, and checks what the models would check.

It accepts only what it can map exactly as the row path does, and refuses (returns None)
everything else, which then takes the row path whole: the model maps it or the quarantine
gets it with the field path. Refused, besides anything malformed: an edited order or a line
an edit shortened (``_order_facts.after_edits_gql``), prices that include tax (the net
conversion of ``_money.line_excluding_tax``), an amount in another currency than the order's,
amounts or quantities that are not decimal strings or whole numbers, ids that are not
numeric. Those orders are few in a shop, so the speed stays. Tests: the store after a
fast-path sync equals the row path's, column for column, on an emulated shop with the real
fixture orders in it (tests/shopify/test_fast_ingest.py); every field of real bulk nodes set
to hostile values is refused or mapped to exactly the model's rows, never accepted where the
model refuses (tests/shopify/test_fast_orders.py).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync.adapter_kit import parse_timestamp
from shopsync.ingest_columns import OrderRows, compact, order_rows
from shopsync.models import MAX_AMOUNT, MAX_COUNT
from shopsync.store.times import to_micros
from shopsync_shopify._map_common import _FINANCIAL, _FULFILLMENT

__all__ = ["PREBUILT", "order_tables"]

_MAX_UNITS = MAX_AMOUNT * 10_000
_CAPTURED = {"paid", "partially_paid", "partially_refunded", "refunded"}
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PLAIN = re.compile(r"(?:0|[1-9][0-9]{0,13})(?:\.[0-9]{1,4})?\Z")
"""An amount whose decimal string round-trips through ``Decimal`` (no sign, no leading zero,
no exponent) and fits ``Money`` (below 10**14, at most 4 places)."""
_fromiso = dt.datetime.fromisoformat
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_KINDS = {
    "DiscountCodeApplication": "discount_code",
    "AutomaticDiscountApplication": "automatic",
    "ManualDiscountApplication": "manual",
    "ScriptDiscountApplication": "script",
}
_ADDRESS = (
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("company", "company"),
    ("address1", "address1"),
    ("address2", "address2"),
    ("city", "city"),
    ("province", "province"),
    ("zip", "zip"),
)


_UNITS: dict[str, int] = {}
"""Amount texts already read, and their units."""
_UNITS_HELD = 1 << 16


class _Refuse(Exception):
    """The node is not one this path maps: the row path takes it."""


def _text(value: Any) -> str:
    """A model ``Text``: a string without U+0000 or a lone surrogate."""
    if type(value) is not str or "\x00" in value:
        raise _Refuse
    if not value.isascii():
        value.encode()  # a lone surrogate raises UnicodeEncodeError
    return value


def _opt_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _blank(value: Any) -> str | None:
    return None if value is None or value == "" else _text(value)


def _id(value: Any) -> str:
    if type(value) is not str:
        raise _Refuse
    tail = value[value.rfind("/") + 1 :] if value.startswith("gid://shopify/") else value
    if not (tail.isascii() and tail.isdigit()) or len(tail) > 255:
        raise _Refuse
    return tail


def _opt_id(value: Any) -> str | None:
    return None if value is None else _id(value)


def _micros(value: Any) -> int:
    """``to_micros(parse_timestamp(value))``; the common UTC form (``...:56Z`` or
    ``...:56.508999Z``) without the conversions."""
    if type(value) is not str:
        raise _Refuse
    if len(value) in (20, 27) and value[-1] == "Z" and value[10] == "T" and value[19] in "Z.":
        at = _fromiso(value[:-1])
        if at.tzinfo is None:
            seconds = (at.toordinal() - _EPOCH_DAY) * 86_400 + at.hour * 3_600
            return (seconds + at.minute * 60 + at.second) * 1_000_000 + at.microsecond
    return to_micros(parse_timestamp(value))


def _opt_micros(value: Any) -> int | None:
    return None if value is None else _micros(value)


def _decimal(value: Any) -> Decimal:
    if type(value) is not str:
        raise _Refuse
    number = Decimal(value.strip())
    if not number.is_finite():
        raise _Refuse
    return number


def _count(value: Any) -> int:
    """A whole number of units (a quantity), as ``ctx.int`` and ``Quantity`` accept it."""
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise _Refuse
    return value


def text_units(text: str) -> int:
    """A plain decimal amount text in ten-thousandths, as ``_rows.to_units`` stores it, each
    text checked and converted once (a shop's prices repeat); anything else is refused."""
    units = _UNITS.get(text)
    if units is None:
        if not _PLAIN.match(text):
            raise _Refuse
        whole, _, fraction = text.partition(".")
        units = int(whole) * 10_000 + (int(fraction.ljust(4, "0")) if fraction else 0)
        if len(_UNITS) < _UNITS_HELD:
            _UNITS[text] = units
    return units


class _Reader:
    """The amounts of one order: every one must be in the order's currency."""

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def text(self, bag: Any) -> str:
        """A ``MoneyBag``'s shop amount as written, when it is a plain decimal that
        ``str(Decimal(text))`` gives back unchanged and ``Money`` accepts (at most 14 digits
        and 4 places, not negative); anything else is refused."""
        text = self._amount(bag)
        if not _PLAIN.match(text):
            raise _Refuse
        return text

    def units(self, bag: Any) -> int:
        """The amount in ten-thousandths, as ``_rows.to_units`` stores it (each amount text
        checked and converted once: a shop's prices repeat). The common bag is read by
        subscripts, the rest as :meth:`_amount` reads it."""
        try:
            shop = bag["shopMoney"]
            code = shop["currencyCode"]
            text = shop["amount"]
        except (KeyError, TypeError, IndexError):
            text = self._amount(bag)
        else:
            if type(bag) is not dict or type(shop) is not dict or type(text) is not str:
                raise _Refuse
            if code != self.currency and code is not None and code != "":
                raise _Refuse
        return text_units(text)

    def _amount(self, bag: Any) -> str:
        """The shop amount's text of a ``MoneyBag`` in the order's currency (unchecked)."""
        if type(bag) is not dict:
            raise _Refuse
        shop = bag.get("shopMoney")
        if type(shop) is not dict:
            raise _Refuse
        code = shop.get("currencyCode")
        if code is not None and code != "" and code != self.currency:
            raise _Refuse
        text = shop.get("amount")
        if type(text) is not str:
            raise _Refuse
        return text

    def money(self, bag: Any) -> dict[str, str]:
        """The amount as ``Money.model_dump(mode="json")`` writes it."""
        return {"amount": self.text(bag), "currency": self.currency}


def _nodes(value: Any) -> list[Any]:
    """A reassembled connection: a plain list (bulk children) or ``edges``/``nodes``."""
    if value is None:
        return []
    if type(value) is list:
        return value
    if type(value) is dict:
        if value.get("nodes") is not None:
            return list(value["nodes"])
        if value.get("edges") is not None:
            return [edge["node"] for edge in value["edges"]]
    raise _Refuse


def _address(value: Any) -> dict[str, Any] | None:
    """``_map_common._address`` (GraphQL): each field blank as None, else ``Text``; the
    checks of :func:`_blank` written out, as this runs twice for most orders."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Refuse
    out: dict[str, Any] = {}
    for key, name in _ADDRESS:
        text = value.get(name)
        if text == "":
            text = None
        elif text is not None:
            if type(text) is not str or "\x00" in text:
                raise _Refuse
            if not text.isascii():
                text.encode()  # a lone surrogate raises UnicodeEncodeError
        out[key] = text
    country = _blank(value.get("countryCodeV2")) or _blank(value.get("countryCode"))
    if country is not None and not _COUNTRY.fullmatch(country):
        raise _Refuse
    out["country_code"] = country
    out["phone"] = _blank(value.get("phone"))
    return out


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if type(value) is str:
        return [_text(t.strip()) for t in value.split(",") if t.strip()]
    if type(value) is not list or any(type(t) is not str for t in value):
        raise _Refuse
    return [_text(t) for t in value]


def _email(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise _Refuse
    text: str = value.strip().lower()
    if not text:
        return None
    if not _EMAIL.match(text):
        raise _Refuse
    return text


def _rate(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) not in (int, float, str):
        raise _Refuse
    rate = Decimal(str(value))
    if not rate.is_finite() or rate < 0:
        raise _Refuse
    return str(rate)


def _tax_lines(money: _Reader, items: Any) -> list[dict[str, Any]]:
    if items is None:
        return []
    if type(items) is not list:
        raise _Refuse
    return [
        {
            "title": _text(str(item.get("title") or "tax")),
            "rate": _rate(item.get("rate")),
            "amount": money.money(item.get("priceSet")),
        }
        for item in items
    ]


def _applications(items: Any) -> list[Any]:
    """As ``_order_facts.facts_gql`` reads the connection (its own rule, not ``_nodes``)."""
    if type(items) is dict:
        return items.get("nodes") or [e.get("node") for e in items.get("edges") or ()]
    if items is None or type(items) is list:
        return items or []
    raise _Refuse


def _value(amount: Any) -> Decimal:
    """A discount's value as ``ctx.amount`` reads it (a float through its shortest repr)."""
    if type(amount) is float:
        amount = repr(amount)
    elif type(amount) is int:
        amount = str(amount)
    return _decimal(amount)


def _discounts(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in _applications(items):
        value = item.get("value") or {}
        if "percentage" in value:
            amount, value_type = value.get("percentage"), "percentage"
        else:
            amount, value_type = value.get("amount"), "fixed_amount"
        number = _value(amount)
        if number < 0:
            raise _Refuse
        allocation = item.get("allocationMethod")
        if allocation is not None and type(allocation) is not str:
            raise _Refuse
        kind = _KINDS.get(str(item.get("__typename")), "manual")
        out.append(
            {
                "type": kind,
                "code": _opt_text(item.get("code") or None),
                "title": _opt_text(item.get("title") or item.get("description") or None),
                "value": str(number),
                "value_type": value_type,
                "allocation": _text(allocation.lower()) if allocation else None,
            }
        )
    return out


def _line_tax(money: _Reader, items: Any) -> None:
    """A line's tax lines are read (and refused if malformed) though unused without
    ``taxesIncluded``: the row path reads them too."""
    if not items:
        return
    for item in items:
        money.text(item.get("priceSet"))
        _rate(item.get("rate"))


def _refunds(
    money: _Reader, node: Mapping[str, Any], key: dict[str, Any], refunded: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for i, item in enumerate(_nodes(node.get("refunds"))):
        lines = []
        for rl in _nodes(item.get("refundLineItems")):
            line = rl.get("lineItem")
            if type(line) is not dict:
                raise _Refuse
            line_id = _id(line.get("id"))
            quantity = _count(rl.get("quantity"))
            refunded[line_id] = refunded.get(line_id, 0) + quantity
            subtotal = rl.get("subtotalSet")
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
                "id": _id(item.get("id")),
                "position": i,
                "created_at": _micros(item.get("createdAt")),
                "amount": money.units(item.get("totalRefundedSet")),
                "note": _blank(item.get("note")),
                "lines": lines,
            }
        )
    return rows


def _fulfillments(node: Mapping[str, Any], key: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for i, item in enumerate(_nodes(node.get("fulfillments"))):
        tracking = item.get("trackingInfo") or []
        if type(tracking) is not list:
            raise _Refuse
        company = next((t.get("company") for t in tracking if t.get("company")), None)
        lines = []
        for fl in _nodes(item.get("fulfillmentLineItems")):
            line = fl.get("lineItem")
            if type(line) is not dict:
                raise _Refuse
            lines.append(
                {"line_item_id": _id(line.get("id")), "quantity": str(_count(fl.get("quantity")))}
            )
        rows.append(
            {
                **key,
                "id": _id(item.get("id")),
                "position": i,
                "created_at": _micros(item.get("createdAt")),
                "status": _text(str(item.get("status") or "success").lower()),
                "tracking_company": _opt_text(company),
                "tracking_numbers": [_text(t["number"]) for t in tracking if t.get("number")],
                "tracking_urls": [_text(t["url"]) for t in tracking if t.get("url")],
                "delivered_at": _opt_micros(item.get("deliveredAt")),
                "lines": lines,
            }
        )
    return rows


def _lines(
    money: _Reader, node: Mapping[str, Any], order_id: str, refunded: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    units = money.units
    for i, item in enumerate(_nodes(node.get("lineItems"))):
        get = item.get
        line_id = _id(get("id"))
        count = _count(get("quantity"))
        current = get("currentQuantity")
        took = refunded.get(line_id, 0)
        if current is not None and _count(current) + took < count:
            raise _Refuse  # an edit shortened the line
        if took > count:
            raise _Refuse
        unit = units(get("originalUnitPriceSet"))
        discount = units(get("totalDiscountSet"))
        _line_tax(money, get("taxLines"))
        product = get("product")
        variant = get("variant")
        sku = get("sku")
        rows.append(
            line_row(
                order_id,
                line_id,
                i,
                _opt_id(product.get("id")) if product else None,
                _opt_id(variant.get("id")) if variant else None,
                None if sku is None or sku == "" else _text(sku),
                _text(get("title") or get("name") or ""),
                (count, took, unit, discount),
            )
        )
    return rows


def line_row(
    order_id: str,
    line_id: str,
    position: int,
    product_id: str | None,
    variant_id: str | None,
    sku: str | None,
    title: str,
    amounts: tuple[int, int, int, int],
) -> dict[str, Any]:
    """A line item's store row, from parsed nodes here and from typed structs
    (:mod:`._struct_rows`): ``amounts`` are its count, the units refunded, and its unit
    price and discount in minor units (the discount capped at the line's price)."""
    count, took, unit, discount = amounts
    full = unit * count
    if discount > full:
        discount = full
    if full >= _MAX_UNITS:
        raise _Refuse
    return {
        "order_id": order_id,
        "id": line_id,
        "position": position,
        "product_id": product_id,
        "variant_id": variant_id,
        "sku": sku,
        "title": title,
        "product_type": None,
        "quantity": count * 10_000,
        "unit_price": unit,
        "total_discount": discount,
        "total": full - discount,
        "refunded_quantity": took * 10_000,
    }


def _tables(
    node: Mapping[str, Any], packed: Callable[[], Mapping[str, Any]] | None
) -> OrderRows | None:
    currency = node.get("currencyCode")
    if type(currency) is not str or currency not in EXPONENTS:
        raise _Refuse
    if node.get("edited") is True or node.get("taxesIncluded") is True:
        raise _Refuse
    money = _Reader(currency)
    order_id = _id(node.get("id"))
    key = {"order_id": order_id}
    refunded: dict[str, int] = {}
    refunds = _refunds(money, node, key, refunded)
    tax_lines = _tax_lines(money, node.get("taxLines"))
    discounts = _discounts(node.get("discountApplications"))
    lines = _lines(money, node, order_id, refunded)
    fulfillments = _fulfillments(node, key)
    status = node.get("displayFinancialStatus")
    if status is None:
        financial = "pending"
    elif type(status) is str and status.lower() in _FINANCIAL:
        financial = _FINANCIAL[status.lower()].value
    else:
        raise _Refuse
    shown = node.get("displayFulfillmentStatus")
    fulfillment = (
        _FULFILLMENT[shown.lower()].value
        if type(shown) is str and shown.lower() in _FULFILLMENT
        else "unfulfilled"
    )
    processed = _opt_micros(node.get("processedAt"))
    customer = node.get("customer")
    tip = node.get("totalTipReceivedSet")
    tip_units = None if tip is None else money.units(tip)
    duties = node.get("currentTotalDutiesSet")
    refunded_bag = node.get("totalRefundedSet")
    total = money.units(node.get("totalPriceSet"))
    total_refunded = (
        money.units(refunded_bag) if refunded_bag is not None else sum(r["amount"] for r in refunds)
    )
    if total_refunded > total or total_refunded >= _MAX_UNITS:
        raise _Refuse
    included = node.get("taxesIncluded")
    reason = node.get("cancelReason")
    codes = node.get("discountCodes") or []
    if type(codes) is not list:
        raise _Refuse
    owner = _opt_id(customer.get("id")) if customer else None
    updated = _micros(node.get("updatedAt"))
    billing_in, shipping_in = node.get("billingAddress"), node.get("shippingAddress")
    billing = _address(billing_in)  # most orders ship where they bill: mapped once (a value
    # equal to another maps alike: what compares equal across types is refused either way)
    order: dict[str, Any] = {
        "id": order_id,
        "name": _opt_text(node.get("name")),
        "customer_id": owner,
        "email": _email(node.get("email")),
        "created_at": _micros(node.get("createdAt")),
        "updated_at": updated,
        "content_hash": None,
        "processed_at": processed,
        "paid_at": processed if financial in _CAPTURED else None,
        "cancelled_at": _opt_micros(node.get("cancelledAt")),
        "closed_at": _opt_micros(node.get("closedAt")),
        "financial_status": financial,
        "fulfillment_status": fulfillment,
        "currency": currency,
        "subtotal": money.units(node.get("subtotalPriceSet")),
        "total_discounts": money.units(node.get("totalDiscountsSet")),
        "total_shipping": money.units(node.get("totalShippingPriceSet")),
        "total_tax": money.units(node.get("totalTaxSet")),
        "total": total,
        "total_refunded": total_refunded,
        "discount_codes": [_text(c) for c in codes],
        "source": _opt_text(node.get("sourceName")),
        "tags": _tags(node.get("tags")),
        "billing_address": billing,
        "shipping_address": billing if shipping_in == billing_in else _address(shipping_in),
        "test": bool(node.get("test")),
        "taxes_included": included if type(included) is bool else None,
        "cancel_reason": _text(str(reason).lower()) if reason else None,
        "total_tip": tip_units if tip_units else None,
        "total_duties": None if duties is None else money.units(duties),
        "tax_lines": tax_lines,
        "discount_applications": discounts,
        "fee_lines": [],
        "refunds_complete": True,
    }
    raw = compact(node) if packed is None else packed
    return order_rows(order, (lines, refunds, fulfillments), raw)


PREBUILT = object()
"""The key of a node that stands for rows built already (:mod:`._struct_rows`): the node
holds them under it, and the order's checkout tokens, for the mapper's wrappers
(``_checkouts.CheckoutTap``). No parsed node has it: JSON keys are strings."""


def order_tables(
    node: Any, packed: Callable[[], Mapping[str, Any]] | None = None
) -> OrderRows | None:
    """The store rows of a bulk ``Order`` node, or None when the row path must map it;
    ``packed`` gives the node again (else the rows keep its JSON text)."""
    if type(node) is not dict:
        return None
    built = node.get(PREBUILT)
    if built is not None:
        return built  # type: ignore[no-any-return]
    try:
        return _tables(node, packed)
    except (_Refuse, ArithmeticError, AttributeError, KeyError, TypeError, ValueError):
        return None
