"""The parts of a WooCommerce order: refunds, shipments (the Shipment Tracking meta),
coupons, fees, tax lines, and the statuses derived from them (the table is in
:mod:`shopsync_woocommerce.mapping`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from shopsync._quantity import MAX_QUANTITY
from shopsync.models import FinancialStatus, FulfillmentStatus
from shopsync_woocommerce._map_common import (
    META,
    _Ctx,
    _date,
    _meta,
    _plain,
    _text,
    _unix,
)

ORDER_STATUSES: Mapping[str, tuple[FinancialStatus | None, FulfillmentStatus | None]] = {
    "pending": (FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "checkout-draft": (FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    "on-hold": (FinancialStatus.AUTHORIZED, FulfillmentStatus.ON_HOLD),
    "processing": (FinancialStatus.PAID, None),
    "completed": (FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
    "refunded": (FinancialStatus.REFUNDED, None),
    "cancelled": (None, None),
    "trash": (None, None),
    "failed": (FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
}
"""WooCommerce status -> (financial, fulfillment); None = decided by payment, refunds and
shipments (see :func:`derive_statuses`)."""


ORDER_PARTS: tuple[str, ...] = (
    "customer_id",
    "billing",
    "shipping",
    "meta_data",
    "line_items",
    "tax_lines",
    "fee_lines",
    "coupon_lines",
    "refunds",
)
"""The keys every WooCommerce order record carries (the v3 order schema; empty when there is
nothing) whose absence would erase what the store holds (the order is replaced whole): a
record without one (a proxy or plugin stripping it, a shop honouring ``_fields`` partly) is
refused, never stored as an order without lines, refunds or addresses."""


def _unit_price(subtotal: Decimal, units: Decimal) -> Decimal:
    if units == 0:
        return subtotal
    price = subtotal / units
    return (
        price.quantize(Decimal("0.0001")) if price != price.quantize(Decimal("0.0001")) else price
    )


def _refund_lines(
    ctx: _Ctx, refund: Mapping[str, Any], path: str, currency: str
) -> list[dict[str, Any]]:
    lines = []
    for i, raw in enumerate(ctx.items(refund.get("line_items"), f"{path}line_items")):
        item = ctx.obj(raw, f"{path}line_items[{i}]")
        meta = _meta(ctx, item, f"{path}line_items[{i}].")
        target = meta.get("_refunded_item_id") or item.get("refunded_item_id")
        if target in (None, "", 0, "0"):
            continue  # cannot tell which line it refunds: the amount still counts
        where = f"{path}line_items[{i}].quantity"
        units = ctx.quantity(abs(ctx.number(item.get("quantity"), where)), where)
        subtotal = ctx.number(item.get("subtotal"), f"{path}line_items[{i}].subtotal")
        lines.append(
            {
                "line_item_id": ctx.id(
                    target, f"{path}line_items[{i}].meta_data._refunded_item_id"
                ),
                "quantity": units,
                "subtotal": None
                if subtotal is None
                else {"amount": abs(subtotal), "currency": currency},
            }
        )
    return lines


def _refunds(
    ctx: _Ctx,
    payload: Mapping[str, Any],
    details: list[Mapping[str, Any]] | None,
    currency: str,
    fallback_at: dt.datetime,
    site_timezone: dt.tzinfo | None,
) -> list[dict[str, Any]]:
    """Refunds from ``GET /orders/<id>/refunds`` when given, else from the order's summary.

    The summary (``{id, reason, total: "-10.00"}``) has no date: the order's last
    modification, which a refund always bumps, stands in for it.
    """
    out = []
    if details is not None:
        for i, raw in enumerate(details):
            path = f"refunds[{i}]."
            refund = ctx.obj(raw, path)
            out.append(
                {
                    "id": ctx.id(refund.get("id"), f"{path}id"),
                    "created_at": _date(
                        ctx, refund, "date_created", path, site_timezone, required=True
                    ),
                    "amount": {
                        "amount": abs(ctx.number(refund.get("amount"), f"{path}amount")),
                        "currency": currency,
                    },
                    "note": _plain(refund.get("reason")),
                    "lines": _refund_lines(ctx, refund, path, currency),
                }
            )
    else:
        for i, raw in enumerate(ctx.items(payload.get("refunds"), "refunds")):
            refund = ctx.obj(raw, f"refunds[{i}]")
            out.append(
                {
                    "id": ctx.id(refund.get("id"), f"refunds[{i}].id"),
                    "created_at": fallback_at,
                    "amount": {
                        "amount": abs(ctx.number(refund.get("total"), f"refunds[{i}].total")),
                        "currency": currency,
                    },
                    "note": _plain(refund.get("reason", refund.get("refund"))),
                }
            )
    return sorted(out, key=lambda r: (r["created_at"], int(r["id"])))


def _fulfillments(ctx: _Ctx, value: Any) -> list[dict[str, Any]]:
    """The Shipment Tracking items as shipments: :func:`_plain_fulfillments` for the plain
    shape (every shipped order has one), else :func:`_checked_fulfillments`."""
    key = "meta_data." + META["tracking"]
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            ctx.fail(key, "not a list of tracking items")
    if type(value) is list:
        plain = _plain_fulfillments(value)
        if plain is not None:
            return plain
    return _checked_fulfillments(ctx, value)


_MAX_SECONDS = 253_402_300_799
"""9999-12-31T23:59:59 UTC: the last second :func:`datetime.datetime.fromtimestamp` reads."""


def _unix_seconds(value: Any) -> int | None:
    """Unix seconds written as digits (or an int) that make a date; None for anything else."""
    if type(value) is str and value.isascii() and value.isdigit():
        seconds = int(value)
    elif type(value) is int and value >= 0:
        seconds = value
    else:
        return None
    return seconds if seconds <= _MAX_SECONDS else None


PlainShipment = tuple[str, list[dict[str, Any]], int, int | None, list[tuple[str, int]]]
"""(id, its tracking items, shipped and delivered in Unix seconds, [(line id, quantity)])."""


def plain_shipments(value: list[Any]) -> list[PlainShipment] | None:
    """The shipments of tracking items of the plain shape (objects; dates as Unix seconds;
    lines with whole-number ids and counts), read without the field paths
    :func:`_checked_fulfillments` builds for its errors (a third of its time); None for
    anything else, which it then reads (and refuses with the path). The row path
    (:func:`_plain_fulfillments`) and the fast path (:mod:`._fast_orders`) build from these;
    tests/woocommerce/test_mapping.py holds them to the checked reader's result."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, item in enumerate(value):
        if type(item) is not dict:
            return None
        groups.setdefault(_plain(item.get("tracking_id")) or str(i + 1), []).append(item)
    out: list[PlainShipment] = []
    for fid, items in groups.items():
        first = items[0]
        shipped = _unix_seconds(first.get("date_shipped"))
        done = first.get("date_delivered")
        delivered = None if done is None or done == "" else _unix_seconds(done)
        found = first.get("line_items")
        if shipped is None or (delivered is None and done is not None and done != ""):
            return None
        if found is None:
            found = []
        elif type(found) is not list:
            return None
        lines = []
        for line in found:
            if type(line) is not dict:
                return None
            line_id, units = line.get("id"), line.get("quantity")
            if type(line_id) is not int or line_id <= 0:
                return None
            if type(units) is not int or not 0 <= units <= MAX_QUANTITY:
                return None
            lines.append((str(line_id), units))
        out.append((fid, items, shipped, delivered, lines))
    return out


