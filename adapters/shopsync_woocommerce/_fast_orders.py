"""A REST order record straight to store rows, without the models (issue 20).

The row path maps a record into an :class:`~shopsync.models.Order` (:func:`.order_from_rest`)
and the store turns the model into rows (``store._rows.order_rows``); the model and its
validators cost most of a first sync's own CPU. This module writes the same rows directly and
checks what the models would check. The nested parts (refunds, shipments, coupons, fees, tax
lines, tags) go through the mapper's own readers (:mod:`._map_orders`), so their rules live in
one place, except the one tracking item most shipped orders have (:func:`_one_shipment`);
the order, its lines and its addresses are read here, their fields by :mod:`._fast_fields`.
Amounts are summed and compared in the store's integer units; ``Decimal`` reads only the
spellings that are not plain (issue 20, item 3.3: the mapping was most of a first sync's CPU).

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
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync._instants import instant, to_micros
from shopsync._quantity import MAX_QUANTITY, _quantity
from shopsync.errors import InvalidRecordError
from shopsync.ingest_columns import OrderRows, order_rows
from shopsync_woocommerce._fast_fields import (
    MAX_ID,
    MAX_UNITS,
    Refuse,
    address_row,
    amount,
    date,
    given_id,
    ident,
    money,
    name,
    number,
    plain,
    plain_units,
    ref,
    text,
    units,
)
from shopsync_woocommerce._map_common import META, _Ctx, _meta, _tags
from shopsync_woocommerce._map_orders import (
    ORDER_PARTS,
    _coupons,
    _fees,
    _flag,
    _fulfillments,
    _refunds,
    _unit_price,
    _unix_seconds,
    derive_statuses,
    plain_shipments,
    shipment_fields,
)

__all__ = ["order_tables"]

_ZERO = Decimal(0)
_UNIT = Decimal(10_000)
_EMAIL = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")


def _meta_of(ctx: _Ctx, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``_map_common._meta`` of the order: a list of ``{key, value}`` objects read in one
    pass, anything else by ``_meta``."""
    entries = payload.get("meta_data")
    if type(entries) is list:
        found: dict[str, Any] = {}
        for entry in entries:
            if type(entry) is not dict or type(entry.get("key")) is not str:
                return _meta(ctx, payload, "")
            found[entry["key"]] = entry.get("value")
        return found
    return _meta(ctx, payload, "")


def _label(value: Any) -> str | None:
    """:func:`.name` (``_map_common._text`` as ``Text``); ASCII text without an entity or
    U+0000 as it is."""
    if type(value) is str and value.isascii() and "&" not in value and "\x00" not in value:
        return value or None
    return name(value)


def _opt_plain(value: Any) -> str | None:
    """:func:`.plain`; ASCII text without U+0000 as it is."""
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value or None
    return plain(value)


_Counts = list[tuple[str, Decimal, Decimal]]


def _line_amounts(item: Mapping[str, Any], count: Decimal) -> tuple[int, int | None, int]:
    """A line's unit price, discount (None when the line costs more than its subtotal)
    and total in units, read as the model mapper reads them (any spelling of its amounts)."""
    subtotal = number(item.get("subtotal"))
    line_total = number(item.get("total"))
    discount = units(subtotal - line_total) if subtotal >= line_total else None
    return units(_unit_price(subtotal, count)), discount, units(line_total)


