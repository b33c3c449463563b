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

Customers, products, variations and coupons are rendered here; orders and refunds in
:mod:`._render_orders`, the shared helpers in :mod:`._render_base`, both re-exported here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from shopsync.models import Address, Customer, Money, Order, Product
from shopsync_woocommerce._render_base import (
    CORRUPT_DATE,
    WC_PRODUCT_STATUS,
    _address,
    _dates,
    _links,
    _meta,
    _money,
    wc_date,
)
from shopsync_woocommerce._render_orders import (
    _view_discounts,
    _view_taxes,
    render_order,
    render_refund,
    render_refunds,
    wc_status,
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
