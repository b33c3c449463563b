"""Shared models -> WooCommerce orders and refunds (wc/v3), as a store serves them: the
status a store shows, line items, shipping and tax lines, tracking, and the refunds of an
order (``WC_REST_Orders_V2_Controller``, ``WC_REST_Order_Refunds_V2_Controller``).
Re-exported by :mod:`._render`, with :func:`._render.woocommerce_view`'s order parts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from shopsync.models import (
    DiscountApplication,
    DiscountValueType,
    FinancialStatus,
    Fulfillment,
    FulfillmentStatus,
    LineItem,
    Order,
    Refund,
    TaxLine,
)
from shopsync_woocommerce._emu_fields import excluded
from shopsync_woocommerce._render_base import (
    CORRUPT_DATE,
    CORRUPT_MONEY,
    _address,
    _dates,
    _links,
    _meta,
    _money,
    _number,
)
from shopsync_woocommerce.mapping import META

__all__ = ["render_order", "render_refund", "render_refunds", "wc_status"]


def wc_status(order: Order) -> str:
    """The WooCommerce status a store would show for this order."""
    fs = order.financial_status
    if order.cancelled_at is not None or fs is FinancialStatus.CANCELLED:
        return "cancelled"
    if fs is FinancialStatus.REFUNDED:
        return "refunded"
    if fs is FinancialStatus.VOIDED:
        return "failed"
    if fs is FinancialStatus.AUTHORIZED or order.fulfillment_status is FulfillmentStatus.ON_HOLD:
        return "on-hold"
    if fs in (FinancialStatus.PENDING, FinancialStatus.PARTIALLY_PAID):
        return "pending"
    if order.fulfillment_status is FulfillmentStatus.FULFILLED:
        return "completed"
    return "processing"


def _tracking(fulfillments: Iterable[Fulfillment]) -> list[dict[str, Any]]:
    """Shipment Tracking items: one per tracking number, sharing the fulfilment's id."""
    items = []
    for f in fulfillments:
        numbers = f.tracking_numbers or ("",)
        for k, number in enumerate(numbers):
            items.append(
                {
                    "tracking_provider": "",
                    "custom_tracking_provider": f.tracking_company or "",
                    "custom_tracking_link": f.tracking_urls[k] if k < len(f.tracking_urls) else "",
                    "tracking_number": number,
                    "date_shipped": str(int(f.created_at.timestamp())),
                    "tracking_id": f.id,
                    "status": f.status,
                    "date_delivered": str(int(f.delivered_at.timestamp()))
                    if f.delivered_at
                    else "",
                    "line_items": [
                        {"id": int(x.line_item_id), "quantity": _number(x.quantity)}
                        for x in f.lines
                    ],
                }
            )
    return items


def _line(li: LineItem, currency: str) -> dict[str, Any]:
    subtotal = li.unit_price.amount * li.quantity
    return {
        "id": int(li.id),
        "name": html.escape(li.title, quote=False),
        "product_id": int(li.product_id) if li.product_id else 0,
        "variation_id": int(li.variant_id) if li.variant_id else 0,
        "quantity": _number(li.quantity),  # a JSON number, as WooCommerce writes it
        "tax_class": "",
        "subtotal": _money(subtotal, currency),
        "subtotal_tax": _money(Decimal(0), currency),
        "total": _money(li.total),
        "total_tax": _money(Decimal(0), currency),
        "taxes": [],
        "meta_data": [],
        "sku": li.sku or "",
        "price": _number(li.total.amount / li.quantity if li.quantity else li.total.amount),
        "image": {"id": 0, "src": ""},
        "parent_name": None,
    }


_EXTRA = (
    "meta_data",
    "line_items",
    "tax_lines",
    "shipping_lines",
    "fee_lines",
    "coupon_lines",
    "refunds",
    "payment_url",
    "is_editable",
    "needs_payment",
    "needs_processing",
    "_links",
)
"""What ``WC_REST_Orders_V2_Controller::get_formatted_item_data`` computes only when the
request includes it (:mod:`._emu_fields`), and the links."""