def _utc(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def _plain_fulfillments(value: list[Any]) -> list[dict[str, Any]] | None:
    """:func:`_checked_fulfillments`' result for tracking items of the plain shape
    (:func:`plain_shipments`); None for anything else."""
    plain = plain_shipments(value)
    if plain is None:
        return None
    return [
        _shipment(
            fid,
            items,
            _utc(shipped),
            _utc(delivered),
            [{"line_item_id": i, "quantity": Decimal(n)} for i, n in lines],
        )
        for fid, items, shipped, delivered, lines in plain
    ]


def shipment_fields(
    items: Sequence[Mapping[str, Any]],
) -> tuple[str, str | None, tuple[str, ...], tuple[str, ...]]:
    """A shipment's status, carrier, tracking numbers and links (the first item names the
    status and carrier)."""
    first = items[0]
    return (
        _plain(first.get("status")) or "success",
        _plain(first.get("custom_tracking_provider")) or _plain(first.get("tracking_provider")),
        tuple(n for n in (_plain(it.get("tracking_number")) for it in items) if n),
        tuple(u for u in (_plain(it.get("custom_tracking_link")) for it in items) if u),
    )


def _shipment(
    fid: str,
    items: Sequence[Mapping[str, Any]],
    shipped: dt.datetime | None,
    delivered: dt.datetime | None,
    lines: list[dict[str, Any]],
) -> dict[str, Any]:
    """One shipment of the tracking items sharing ``fid`` (the first names the carrier)."""
    status, company, numbers, urls = shipment_fields(items)
    return {
        "id": fid,
        "created_at": shipped,
        "status": status,
        "tracking_company": company,
        "tracking_numbers": numbers,
        "tracking_urls": urls,
        "delivered_at": delivered,
        "lines": lines,
    }


def _checked_fulfillments(ctx: _Ctx, value: Any) -> list[dict[str, Any]]:
    """The tracking items read field by field, a malformed one refused with its path."""
    key = "meta_data." + META["tracking"]
    groups: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, raw in enumerate(ctx.items(value, key)):
        item = ctx.obj(raw, f"{key}[{i}]")
        groups.setdefault(_plain(item.get("tracking_id")) or str(i + 1), []).append((i, item))
    out = []
    for fid, items in groups.items():
        i, first = items[0]
        path = f"{key}[{i}]"
        shipped = _unix(ctx, first.get("date_shipped"), f"{path}.date_shipped")
        if shipped is None:
            ctx.fail(f"{path}.date_shipped", "missing")
        lines = []
        for k, raw_line in enumerate(ctx.items(first.get("line_items"), f"{path}.line_items")):
            line = ctx.obj(raw_line, f"{path}.line_items[{k}]")
            units = ctx.quantity(line.get("quantity"), f"{path}.line_items[{k}].quantity")
            lines.append(
                {
                    "line_item_id": ctx.id(line.get("id"), f"{path}.line_items[{k}].id"),
                    "quantity": units,
                }
            )
        delivered = _unix(ctx, first.get("date_delivered"), f"{path}.date_delivered")
        out.append(_shipment(fid, [it for _, it in items], shipped, delivered, lines))
    return out


ShippedLine = tuple[str, Decimal]
"""(line item id, quantity)."""


def _shipped(
    lines: Iterable[tuple[str, Decimal, Decimal]],
    fulfillments: Iterable[tuple[str, Iterable[ShippedLine]]],
) -> FulfillmentStatus:
    live = [
        list(shipped)
        for status, shipped in fulfillments
        if status not in ("cancelled", "failure", "error")
    ]
    if not live:
        return FulfillmentStatus.UNFULFILLED
    if any(not shipped for shipped in live):
        return FulfillmentStatus.FULFILLED
    counts: dict[str, Decimal] = {}
    for shipped in live:
        for line_id, quantity in shipped:
            counts[line_id] = counts.get(line_id, Decimal(0)) + quantity
    if all(counts.get(line_id, 0) >= qty - refunded for line_id, qty, refunded in lines):
        return FulfillmentStatus.FULFILLED
    return FulfillmentStatus.PARTIALLY_FULFILLED


def derive_statuses(
    status: str,
    *,
    paid: bool,
    total: Decimal | int,
    refunded: Decimal | int,
    lines: Iterable[tuple[str, Decimal, Decimal]],
    fulfillments: Iterable[tuple[str, Iterable[ShippedLine]]],
) -> tuple[FinancialStatus, FulfillmentStatus]:
    """The shared statuses of an order in WooCommerce ``status`` (the module's table).

    ``total`` and ``refunded`` are in one unit (amounts, or the store's ten-thousandths);
    ``lines`` are (line id, quantity, refunded quantity); ``fulfillments`` are (status,
    [(line id, quantity)]), an empty list meaning the whole order.
    """
    financial, fulfillment = ORDER_STATUSES.get(
        status, (FinancialStatus.PAID if paid else FinancialStatus.PENDING, None)
    )
    if financial is None:  # cancelled / trash
        financial = FinancialStatus.PAID if paid or refunded > 0 else FinancialStatus.VOIDED
    if financial is FinancialStatus.PAID and refunded > 0:
        financial = (
            FinancialStatus.REFUNDED if refunded >= total else FinancialStatus.PARTIALLY_REFUNDED
        )
    if fulfillment is None:
        fulfillment = _shipped(lines, fulfillments)
    return financial, fulfillment


def _flag(ctx: _Ctx, value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "yes", "no", "true", "false"):
        return str(value).lower() in ("1", "yes", "true")
    ctx.fail(path, f"{value!r} is not a boolean")


def _coupons(ctx: _Ctx, value: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Codes and discount applications of ``coupon_lines``. A line says what it took off
    (``discount``); WooCommerce versions that add ``discount_type`` and ``nominal_amount`` to
    the line also say what the coupon was (``percent`` -> a percentage)."""
    codes: list[str] = []
    applied: list[dict[str, Any]] = []
    for i, raw in enumerate(ctx.items(value, "coupon_lines")):
        line = ctx.obj(raw, f"coupon_lines[{i}]")
        code = _plain(line.get("code"))
        if not code:
            continue
        codes.append(code)
        kind = _plain(line.get("discount_type"))
        nominal = ctx.amount_or(
            line.get("nominal_amount"), f"coupon_lines[{i}].nominal_amount", None
        )
        if kind == "percent" and nominal is not None:
            value_, value_type = nominal, "percentage"
        elif kind in ("fixed_cart", "fixed_product") and nominal is not None:
            value_, value_type = nominal, "fixed_amount"
        else:
            value_ = abs(ctx.number(line.get("discount"), f"coupon_lines[{i}].discount"))
            value_type = "fixed_amount"
        applied.append(
            {
                "type": "coupon",
                "code": code,
                "title": None,
                "value": value_,
                "value_type": value_type,
                "allocation": kind,
            }
        )
    return codes, applied


def _fees(ctx: _Ctx, value: Any, currency: str) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(ctx.items(value, "fee_lines")):
        fee = ctx.obj(raw, f"fee_lines[{i}]")
        tax = ctx.amount_or(fee.get("total_tax"), f"fee_lines[{i}].total_tax", None)
        out.append(
            {
                "id": ctx.id(fee.get("id"), f"fee_lines[{i}].id"),
                "name": _text(fee.get("name")) or "",
                "total": {
                    "amount": ctx.number(fee.get("total"), f"fee_lines[{i}].total"),
                    "currency": currency,
                },
                "total_tax": None if tax is None else {"amount": tax, "currency": currency},
            }
        )
    return out


def _taxes(ctx: _Ctx, value: Any, currency: str) -> list[dict[str, Any]]:
    """``tax_lines``: one per rate, the tax on items plus the tax on shipping; the rate as a
    fraction when the store says it (``rate_percent``, WooCommerce 3.7+)."""
    out = []
    for i, raw in enumerate(ctx.items(value, "tax_lines")):
        tax = ctx.obj(raw, f"tax_lines[{i}]")
        items = ctx.number(tax.get("tax_total"), f"tax_lines[{i}].tax_total")
        shipping = ctx.number(tax.get("shipping_tax_total"), f"tax_lines[{i}].shipping_tax_total")
        percent = ctx.amount_or(tax.get("rate_percent"), f"tax_lines[{i}].rate_percent", None)
        out.append(
            {
                "title": _text(tax.get("label")) or _plain(tax.get("rate_code")) or "Tax",
                "rate": None if percent is None else percent / 100,
                "amount": {"amount": items + shipping, "currency": currency},
            }
        )
    return out