def _lines(
    payload: Mapping[str, Any], key: dict[str, Any], refunded: dict[str, Decimal]
) -> tuple[list[dict[str, Any]], int, _Counts]:
    """The line rows, the sum of the line totals (the order's subtotal) in units, and each
    line's (id, quantity, refunded quantity) for :func:`derive_statuses`. A line of whole
    units and plain amounts whose unit price is exact is read without ``Decimal``."""
    items = payload.get("line_items")
    if items is None:
        return [], 0, []
    if type(items) is not list:
        raise Refuse
    rows: list[dict[str, Any]] = []
    counts: _Counts = []
    subtotal_sum = 0
    for item in items:
        if item is None:
            continue
        if type(item) is not dict:
            raise Refuse
        get = item.get
        count = get("quantity")
        line_id = get("id")
        if type(line_id) is not int or not 0 < line_id < MAX_ID:
            raise Refuse
        line_key = str(line_id)
        subtotal, line_total = plain_units(get("subtotal")), plain_units(get("total"))
        if type(count) is int and 0 <= count <= MAX_QUANTITY:
            quantity = Decimal(count)
            stored = count * 10_000
            if subtotal is not None and line_total is not None and subtotal % (count or 1) == 0:
                unit_price = subtotal // count if count else subtotal
                discount = subtotal - line_total if subtotal >= line_total else None
            else:
                unit_price, discount, line_total = _line_amounts(item, quantity)
        elif count is None:
            raise Refuse
        else:
            quantity = _quantity(count)
            stored = int(quantity * _UNIT)
            unit_price, discount, line_total = _line_amounts(item, quantity)
        subtotal_sum += line_total
        took = min(refunded.get(line_key, _ZERO), quantity) if refunded else _ZERO
        counts.append((line_key, quantity, took))
        product, variant = get("product_id"), get("variation_id")
        rows.append(
            {
                **key,
                "id": line_key,
                "position": len(rows),
                "product_id": ref(product) if product else None,
                "variant_id": ref(variant) if variant else None,
                "sku": _opt_plain(get("sku")),
                "title": _label(get("name")) or "",
                "product_type": None,
                "quantity": stored,
                "unit_price": unit_price,
                "total_discount": discount,
                "total": line_total,
                "refunded_quantity": int(took * _UNIT) if took else 0,
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
) -> tuple[list[dict[str, Any]], dict[str, Decimal], int]:
    """The refund rows (read by ``_map_orders._refunds``), the refunded quantity per line
    and the amount refunded in units."""
    rows = []
    refunded: dict[str, Decimal] = {}
    total = 0
    for i, refund in enumerate(_refunds(ctx, payload, details, currency, updated, None)):
        lines = []
        for rl in refund["lines"]:
            line_id = given_id(rl["line_item_id"])
            refunded[line_id] = refunded.get(line_id, _ZERO) + rl["quantity"]
            subtotal = rl["subtotal"]
            lines.append(
                {
                    "line_item_id": line_id,
                    "quantity": str(rl["quantity"]),
                    "subtotal": None if subtotal is None else money(subtotal["amount"], currency),
                }
            )
        refund_units = units(refund["amount"]["amount"])
        total += refund_units
        rows.append(
            {
                **key,
                "id": given_id(refund["id"]),
                "position": i,
                "created_at": to_micros(refund["created_at"]),
                "amount": refund_units,
                "note": text(refund["note"]),
                "lines": lines,
            }
        )
    return rows, refunded, total


def _fulfillment_rows(
    ctx: _Ctx, meta: Mapping[str, Any], key: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, list[tuple[str, Decimal]]]]]:
    """The fulfilment rows (read by ``_map_orders``: :func:`_one_shipment` for the one
    tracking item most shipped orders have, :func:`.plain_shipments` for more of the plain
    shape, else ``_fulfillments``) and what :func:`derive_statuses` reads of them."""
    value = meta.get(META["tracking"])
    if value is None or value == "":
        return [], []
    if type(value) is list and len(value) == 1 and type(value[0]) is dict:
        one = _one_shipment(value[0], key)
        if one is not None:
            return [one[0]], [one[1]]
    plain = plain_shipments(value) if type(value) is list else None
    if plain is None:
        return _checked_rows(ctx, value, key)
    rows = []
    shipped = []
    for i, (fid, items, at, delivered, lines) in enumerate(plain):
        status, company, numbers, urls = shipment_fields(items)
        moment = None if delivered is None else delivered * 1_000_000
        quantities = [(given_id(x), str(n)) for x, n in lines]  # an Id: 255 characters
        shipment = (status, company, numbers, urls, moment, quantities)
        rows.append(_shipment_row(key, i, fid, at * 1_000_000, *shipment))
        shipped.append((status, [(x, Decimal(n)) for x, n in lines]))
    return rows, shipped


def _given(value: Any) -> str | None:
    """``_map_common._plain`` of a text field of a tracking item; refused (by raising
    TypeError) when it is not text, which :func:`_one_shipment` leaves to the readers."""
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise TypeError
    return value


