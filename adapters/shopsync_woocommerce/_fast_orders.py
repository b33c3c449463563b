"""A REST order record straight to store rows, without the models (issue 20).

The row path maps a record into an :class:`~shopsync.models.Order` (:func:`.order_from_rest`)
and the store turns the model into rows (``store._rows.order_rows``); the model and its
validators cost most of a first sync's own CPU. This module writes the same rows directly and
checks what the models would check. The nested parts (refunds, shipments, coupons, fees, tax
lines, tags) go through the mapper's own readers (:mod:`._map_orders`), so their rules live in
one place; the order, its lines and its addresses are read here.

It refuses (returns None) what it does not map exactly as the row path does, and the row
path then takes the record whole: the model maps it or the quarantine gets it with its field
path. Refused, besides anything malformed: a date without its ``*_gmt`` twin (it needs the
site's time zone), an order listing refunds whose records were not read (a webhook-shaped
body, ``refunds_complete=False``), ids that are not whole numbers. Tests: the store after a
fast-path sync equals the row path's on emulated shops and the real fixture orders
(tests/woocommerce/test_fast_ingest.py); every field of real records set to hostile values
is refused or mapped to exactly the model's rows (tests/woocommerce/test_fast_orders.py).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync._instants import instant, to_micros
from shopsync._quantity import _quantity
from shopsync.adapter_kit import parse_timestamp
from shopsync.errors import InvalidRecordError
from shopsync.ingest_columns import OrderRows, order_rows
from shopsync.models import MAX_AMOUNT
from shopsync_woocommerce._map_common import META, _Ctx, _meta, _tags
from shopsync_woocommerce._map_orders import (
    _coupons,
    _fees,
    _flag,
    _fulfillments,
    _refunds,
    _unit_price,
    derive_statuses,
    plain_shipments,
    shipment_fields,
)

__all__ = ["order_tables"]

_UTC = dt.timezone.utc
_ZERO = Decimal(0)
_PLACES = Decimal("0.0001")
_UNIT = Decimal(10_000)
_MAX_ID = 10**255
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_fromiso = dt.datetime.fromisoformat


class _Refuse(Exception):
    """The record is not one this path maps: the row path takes it."""


def _text(value: Any) -> Any:
    """A model ``Text`` (or None): no U+0000, no lone surrogate."""
    if value is None:
        return None
    if type(value) is not str or "\x00" in value:
        raise _Refuse
    if not value.isascii():
        value.encode()  # a lone surrogate raises UnicodeEncodeError
    return value


def _plain(value: Any) -> str | None:
    """``_map_common._plain`` as ``Text``."""
    return None if value is None or value == "" else _text(str(value))


def _name(value: Any) -> str | None:
    """``_map_common._text`` (HTML entities decoded) as ``Text``."""
    if value is None or value == "":
        return None
    text = str(value)
    if "&" in text:
        text = html.unescape(text)
    _text(text)
    return text


def _id(value: Any) -> str:
    """A record id as ``_Ctx.id`` reads it: a whole number above 0 (other spellings, which the
    model path accepts too, are refused here: they are not what WooCommerce writes)."""
    if type(value) is not int or not 0 < value < _MAX_ID:
        raise _Refuse
    return str(value)


def _ref(value: Any) -> str | None:
    """``_Ctx.ref`` of ``value or 0``: an id where 0 (or nothing) means none."""
    return _id(value) if value else None


def _key(value: Any) -> str:
    """An ``Id`` the mapper's readers produced (a tracking id may be any text)."""
    if type(value) is not str or not value.strip() or len(value) > 255:
        raise _Refuse
    _text(value)
    return value


def _number(value: Any) -> Decimal:
    """``_Ctx.number``: an amount, ``""`` and null as zero."""
    if type(value) is str:
        text = value.strip()
        if not text:
            return _ZERO
        number = Decimal(text)
    elif value is None:
        return _ZERO
    elif type(value) is int:
        number = Decimal(value)
    elif type(value) is float:
        number = Decimal(repr(value))
    else:
        raise _Refuse
    if not number.is_finite():
        raise _Refuse
    return number


def _units(amount: Decimal, signed: bool = False) -> int:
    """``_rows.to_units`` of an amount ``Money`` accepts (an ``Amount`` unless ``signed``)."""
    if (not signed and amount < 0) or abs(amount) >= MAX_AMOUNT:
        raise _Refuse
    if amount != amount.quantize(_PLACES):
        raise _Refuse
    return int(amount * _UNIT)


def _money(amount: Decimal, currency: str, signed: bool = False) -> dict[str, str]:
    """``Money.model_dump(mode="json")``."""
    _units(amount, signed)
    return {"amount": str(amount), "currency": currency}


