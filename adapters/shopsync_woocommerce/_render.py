"""Shared models -> WooCommerce REST (wc/v3) JSON, as a store would serve them.

The emulator serves what these functions return; :mod:`.mapping` reads it back.
:func:`woocommerce_view` says what a WooCommerce store keeps of a model, so that
``order_from_rest(render_order(m)) == woocommerce_view(m)`` for any model, and ``== m`` for
the models a generated WooCommerce shop holds once their datetimes are whole seconds.

What a WooCommerce store cannot keep (so :func:`woocommerce_view` drops it):

- sub-second time: every WooCommerce date is written to the second;
- ``Customer.orders_count`` / ``total_spent``: wc/v3 customers no longer carry them;
- marketing consent, unless a newsletter plugin records it (``consent_plugin``, see
  :mod:`.consent`; a plugin's checkbox keeps no date or opt-in level);
- a line's ``product_type`` (order items only know the product id) and a ``total_discount``
  of None (WooCommerce always says: line subtotal minus line total);
- ``Order.processed_at`` other than the creation time; ``cancelled_at`` other than the last
  modification of a cancelled order (core keeps no cancellation date);
- Shopify-only order facts: ``test``, ``cancel_reason``, ``total_tip``, ``total_duties``;
  ``taxes_included`` None reads back as False (``prices_include_tax`` is always there);
- tax lines beyond one ``Tax`` line of ``total_tax`` when the order names none; discount
  applications other than one ``coupon`` per code, the first carrying the whole discount;
- statuses outside the table in :mod:`.mapping` (``authorized`` becomes ``on-hold`` and reads
  back with fulfilment ``on_hold``; ``partially_paid`` reads back as ``pending``; ``restocked``
  as unfulfilled), and discount codes in upper case (WooCommerce lower-cases coupon codes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    Customer,
    DiscountApplication,
    DiscountValueType,
    FinancialStatus,
    Fulfillment,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Product,
    Refund,
    TaxLine,
)
from shopsync_woocommerce.consent import plugin_meta, plugin_view
from shopsync_woocommerce.mapping import META, PRODUCT_STATUSES, derive_statuses

__all__ = [
    "WC_PRODUCT_STATUS",
    "render_coupon",
    "render_customer",
    "render_order",
    "render_product",
    "render_refund",
    "render_refunds",
    "render_variations",
    "wc_date",
    "wc_status",
    "woocommerce_view",
]

M = TypeVar("M", bound=BaseModel)

WC_PRODUCT_STATUS = {"active": "publish", "draft": "draft", "archived": "private"}
"""Shared product status -> WooCommerce post status (the inverse of the mapping's table)."""

CORRUPT_DATE = "not-a-date"
CORRUPT_MONEY = "abc"


def wc_date(value: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """WooCommerce's date format: to the second, no offset (``2017-03-22T16:28:02``)."""
    if value is None:
        return None
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def _dates(key: str, value: dt.datetime | None, tz: dt.tzinfo) -> dict[str, str | None]:
    return {key: wc_date(value, tz), f"{key}_gmt": wc_date(value, dt.timezone.utc)}


def _money(value: Money | Decimal | None, currency: str | None = None) -> str:
    amount = value.amount if isinstance(value, Money) else (value or Decimal(0))
    code = value.currency if isinstance(value, Money) else currency
    places = EXPONENTS.get(code or "", 2)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        places = -exponent
    return f"{amount:.{places}f}"


def _number(amount: Decimal) -> int | float:
    """WooCommerce writes a line's ``price`` as a JSON number (a PHP float)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _links(base: str, path: str, up: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {
        "self": [{"href": f"{base}/wp-json/wc/v3/{path}"}],
        "collection": [{"href": f"{base}/wp-json/wc/v3/{path.rsplit('/', 1)[0]}"}],
    }
    if up:
        links["up"] = [{"href": f"{base}/wp-json/wc/v3/{up}"}]
    return links


def _address(
    address: Address | None, *, email: str | None = None, phone: bool = True
) -> dict[str, str]:
    a = address or Address()
    out = {
        "first_name": a.first_name or "",
        "last_name": a.last_name or "",
        "company": a.company or "",
        "address_1": a.address1 or "",
        "address_2": a.address2 or "",
        "city": a.city or "",
        "state": a.province or "",
        "postcode": a.zip or "",
        "country": a.country_code or "",
    }
    if email is not None:
        out["email"] = email
    if phone:
        out["phone"] = a.phone or ""
    return out


def _meta(pairs: Iterable[tuple[str, Any]], start: int) -> list[dict[str, Any]]:
    return [{"id": start + i, "key": k, "value": v} for i, (k, v) in enumerate(pairs)]


# --- customers ------------------------------------------------------------------------------


def render_customer(
    customer: Customer,
    *,
    tz: dt.tzinfo,
    base: str,
    corrupt: bool = False,
    consent_plugin: str | None = None,
) -> dict[str, Any]:
    """``GET /customers/<id>``: the account, its billing and shipping addresses, meta.

    Consent is rendered only as the meta of ``consent_plugin`` (:mod:`.consent`): a store
    without a newsletter plugin has none, WooCommerce core having no consent field.
    """
    meta: list[tuple[str, Any]] = []
    if customer.tags:
        meta.append((META["tags"], list(customer.tags)))
    if consent_plugin is not None:
        meta.extend(plugin_meta(customer.consent, consent_plugin))
    if customer.birthday is not None:
        meta.append((META["birthday"], customer.birthday.isoformat()))
    billing = _address(customer.default_address, email=customer.email or "")
    billing["phone"] = customer.phone or ""
    email = customer.email or ""
    digest = hashlib.md5(email.encode()).hexdigest()
    out: dict[str, Any] = {
        "id": int(customer.id),
        **_dates("date_created", customer.created_at, tz),
        **_dates("date_modified", customer.updated_at, tz),
        "email": email,
        "first_name": customer.first_name or "",
        "last_name": customer.last_name or "",
        "role": "customer",
        "username": email.split("@")[0] if email else f"customer{customer.id}",
        "billing": billing,
        "shipping": _address(customer.default_address),
        "is_paying_customer": bool(customer.orders_count),
        "avatar_url": f"https://secure.gravatar.com/avatar/{digest}?s=96&d=mm&r=g",
        "meta_data": _meta(meta, int(customer.id) % 100_000 * 10),
        "_links": _links(base, f"customers/{customer.id}"),
    }
    if corrupt:
        out["date_created_gmt"] = out["date_created"] = CORRUPT_DATE
    return out


# --- orders ---------------------------------------------------------------------------------


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


def render_order(
    order: Order, *, tz: dt.tzinfo, base: str, corrupt: bool = False
) -> dict[str, Any]:
    """``GET /orders/<id>``. Refunds appear as WooCommerce lists them: id, reason, -total."""
    cur = order.currency
    oid = int(order.id)
    meta: list[tuple[str, Any]] = []
    if order.tags:
        meta.append((META["tags"], list(order.tags)))
    if order.fulfillments:
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
        "line_items": [_line(li, cur) for li in order.line_items],
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
            for f in order.fee_lines
        ],
        "coupon_lines": coupon_lines,
        "refunds": [
            {"id": int(r.id), "reason": r.note or "", "total": "-" + _money(r.amount)}
            for r in sorted(order.refunds, key=lambda r: (r.created_at, int(r.id)), reverse=True)
        ],
        "payment_url": f"{base}/checkout/order-pay/{oid}/",
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


# --- products and coupons -------------------------------------------------------------------


def _terms(names: Iterable[str], kind: str) -> list[dict[str, Any]]:
    return [
        {
            "id": int(hashlib.sha1(f"{kind}:{n}".encode()).hexdigest()[:6], 16),
            "name": html.escape(n, quote=False),
            "slug": n.lower().replace(" ", "-"),
        }
        for n in names
    ]


def _categories(product: Product) -> list[str]:
    names = list(product.categories)
    if product.product_type:
        names = [product.product_type, *(n for n in names if n != product.product_type)]
    return names


def render_product(
    product: Product, *, tz: dt.tzinfo, base: str, currency: str, corrupt: bool = False
) -> dict[str, Any]:
    """``GET /products/<id>``: simple when it has no variants, else variable."""
    variable = bool(product.variants)
    prices = [v.price for v in product.variants if v.price is not None]
    price = _money(min(prices, key=lambda m: m.amount)) if prices else ""
    slug = product.title.lower().replace(" ", "-")
    out: dict[str, Any] = {
        "id": int(product.id),
        "name": html.escape(product.title, quote=False),
        "slug": slug,
        "permalink": f"{base}/product/{slug}/",
        **_dates("date_created", product.created_at, tz),
        **_dates("date_modified", product.updated_at, tz),
        "type": "variable" if variable else "simple",
        "status": WC_PRODUCT_STATUS.get(product.status or "active", product.status or "publish"),
        "featured": False,
        "catalog_visibility": "visible",
        "description": "",
        "short_description": "",
        "sku": "",
        "price": price,
        "regular_price": "" if variable else price,
        "sale_price": "",
        **_dates("date_on_sale_from", None, tz),
        **_dates("date_on_sale_to", None, tz),
        "price_html": "",
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": False,
        "stock_quantity": None,
        "stock_status": "instock",
        "backorders": "no",
        "backorders_allowed": False,
        "backordered": False,
        "sold_individually": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "related_ids": [],
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": _terms(_categories(product), "cat"),
        "brands": _terms([product.vendor] if product.vendor else [], "brand"),
        "tags": _terms(product.tags, "tag"),
        "images": [],
        "attributes": [
            {
                "id": 0,
                "name": "Option",
                "position": 0,
                "visible": True,
                "variation": True,
                "options": [v.title or v.id for v in product.variants],
            }
        ]
        if variable
        else [],
        "default_attributes": [],
        "variations": [int(v.id) for v in product.variants],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": _links(base, f"products/{product.id}"),
    }
    if corrupt:
        out["date_created_gmt"] = out["date_created"] = CORRUPT_DATE
    return out


def render_variations(product: Product, *, tz: dt.tzinfo, base: str) -> list[dict[str, Any]]:
    """``GET /products/<id>/variations``."""
    out = []
    for v in product.variants:
        price = _money(v.price) if v.price is not None else ""
        out.append(
            {
                "id": int(v.id),
                **_dates("date_created", product.created_at, tz),
                **_dates("date_modified", product.updated_at, tz),
                "description": "",
                "permalink": f"{base}/product/{product.id}/?variation={v.id}",
                "sku": v.sku or "",
                "price": price,
                "regular_price": price,
                "sale_price": "",
                "status": "publish",
                "purchasable": bool(price),
                "virtual": False,
                "downloadable": False,
                "tax_status": "taxable",
                "manage_stock": False,
                "stock_quantity": None,
                "stock_status": "instock",
                "attributes": [
                    {"id": 0, "name": "Option", "option": html.escape(v.title, quote=False)}
                ]
                if v.title
                else [],
                "menu_order": 0,
                "meta_data": [],
                "_links": _links(
                    base, f"products/{product.id}/variations/{v.id}", f"products/{product.id}"
                ),
            }
        )
    return out


def render_coupon(
    coupon_id: int, code: str, orders: list[Order], *, tz: dt.tzinfo, base: str
) -> dict[str, Any]:
    """A coupon as the orders that used it reveal it (percent off the first order's lines)."""
    first = min(orders, key=lambda o: (o.created_at, int(o.id)))
    gross = sum((li.unit_price.amount * li.quantity for li in first.line_items), Decimal(0))
    pct = (first.total_discounts.amount * 100 / gross).quantize(Decimal(1)) if gross else Decimal(0)
    used_by = sorted({o.customer_id or (o.email or "") for o in orders} - {""})
    return {
        "id": coupon_id,
        "code": code,
        "amount": f"{pct:.2f}",
        **_dates("date_created", first.created_at - dt.timedelta(days=1), tz),
        **_dates("date_modified", first.created_at - dt.timedelta(days=1), tz),
        "discount_type": "percent",
        "description": "",
        **_dates("date_expires", None, tz),
        "usage_count": len(orders),
        "individual_use": True,
        "product_ids": [],
        "excluded_product_ids": [],
        "usage_limit": None,
        "usage_limit_per_user": None,
        "limit_usage_to_x_items": None,
        "free_shipping": False,
        "product_categories": [],
        "excluded_product_categories": [],
        "exclude_sale_items": False,
        "minimum_amount": "0.00",
        "maximum_amount": "0.00",
        "email_restrictions": [],
        "used_by": used_by,
        "meta_data": [],
        "_links": _links(base, f"coupons/{coupon_id}"),
    }


# --- what a store keeps -----------------------------------------------------------------------


def _seconds(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0)
    if isinstance(value, BaseModel):
        return type(value).model_construct(
            **{k: _seconds(getattr(value, k)) for k in type(value).model_fields}
        )
    if isinstance(value, tuple):
        return tuple(_seconds(v) for v in value)
    return value


def _truncate(model: M) -> M:
    data = {k: _seconds(getattr(model, k)) for k in type(model).model_fields}
    return type(model).model_validate(data)


def woocommerce_view(model: M, consent_plugin: str | None = None) -> M:
    """What a WooCommerce store keeps of ``model`` (see the module docstring); its consent is
    what ``consent_plugin`` records (none without a plugin)."""
    if isinstance(model, Customer):
        address = model.default_address
        customer = model.model_copy(
            update={
                "consent": plugin_view(model.consent, consent_plugin),
                "orders_count": None,
                "total_spent": None,
                "default_address": None if address == Address() else address,
            }
        )
        return _truncate(customer)
    if isinstance(model, Order):
        lines = tuple(
            li.model_copy(
                update={
                    "product_type": None,
                    "total_discount": Money(
                        amount=li.unit_price.amount * li.quantity - li.total.amount,
                        currency=li.total.currency,
                    )
                    if li.unit_price.amount * li.quantity >= li.total.amount
                    else None,
                }
            )
            for li in model.line_items
        )
        order = _truncate(model.model_copy(update={"line_items": lines}))
        status = wc_status(order)
        financial, fulfillment = derive_statuses(
            status,
            paid=order.paid_at is not None,
            total=order.total.amount,
            refunded=sum((r.amount.amount for r in order.refunds), Decimal(0)),
            lines=[(li.id, li.quantity, li.refunded_quantity) for li in order.line_items],
            fulfillments=[
                (f.status, [(x.line_item_id, x.quantity) for x in f.lines])
                for f in order.fulfillments
            ],
        )
        update: dict[str, Any] = {
            "processed_at": order.created_at,
            "cancelled_at": order.updated_at if status == "cancelled" else None,
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "discount_codes": tuple(c.lower() for c in order.discount_codes),
            "billing_address": None
            if order.billing_address == Address()
            else order.billing_address,
            "shipping_address": None
            if order.shipping_address == Address()
            else order.shipping_address,
            "total_refunded": Money(
                amount=sum((r.amount.amount for r in order.refunds), Decimal(0)),
                currency=order.currency,
            ),
            "refunds": tuple(sorted(order.refunds, key=lambda r: (r.created_at, int(r.id)))),
            "taxes_included": bool(order.taxes_included),
            "tax_lines": _view_taxes(order),
            "discount_applications": _view_discounts(order),
            "refunds_complete": True,
            "fee_lines": tuple(
                f
                if f.total_tax is not None
                else f.model_copy(update={"total_tax": Money(amount=0, currency=f.total.currency)})
                for f in order.fee_lines
            ),
            "cancel_reason": None,
            "total_tip": None,
            "total_duties": None,
            "test": False,
        }
        return Order.model_validate({**dict(order), **update})  # type: ignore[return-value]
    if isinstance(model, Product):
        status = WC_PRODUCT_STATUS.get(model.status or "active", model.status or "publish")
        names = _categories(model)
        product = model.model_copy(
            update={
                "categories": tuple(names),
                "product_type": names[0] if names else None,
                "status": PRODUCT_STATUSES.get(status, status),
            }
        )
        return _truncate(product)
    return model