def _one_shipment(
    item: dict[str, Any], key: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, list[tuple[str, Decimal]]]] | None:
    """The row of a single tracking item of the plain shape (:func:`.plain_shipments`) with
    text fields, and its (status, [(line id, quantity)]); None for any other item, which
    the readers then take."""
    get = item.get
    try:
        fid = _given(get("tracking_id")) or "1"
        status = _given(get("status")) or "success"
        company = _given(get("custom_tracking_provider")) or _given(get("tracking_provider"))
        number_ = _given(get("tracking_number"))
        url = _given(get("custom_tracking_link"))
    except TypeError:
        return None
    shipped = _unix_seconds(get("date_shipped"))
    done = get("date_delivered")
    delivered = None if done is None or done == "" else _unix_seconds(done)
    if shipped is None or (delivered is None and done is not None and done != ""):
        return None
    found = get("line_items")
    lines = []
    counts = []
    if found is not None:
        if type(found) is not list:
            return None
        for line in found:
            if type(line) is not dict:
                return None
            line_id, count = line.get("id"), line.get("quantity")
            if type(line_id) is not int or not 0 < line_id < MAX_ID:
                return None
            if type(count) is not int or not 0 <= count <= MAX_QUANTITY:
                return None
            lines.append({"line_item_id": str(line_id), "quantity": str(count)})
            counts.append((str(line_id), Decimal(count)))
    row = {
        **key,
        "id": given_id(fid),
        "position": 0,
        "created_at": shipped * 1_000_000,
        "status": text(status),
        "tracking_company": text(company),
        "tracking_numbers": [] if number_ is None else [text(number_)],
        "tracking_urls": [] if url is None else [text(url)],
        "delivered_at": None if delivered is None else delivered * 1_000_000,
        "lines": lines,
    }
    return row, (status, counts)


def _checked_rows(
    ctx: _Ctx, value: Any, key: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, list[tuple[str, Decimal]]]]]:
    """:func:`_fulfillment_rows` of tracking items of another shape."""
    rows = []
    shipped = []
    for i, f in enumerate(_fulfillments(ctx, value)):
        delivered = f["delivered_at"]
        moment = None if delivered is None else to_micros(delivered)
        quantities = [(given_id(x["line_item_id"]), str(x["quantity"])) for x in f["lines"]]
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
        "id": given_id(fid),
        "position": position,
        "created_at": created,
        "status": text(status),
        "tracking_company": text(company),
        "tracking_numbers": [text(n) for n in numbers],
        "tracking_urls": [text(u) for u in urls],
        "delivered_at": delivered,
        "lines": [{"line_item_id": x, "quantity": q} for x, q in quantities],
    }