def _micros(value: str) -> int:
    """``to_micros`` of a ``*_gmt`` date (UTC unless it carries its own offset)."""
    if len(value) == 19 and value[10] == "T":
        at = _fromiso(value)
        if at.tzinfo is None:  # ``2026-03-01T10:00+01`` is 19 characters too
            seconds = (at.toordinal() - _EPOCH_DAY) * 86_400 + at.hour * 3_600
            return (seconds + at.minute * 60 + at.second) * 1_000_000 + at.microsecond
    return to_micros(parse_timestamp(value, assume=_UTC))


def _date(payload: Mapping[str, Any], key: str) -> int | None:
    """``_map_common._date`` when the ``*_gmt`` twin is there; refused when only the
    site-local value is (its zone is the row path's to apply)."""
    gmt = payload.get(key + "_gmt")
    if gmt is None or gmt == "":
        local = payload.get(key)
        if local is None or local == "":
            return None
        raise _Refuse
    if type(gmt) is not str:
        raise _Refuse
    return _micros(gmt)


_ADDRESS = (
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("company", "company"),
    ("address1", "address_1"),
    ("address2", "address_2"),
    ("city", "city"),
    ("province", "state"),
    ("zip", "postcode"),
)


def _address_row(value: Any) -> dict[str, Any] | None:
    """``Address.model_dump(mode="json")`` of ``_map_common._address`` (the billing email,
    which the row path leaves out first, is not read); written out, as it runs twice for
    every order."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Refuse
    out: dict[str, Any] = {}
    found = False
    for key, name in _ADDRESS:
        text = value.get(name)
        if text is None or text == "":
            out[key] = None
            continue
        if type(text) is not str:
            text = str(text)
        if "\x00" in text:
            raise _Refuse
        if not text.isascii():
            text.encode()  # a lone surrogate raises UnicodeEncodeError
        out[key] = text
        found = True
    country = (_plain(value.get("country")) or "").upper() or None
    if country is not None and not _COUNTRY.match(country):
        raise _Refuse
    phone = _plain(value.get("phone"))
    out["country_code"] = country
    out["phone"] = phone
    return out if found or country is not None or phone is not None else None


_Counts = list[tuple[str, Decimal, Decimal]]


def _lines(
    payload: Mapping[str, Any], key: dict[str, Any], refunded: dict[str, Decimal]
) -> tuple[list[dict[str, Any]], Decimal, _Counts]:
    """The line rows, the sum of the line totals (the order's subtotal), and each line's
    (id, quantity, refunded quantity) for :func:`derive_statuses`."""
    items = payload.get("line_items")
    if items is None:
        return [], _ZERO, []
    if type(items) is not list:
        raise _Refuse
    rows: list[dict[str, Any]] = []
    counts: _Counts = []
    subtotal_sum = _ZERO
    for item in items:
        if item is None:
            continue
        if type(item) is not dict:
            raise _Refuse
        count = item.get("quantity")
        if type(count) is int and 0 <= count <= 2**31 - 1:
            units = Decimal(count)
        elif count is None:
            raise _Refuse
        else:
            units = _quantity(count)
        subtotal = _number(item.get("subtotal"))
        line_total = _number(item.get("total"))
        subtotal_sum += line_total
        line_id = _id(item.get("id"))
        unit_price = _unit_price(subtotal, units)
        took = min(refunded.get(line_id, _ZERO), units)
        counts.append((line_id, units, took))
        rows.append(
            {
                **key,
                "id": line_id,
                "position": len(rows),
                "product_id": _ref(item.get("product_id")),
                "variant_id": _ref(item.get("variation_id")),
                "sku": _plain(item.get("sku")),
                "title": _name(item.get("name")) or "",
                "product_type": None,
                "quantity": int(units * _UNIT),
                "unit_price": _units(unit_price),
                "total_discount": _units(subtotal - line_total) if subtotal >= line_total else None,
                "total": _units(line_total),
                "refunded_quantity": int(took * _UNIT),
            }
        )
    return rows, subtotal_sum, counts


def _refund_rows(
    ctx: _Ctx,
    payload: Mapping[str, Any],
    details: list[Any],
    key: dict[str, Any],
    currency: str,
    updated: dt.datetime,
) -> tuple[list[dict[str, Any]], dict[str, Decimal], Decimal]:
    """The refund rows (read by ``_map_orders._refunds``), the refunded quantity per line
    and the amount refunded."""
    rows = []
    refunded: dict[str, Decimal] = {}
    total = _ZERO
    for i, refund in enumerate(_refunds(ctx, payload, details, currency, updated, None)):
        lines = []
        for rl in refund["lines"]:
            line_id = _key(rl["line_item_id"])
            refunded[line_id] = refunded.get(line_id, _ZERO) + rl["quantity"]
            subtotal = rl["subtotal"]
            lines.append(
                {
                    "line_item_id": line_id,
                    "quantity": str(rl["quantity"]),
                    "subtotal": None if subtotal is None else _money(subtotal["amount"], currency),
                }
            )
        amount = refund["amount"]["amount"]
        total += amount
        rows.append(
            {
                **key,
                "id": _key(refund["id"]),
                "position": i,
                "created_at": to_micros(refund["created_at"]),
                "amount": _units(amount),
                "note": _text(refund["note"]),
                "lines": lines,
            }
        )
    return rows, refunded, total


def _fulfillment_rows(
    ctx: _Ctx, meta: Mapping[str, Any], key: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, list[tuple[str, Decimal]]]]]:
    """The fulfilment rows (read by ``_map_orders``: :func:`.plain_shipments` for the plain
    shape every shipped order has, else ``_fulfillments``) and what :func:`derive_statuses`
    reads of them."""
    value = meta.get(META["tracking"])
    plain = plain_shipments(value) if type(value) is list else None
    if plain is None:
        return _checked_rows(ctx, value, key)
    rows = []
    shipped = []
    for i, (fid, items, at, delivered, lines) in enumerate(plain):
        status, company, numbers, urls = shipment_fields(items)
        moment = None if delivered is None else delivered * 1_000_000
        quantities = [(x, str(n)) for x, n in lines]
        shipment = (status, company, numbers, urls, moment, quantities)
        rows.append(_shipment_row(key, i, fid, at * 1_000_000, *shipment))
        shipped.append((status, [(x, Decimal(n)) for x, n in lines]))
    return rows, shipped


def _checked_rows(
    ctx: _Ctx, value: Any, key: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, list[tuple[str, Decimal]]]]]:
    """:func:`_fulfillment_rows` of tracking items of another shape."""
    rows = []
    shipped = []
    for i, f in enumerate(_fulfillments(ctx, value)):
        delivered = f["delivered_at"]
        moment = None if delivered is None else to_micros(delivered)
        quantities = [(_key(x["line_item_id"]), str(x["quantity"])) for x in f["lines"]]
        shipment = (f["status"], f["tracking_company"], f["tracking_numbers"], f["tracking_urls"])
        created = to_micros(f["created_at"])
        rows.append(_shipment_row(key, i, f["id"], created, *shipment, moment, quantities))
        shipped.append((f["status"], [(x["line_item_id"], x["quantity"]) for x in f["lines"]]))
    return rows, shipped


def _shipment_row(
    key: dict[str, Any],
    position: int,
    fid: Any,
    created: int,
    status: Any,
    company: Any,
    numbers: Any,
    urls: Any,
    delivered: int | None,
    quantities: list[tuple[Any, str]],
) -> dict[str, Any]:
    """One fulfilment row of either shape (times in micros, line ids as stored)."""
    return {
        **key,
        "id": _key(fid),
        "position": position,
        "created_at": created,
        "status": _text(status),
        "tracking_company": _text(company),
        "tracking_numbers": [_text(n) for n in numbers],
        "tracking_urls": [_text(u) for u in urls],
        "delivered_at": delivered,
        "lines": [{"line_item_id": x, "quantity": q} for x, q in quantities],
    }


def _json_lists(
    ctx: _Ctx, payload: Mapping[str, Any], currency: str
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Discount codes, discount applications, fee lines and tax lines as the model dumps
    them (most orders have none: the mapper's readers are not worth copying)."""
    for name in ("coupon_lines", "fee_lines", "tax_lines"):
        value = payload.get(name)
        if value is not None and type(value) is not list:
            raise _Refuse
    codes: list[str] = []
    discounts: list[dict[str, Any]] = []
    if payload.get("coupon_lines"):
        codes, applied = _coupons(ctx, payload.get("coupon_lines"))
        for code in codes:
            _text(code)
        for d in applied:
            value = d["value"]
            if value < 0:
                raise _Refuse
            _text(d["allocation"])
            discounts.append({**d, "value": str(value)})
    fees = []
    if payload.get("fee_lines"):
        for fee in _fees(ctx, payload.get("fee_lines"), currency):
            tax = fee["total_tax"]
            fees.append(
                {
                    "id": _key(fee["id"]),
                    "name": _text(fee["name"]),
                    "total": _money(fee["total"]["amount"], currency, signed=True),
                    "total_tax": None if tax is None else _money(tax["amount"], currency, True),
                }
            )
    return codes, discounts, fees, _tax_rows(payload.get("tax_lines"), currency)


def _tax_rows(value: list[Any] | None, currency: str) -> list[dict[str, Any]]:
    """``_map_orders._taxes`` as the model dumps it, written out: every order has a tax line
    (tests/woocommerce/test_fast_orders.py holds the two to the same rows)."""
    rows = []
    for tax in value or ():
        if tax is None:
            tax = {}  # ``ctx.obj``: null reads as an empty object
        elif type(tax) is not dict:
            raise _Refuse
        amount = _number(tax.get("tax_total")) + _number(tax.get("shipping_tax_total"))
        percent = tax.get("rate_percent")
        rate = None
        if percent is not None and not (type(percent) is str and not percent.strip()):
            rate = _number(percent) / 100
            if rate < 0:
                raise _Refuse
        rows.append(
            {
                "title": _name(tax.get("label")) or _plain(tax.get("rate_code")) or "Tax",
                "rate": None if rate is None else str(rate),
                "amount": _money(amount, currency),
            }
        )
    return rows


def _tables(payload: Mapping[str, Any], details: list[Any] | None) -> OrderRows | None:
    ctx = _Ctx(payload)
    currency = payload.get("currency")
    if type(currency) is not str:
        raise _Refuse
    currency = currency.strip().upper()
    if currency not in EXPONENTS:
        raise _Refuse
    summary = payload.get("refunds")
    if summary is not None and type(summary) is not list:
        raise _Refuse
    if details is None and summary:
        raise _Refuse  # refunds_complete=False: the row path keeps the held refunds
    meta = _meta(ctx, payload, "")
    billing = payload.get("billing")
    if billing is None:
        billing = {}
    elif type(billing) is not dict:
        raise _Refuse
    order_id = _id(payload.get("id"))
    created = _date(payload, "date_created")
    if created is None:
        raise _Refuse
    updated = _date(payload, "date_modified")
    if updated is None:
        updated = created
    key = {"order_id": order_id}
    refunds, refunded_units, refunded = _refund_rows(
        ctx, payload, details or [], key, currency, instant(updated)
    )
    lines, subtotal, counts = _lines(payload, key, refunded_units)
    status = payload.get("status")
    if type(status) is not str:
        raise _Refuse
    status = status.removeprefix("wc-")
    total = _number(payload.get("total"))
    fulfillments, shipped = _fulfillment_rows(ctx, meta, key)
    financial, fulfillment = derive_statuses(
        status,
        paid=bool(payload.get("date_paid_gmt") or payload.get("date_paid")),
        total=total,
        refunded=refunded,
        lines=counts,
        fulfillments=shipped,
    )
    codes, discounts, fees, taxes = _json_lists(ctx, payload, currency)
    if refunded > total:
        raise _Refuse
    number = _plain(payload.get("number")) or str(payload.get("id"))
    email = billing.get("email")
    if email is not None:
        if type(email) is not str:
            raise _Refuse
        email = email.strip().lower() or None
        if email is not None and not _EMAIL.match(email):
            raise _Refuse
    owner = _ref(payload.get("customer_id"))
    order: dict[str, Any] = {
        "id": order_id,
        "name": _text(number if number.startswith("#") else f"#{number}"),
        "customer_id": owner,
        "email": email,
        "created_at": created,
        "updated_at": updated,
        "content_hash": None,
        "processed_at": created,
        "paid_at": _date(payload, "date_paid"),
        "cancelled_at": updated if status == "cancelled" else None,
        "closed_at": _date(payload, "date_completed"),
        "financial_status": financial.value,
        "fulfillment_status": fulfillment.value,
        "currency": currency,
        "subtotal": _units(subtotal),
        "total_discounts": _units(_number(payload.get("discount_total"))),
        "total_shipping": _units(_number(payload.get("shipping_total"))),
        "total_tax": _units(_number(payload.get("total_tax"))),
        "total": _units(total),
        "total_refunded": _units(refunded),
        "discount_codes": codes,
        "source": _plain(payload.get("created_via")),
        "tags": [_text(t) for t in _tags(ctx, meta.get(META["tags"]))],
        "billing_address": _address_row(billing),
        "shipping_address": _address_row(payload.get("shipping")),
        "test": False,
        "taxes_included": _flag(ctx, payload.get("prices_include_tax"), "prices_include_tax"),
        "cancel_reason": None,
        "total_tip": None,
        "total_duties": None,
        "tax_lines": taxes,
        "discount_applications": discounts,
        "fee_lines": fees,
        "refunds_complete": True,
    }
    return order_rows(order, (lines, refunds, fulfillments), payload)


def order_tables(payload: Any, refunds: list[Any] | None) -> OrderRows | None:
    """The store rows of a REST order record (``refunds``: its refund records, as
    :func:`.order_from_rest` takes them), or None when the row path must map it."""
    if type(payload) is not dict:
        return None
    try:
        return _tables(payload, refunds)
    except (_Refuse, InvalidRecordError, ArithmeticError, AttributeError, KeyError):
        return None
    except (TypeError, ValueError):
        return None