def render_order(
    order: Order,
    *,
    tz: dt.tzinfo,
    base: str,
    corrupt: bool = False,
    fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``GET /orders/<id>``. Refunds appear as WooCommerce lists them: id, reason, -total.
    With ``fields`` (``_fields``) the :data:`_EXTRA` parts not included are not built, as
    WooCommerce computes them only on request; the caller filters the rest."""
    skip = excluded(_EXTRA, tuple(fields)) if fields else frozenset()
    cur = order.currency
    oid = int(order.id)
    meta: list[tuple[str, Any]] = []
    if order.tags and "meta_data" not in skip:
        meta.append((META["tags"], list(order.tags)))
    if order.fulfillments and "meta_data" not in skip:
        meta.append((META["tracking"], _tracking(order.fulfillments)))
    codes = [c.lower() for c in order.discount_codes]
    coupon_lines = [
        {
            "id": oid * 10 + 3 + k,
            "code": code,
            "discount": _money(order.total_discounts if k == 0 else Decimal(0), cur),
            "discount_tax": _money(Decimal(0), cur),
            "meta_data": [],
        }
        for k, code in enumerate(codes)
    ]
    shipping_lines = (
        [
            {
                "id": oid * 10 + 1,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "instance_id": "1",
                "total": _money(order.total_shipping),
                "total_tax": _money(Decimal(0), cur),
                "taxes": [],
                "meta_data": [],
            }
        ]
        if order.total_shipping.amount
        else []
    )
    tax_lines = _tax_lines(order) or (
        [
            {
                "id": oid * 10 + 2,
                "rate_code": "TAX-1",
                "rate_id": 1,
                "label": "Tax",
                "compound": False,
                "tax_total": _money(order.total_tax),
                "shipping_tax_total": _money(Decimal(0), cur),
                "meta_data": [],
            }
        ]
        if order.total_tax.amount
        else []
    )
    name = order.name or str(order.id)
    paid = order.paid_at is not None
    out: dict[str, Any] = {
        "id": oid,
        "parent_id": 0,
        "number": name[1:] if name.startswith("#") else name,
        "order_key": "wc_order_" + hashlib.sha1(order.id.encode()).hexdigest()[:13],
        "created_via": order.source or "",
        "version": "9.4.1",
        "status": wc_status(order),
        "currency": cur,
        **_dates("date_created", order.created_at, tz),
        **_dates("date_modified", order.updated_at, tz),
        "discount_total": _money(order.total_discounts),
        "discount_tax": _money(Decimal(0), cur),
        "shipping_total": _money(order.total_shipping),
        "shipping_tax": _money(Decimal(0), cur),
        "cart_tax": _money(order.total_tax),
        "total": _money(order.total),
        "total_tax": _money(order.total_tax),
        "prices_include_tax": bool(order.taxes_included),
        "customer_id": int(order.customer_id) if order.customer_id else 0,
        "customer_ip_address": "",
        "customer_user_agent": "",
        "customer_note": "",
        "billing": _address(order.billing_address, email=order.email or ""),
        "shipping": _address(order.shipping_address),
        "payment_method": "stripe" if paid else "bacs",
        "payment_method_title": "Credit card" if paid else "Direct bank transfer",
        "transaction_id": f"ch_{oid:x}" if paid else "",
        **_dates("date_paid", order.paid_at, tz),
        **_dates("date_completed", order.closed_at, tz),
        "cart_hash": "",
        "meta_data": _meta(meta, oid % 100_000 * 10),
        "line_items": [] if "line_items" in skip else [_line(li, cur) for li in order.line_items],
        "tax_lines": tax_lines,
        "shipping_lines": shipping_lines,
        "fee_lines": [
            {
                "id": int(f.id),
                "name": html.escape(f.name, quote=False),
                "tax_class": "",
                "tax_status": "taxable" if f.total_tax is not None else "none",
                "amount": _money(f.total),
                "total": _money(f.total),
                "total_tax": _money(f.total_tax or Decimal(0), order.currency),
                "taxes": [],
                "meta_data": [],
            }
            for f in (() if "fee_lines" in skip else order.fee_lines)
        ],
        "coupon_lines": coupon_lines,
        "refunds": [
            {"id": int(r.id), "reason": r.note or "", "total": "-" + _money(r.amount)}
            for r in sorted(
                () if "refunds" in skip else order.refunds,
                key=lambda r: (r.created_at, int(r.id)),
                reverse=True,
            )
        ],
        # WC_Order::get_checkout_payment_url(): the order-pay endpoint with pay_for_order and
        # the order key (plugins/woocommerce/includes/class-wc-order.php)
        "payment_url": f"{base}/checkout/order-pay/{oid}/?pay_for_order=true&key=wc_order_"
        + hashlib.sha1(order.id.encode()).hexdigest()[:13],
        "is_editable": wc_status(order) in ("pending", "on-hold", "checkout-draft"),
        "needs_payment": not paid and wc_status(order) in ("pending", "failed"),
        "needs_processing": True,
        "currency_symbol": "$" if cur == "USD" else cur,
        "_links": _links(base, f"orders/{oid}"),
    }
    if order.customer_id:
        out["_links"]["customer"] = [
            {"href": f"{base}/wp-json/wc/v3/customers/{order.customer_id}"}
        ]
    if corrupt:
        out["date_created_gmt"] = out["date_created"] = CORRUPT_DATE
        out["total"] = CORRUPT_MONEY
    for key in skip:
        del out[key]
    return out


def _tax_lines(order: Order) -> list[dict[str, Any]]:
    """The order's own tax lines, one per rate (``rate_percent`` since WooCommerce 3.7)."""
    out = []
    for k, tax in enumerate(order.tax_lines):
        line: dict[str, Any] = {
            "id": int(order.id) * 10 + 5 + k,
            "rate_code": tax.title.upper().replace(" ", "-"),
            "rate_id": k + 1,
            "label": html.escape(tax.title, quote=False),
            "compound": False,
            "tax_total": _money(tax.amount),
            "shipping_tax_total": _money(Decimal(0), order.currency),
            "meta_data": [],
        }
        if tax.rate is not None:
            line["rate_percent"] = _number(tax.rate * 100)
        out.append(line)
    return out


def _view_taxes(order: Order) -> tuple[TaxLine, ...]:
    if order.tax_lines:
        return order.tax_lines
    if not order.total_tax.amount:
        return ()
    return (TaxLine(title="Tax", amount=order.total_tax),)


def _view_discounts(order: Order) -> tuple[DiscountApplication, ...]:
    """What the mapping reads back from the rendered coupon lines (the first code carries
    the order's discount, as :func:`render_order` writes it)."""
    return tuple(
        DiscountApplication(
            type="coupon",
            code=code.lower(),
            value=order.total_discounts.amount if k == 0 else Decimal(0),
            value_type=DiscountValueType.FIXED_AMOUNT,
        )
        for k, code in enumerate(order.discount_codes)
    )


def render_refund(order: Order, refund: Refund, *, tz: dt.tzinfo, base: str) -> dict[str, Any]:
    """One refund as ``/orders/<id>/refunds`` and ``/refunds`` serve it (lines point at the
    order's lines through ``_refunded_item_id``; the order is in ``_links.up``)."""
    cur = order.currency
    by_id = {li.id: li for li in order.line_items}
    lines = []
    for k, rl in enumerate(refund.lines):
        li = by_id.get(rl.line_item_id)
        sub = rl.subtotal.amount if rl.subtotal is not None else Decimal(0)
        lines.append(
            {
                "id": int(refund.id) * 10 + k,
                "name": html.escape(li.title, quote=False) if li else "",
                "product_id": int(li.product_id) if li and li.product_id else 0,
                "variation_id": int(li.variant_id) if li and li.variant_id else 0,
                "quantity": -_number(rl.quantity),
                "tax_class": "",
                "subtotal": "-" + _money(sub, cur),
                "subtotal_tax": _money(Decimal(0), cur),
                "total": "-" + _money(sub, cur),
                "total_tax": _money(Decimal(0), cur),
                "taxes": [],
                "meta_data": [
                    {
                        "id": int(refund.id) * 10 + k,
                        "key": "_refunded_item_id",
                        "value": rl.line_item_id,
                    }
                ],
                "sku": (li.sku or "") if li else "",
                "price": -_number(sub / rl.quantity if rl.quantity else sub),
                "refund_total": _number(sub),
            }
        )
    return {
        "id": int(refund.id),
        **_dates("date_created", refund.created_at, tz),
        "amount": _money(refund.amount),
        "reason": refund.note or "",
        "refunded_by": 1,
        "refunded_payment": True,
        "meta_data": [],
        "line_items": lines,
        "shipping_lines": [],
        "tax_lines": [],
        "fee_lines": [],
        "_links": _links(base, f"orders/{order.id}/refunds/{refund.id}", f"orders/{order.id}"),
    }


def render_refunds(order: Order, *, tz: dt.tzinfo, base: str) -> list[dict[str, Any]]:
    """``GET /orders/<id>/refunds``, newest first."""
    newest_first = sorted(order.refunds, key=lambda r: (r.created_at, int(r.id)), reverse=True)
    return [render_refund(order, refund, tz=tz, base=base) for refund in newest_first]