def _json_lists(
    ctx: _Ctx, payload: Mapping[str, Any], currency: str
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Discount codes, discount applications, fee lines and tax lines as the model dumps
    them (most orders have none: the mapper's readers are not worth copying)."""
    coupons, fee_lines = payload.get("coupon_lines"), payload.get("fee_lines")
    taxes = payload.get("tax_lines")
    for value in (coupons, fee_lines, taxes):
        if value is not None and type(value) is not list:
            raise Refuse
    codes: list[str] = []
    discounts: list[dict[str, Any]] = []
    if coupons:
        codes, applied = _coupons(ctx, coupons)
        for code in codes:
            text(code)
        for d in applied:
            value = d["value"]
            if value < 0:
                raise Refuse
            text(d["allocation"])
            discounts.append({**d, "value": str(value)})
    fees = []
    if fee_lines:
        for fee in _fees(ctx, fee_lines, currency):
            tax = fee["total_tax"]
            fees.append(
                {
                    "id": given_id(fee["id"]),
                    "name": text(fee["name"]),
                    "total": money(fee["total"]["amount"], currency, signed=True),
                    "total_tax": None if tax is None else money(tax["amount"], currency, True),
                }
            )
    return codes, discounts, fees, _tax_rows(taxes, currency)


def _tax_rows(value: list[Any] | None, currency: str) -> list[dict[str, Any]]:
    """``_map_orders._taxes`` as the model dumps it, written out: every order has a tax line
    (tests/woocommerce/test_fast_orders.py holds the two to the same rows)."""
    rows = []
    for tax in value or ():
        if tax is None:
            tax = {}  # ``ctx.obj``: null reads as an empty object
        elif type(tax) is not dict:
            raise Refuse
        get = tax.get
        taxed = number(get("tax_total")) + number(get("shipping_tax_total"))
        percent = get("rate_percent")
        rate = None
        if percent is not None and not (type(percent) is str and not percent.strip()):
            rate = number(percent) / 100
            if rate < 0:
                raise Refuse
        rows.append(
            {
                "title": _label(get("label")) or plain(get("rate_code")) or "Tax",
                "rate": None if rate is None else str(rate),
                "amount": money(taxed, currency),
            }
        )
    return rows


def _email(billing: Mapping[str, Any]) -> str | None:
    found = billing.get("email")
    if found is None:
        return None
    if type(found) is not str:
        raise Refuse
    found = found.strip().lower() or None
    if found is not None and not _EMAIL.match(found):
        raise Refuse
    return found


def _tables(payload: Mapping[str, Any], details: list[Any] | None) -> OrderRows | None:
    ctx = _Ctx(payload)
    get = payload.get
    for part in ORDER_PARTS:
        if part not in payload:
            raise Refuse  # the row path says which is missing
    currency = get("currency")
    if type(currency) is not str:
        raise Refuse
    currency = currency.strip().upper()
    if currency not in EXPONENTS:
        raise Refuse
    summary = get("refunds")
    if summary is not None and type(summary) is not list:
        raise Refuse
    if details is None and summary:
        raise Refuse  # refunds_complete=False: the row path keeps the held refunds
    meta = _meta_of(ctx, payload)
    billing = get("billing")
    if billing is None:
        billing = {}
    elif type(billing) is not dict:
        raise Refuse
    order_id = ident(get("id"))
    created = date(payload, "date_created")
    if created is None:
        raise Refuse
    updated = date(payload, "date_modified")
    if updated is None:
        updated = created
    key = {"order_id": order_id}
    if details:
        refunds, refunded_units, refunded = _refund_rows(
            ctx, payload, details, key, currency, instant(updated)
        )
    else:  # ``_refunds`` of no refund records: none
        refunds, refunded_units, refunded = [], {}, 0
    lines, subtotal, counts = _lines(payload, key, refunded_units)
    if subtotal >= MAX_UNITS:
        raise Refuse
    status = get("status")
    if type(status) is not str:
        raise Refuse
    status = status.removeprefix("wc-")
    total = amount(get("total"))
    fulfillments, shipped = _fulfillment_rows(ctx, meta, key)
    financial, fulfillment = derive_statuses(
        status,
        paid=bool(get("date_paid_gmt") or get("date_paid")),
        total=total,
        refunded=refunded,
        lines=counts,
        fulfillments=shipped,
    )
    codes, discounts, fees, taxes = _json_lists(ctx, payload, currency)
    if refunded > total:
        raise Refuse
    called = plain(get("number")) or str(get("id"))
    tags = meta.get(META["tags"])
    billed = address_row(billing)
    shipped_to = address_row(get("shipping"))
    order: dict[str, Any] = {
        "id": order_id,
        "name": text(called if called.startswith("#") else f"#{called}"),
        "customer_id": ref(get("customer_id")),
        "email": _email(billing),
        "created_at": created,
        "updated_at": updated,
        "content_hash": None,
        "processed_at": created,
        "paid_at": date(payload, "date_paid"),
        "cancelled_at": updated if status == "cancelled" else None,
        "closed_at": date(payload, "date_completed"),
        "financial_status": financial.value,
        "fulfillment_status": fulfillment.value,
        "currency": currency,
        "subtotal": subtotal,
        "total_discounts": amount(get("discount_total")),
        "total_shipping": amount(get("shipping_total")),
        "total_tax": amount(get("total_tax")),
        "total": total,
        "total_refunded": refunded,
        "discount_codes": codes,
        "source": plain(get("created_via")),
        "tags": [text(t) for t in _tags(ctx, tags)] if tags is not None else [],
        "billing_address": billed,
        # one object when the two are equal: the store writes its JSON once
        "shipping_address": billed if shipped_to == billed else shipped_to,
        "test": False,
        "taxes_included": _flag(ctx, get("prices_include_tax"), "prices_include_tax"),
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
    except (Refuse, InvalidRecordError, ArithmeticError, AttributeError, KeyError):
        return None
    except (TypeError, ValueError):
        return None
