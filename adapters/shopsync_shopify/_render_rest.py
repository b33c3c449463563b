"""Shared models -> Shopify REST and webhook bodies (``customers/update``, ``orders/create``,
``refunds/create``, ``fulfillments/create``...), in the shape of the REST Admin API
(https://shopify.dev/docs/api/admin-rest) and the webhook samples in ``tests/fixtures/shopify``.
Timestamps carry the shop's UTC offset, as REST bodies do. Re-exported by :mod:`._render`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shopsync.models import (
    Address,
    ConsentState,
    Customer,
    Fulfillment,
    LineItem,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
    Product,
    Refund,
)
from shopsync_shopify._checkouts import emulated_token, recovery_segment
from shopsync_shopify._emu_edits import ShopifyTotals, shopify_totals
from shopsync_shopify._render_base import (
    _CORRUPT_AMOUNT,
    _CORRUPT_DATE,
    _REST_FULFILLMENT,
    _financial_gql,
    _rest_set,
    fmt_amount,
    fmt_time,
)
from shopsync_shopify.mapping import gid

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = ["customer_rest", "fulfillment_rest", "order_rest", "product_rest", "refund_rest"]


def _address_rest(
    address: Address | None, *, customer_id: str | None = None
) -> dict[str, Any] | None:
    if address is None:
        return None
    out: dict[str, Any] = {
        "first_name": address.first_name,
        "address1": address.address1,
        "phone": address.phone,
        "city": address.city,
        "zip": address.zip,
        "province": address.province,
        "country": address.country_code,
        "last_name": address.last_name,
        "address2": address.address2,
        "company": address.company,
        "latitude": None,
        "longitude": None,
        "name": " ".join(p for p in (address.first_name, address.last_name) if p),
        "country_code": address.country_code,
        "province_code": None,
    }
    if customer_id is not None:
        out.update(
            {
                "id": int(customer_id) if customer_id.isdigit() else customer_id,
                "customer_id": int(customer_id) if customer_id.isdigit() else customer_id,
                "country_name": address.country_code,
                "default": True,
            }
        )
        del out["latitude"], out["longitude"]
    return out


def _consent_rest(consent: MarketingConsent, *, sms: bool) -> dict[str, Any] | None:
    if consent == MarketingConsent():
        return None
    state = consent.state.value if consent.state is not ConsentState.UNKNOWN else "invalid"
    out = {
        "state": state,
        "opt_in_level": None
        if consent.opt_in_level is OptInLevel.UNKNOWN
        else consent.opt_in_level.value,
        "consent_updated_at": fmt_time(consent.updated_at, rest=True),
    }
    if sms:
        out["consent_collected_from"] = "OTHER"
    return out


def _num(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def customer_rest(
    customer: Customer,
    state: ShopState | None = None,
    *,
    metafield_namespaces: tuple[str, ...] = (),
    currency: str | None = None,
) -> dict[str, Any]:
    corrupt = state is not None and state.faults.corrupt("customers", customer.id)
    address = _address_rest(customer.default_address, customer_id=customer.id)
    code = (
        (customer.total_spent.currency if customer.total_spent else None)
        or currency
        or (state.currency if state is not None else "USD")
    )
    out: dict[str, Any] = {
        "id": _num(customer.id),
        "email": customer.email,
        "created_at": _CORRUPT_DATE if corrupt else fmt_time(customer.created_at, rest=True),
        "updated_at": fmt_time(customer.updated_at, rest=True),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "orders_count": customer.orders_count,
        "state": "enabled" if customer.email else "disabled",
        "total_spent": fmt_amount(customer.total_spent),
        "last_order_id": None,
        "note": None,
        "verified_email": customer.email is not None,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": ", ".join(customer.tags),
        "last_order_name": None,
        "currency": code,
        "phone": customer.phone,
        "addresses": [address] if address else [],
        "tax_exemptions": [],
        "email_marketing_consent": _consent_rest(customer.consent.email, sms=False),
        "sms_marketing_consent": _consent_rest(customer.consent.sms, sms=True),
        "admin_graphql_api_id": gid("Customer", customer.id),
        "default_address": address,
    }
    if "facts" in metafield_namespaces and customer.birthday is not None:
        out["metafields"] = [
            {
                "id": _num(customer.id),
                "namespace": "facts",
                "key": "birth_date",
                "value": customer.birthday.isoformat(),
                "type": "date",
                "owner_id": _num(customer.id),
                "owner_resource": "customer",
            }
        ]
    return out


def _line_rest(
    line: LineItem,
    currency: str,
    quantity: int | None = None,
    shown: ShopifyTotals | None = None,
) -> dict[str, Any]:
    discount = line.total_discount or Money.zero(currency)
    ordered = int(line.quantity)
    if shown is not None:  # an edited line shows what was ordered (._emu_edits)
        ordered, discount = shown.quantities[line.id], shown.line_discounts[line.id]
    allocations = []
    if discount.amount:
        allocations.append(
            {
                "amount": fmt_amount(discount),
                "amount_set": _rest_set(discount, currency),
                "discount_application_index": 0,
            }
        )
    current = int(line.quantity - line.refunded_quantity)  # Shopify quantities are Int
    return {
        "id": _num(line.id),
        "admin_graphql_api_id": gid("LineItem", line.id),
        "attributed_staffs": [],
        "current_quantity": current,
        "fulfillable_quantity": current,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 0,
        "name": line.title,
        "price": fmt_amount(line.unit_price),
        "price_set": _rest_set(line.unit_price, currency),
        "product_exists": line.product_id is not None,
        "product_id": _num(line.product_id) if line.product_id else None,
        "properties": [],
        "quantity": ordered if quantity is None else int(quantity),
        "requires_shipping": True,
        "sku": line.sku,
        "taxable": True,
        "title": line.title,
        "total_discount": fmt_amount(discount),
        "total_discount_set": _rest_set(discount, currency),
        "variant_id": _num(line.variant_id) if line.variant_id else None,
        "variant_inventory_management": "shopify",
        "variant_title": None,
        "vendor": None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": allocations,
    }


def refund_rest(refund: Refund, order: Order) -> dict[str, Any]:
    cur = order.currency
    by_id = {li.id: li for li in order.line_items}
    transactions: list[dict[str, Any]] = []
    if refund.amount.amount:
        transactions.append(
            {
                "id": _num(f"{refund.id}1"),
                "admin_graphql_api_id": gid("OrderTransaction", f"{refund.id}1"),
                "amount": fmt_amount(refund.amount),
                "authorization": None,
                "created_at": fmt_time(refund.created_at, rest=True),
                "currency": cur,
                "device_id": None,
                "error_code": None,
                "gateway": "bogus",
                "kind": "refund",
                "location_id": None,
                "message": None,
                "order_id": _num(order.id),
                "parent_id": None,
                "payment_id": f"{order.name or order.id}.{refund.id}",
                "processed_at": fmt_time(refund.created_at, rest=True),
                "receipt": {},
                "source_name": "web",
                "status": "success",
                "test": False,
                "user_id": None,
            }
        )
    zero_set = _rest_set(None, cur)
    return {
        "id": _num(refund.id),
        "admin_graphql_api_id": gid("Refund", refund.id),
        "created_at": fmt_time(refund.created_at, rest=True),
        "note": refund.note,
        "order_id": _num(order.id),
        "processed_at": fmt_time(refund.created_at, rest=True),
        "restock": bool(refund.lines),
        "total_additional_fees_set": zero_set,
        "total_duties_set": zero_set,
        "user_id": None,
        "order_adjustments": [],
        "transactions": transactions,
        "refund_line_items": [
            {
                "id": _num(f"{refund.id}{j:03d}"),
                "line_item_id": _num(rl.line_item_id),
                "location_id": None,
                "quantity": int(rl.quantity),
                "restock_type": "return",
                # Shopify sends this one amount as a JSON number; the *_set twin is exact.
                "subtotal": float(rl.subtotal.amount) if rl.subtotal is not None else 0.0,
                "subtotal_set": _rest_set(rl.subtotal, cur),
                "total_tax": 0.0,
                "total_tax_set": zero_set,
                "line_item": _line_rest(by_id[rl.line_item_id], cur)
                if rl.line_item_id in by_id
                else None,
            }
            for j, rl in enumerate(refund.lines)
        ],
        "duties": [],
        "additional_fees": [],
    }


def fulfillment_rest(f: Fulfillment, order: Order, index: int = 1) -> dict[str, Any]:
    by_id = {li.id: li for li in order.line_items}
    return {
        "id": _num(f.id),
        "admin_graphql_api_id": gid("Fulfillment", f.id),
        "created_at": fmt_time(f.created_at, rest=True),
        "location_id": None,
        "name": f"{order.name or '#' + order.id}.{index}",
        "order_id": _num(order.id),
        "origin_address": {},
        "receipt": {"testcase": True, "authorization": f"auth-{f.id}"},
        "service": "manual",
        "shipment_status": "delivered" if f.delivered_at else None,
        "status": f.status,
        "tracking_company": f.tracking_company,
        "tracking_number": f.tracking_numbers[0] if f.tracking_numbers else None,
        "tracking_numbers": list(f.tracking_numbers),
        "tracking_url": f.tracking_urls[0] if f.tracking_urls else None,
        "tracking_urls": list(f.tracking_urls),
        "updated_at": fmt_time(f.delivered_at or f.created_at, rest=True),
        "line_items": [
            _line_rest(by_id[fl.line_item_id], order.currency, int(fl.quantity))
            for fl in f.lines
            if fl.line_item_id in by_id
        ],
    }


def _checkout_tokens(order: Order, state: ShopState | None) -> tuple[str | None, str | None]:
    """The token and cart token of the checkout the order was placed from (None: from none
    the emulator holds, e.g. a draft order or a POS sale). Real order bodies carry both:
    ``checkout_token`` is the checkout's ``token``, ``cart_token`` the one its recovery link
    names (``shopsync_shopify._checkouts``)."""
    cid = state.order_checkouts.get(order.id) if state is not None else None
    checkout = state.checkouts.get(cid) if state is not None and cid is not None else None
    if checkout is None:
        return None, None
    return emulated_token(checkout), recovery_segment(checkout.recovery_url)


def order_rest(order: Order, state: ShopState | None = None) -> dict[str, Any]:
    cur = order.currency
    corrupt = state is not None and state.faults.corrupt("orders", order.id)
    customer = None
    if order.customer_id is not None:
        found = state.customers.get(order.customer_id) if state is not None else None
        if found is not None:
            customer = customer_rest(found, None, currency=cur)
            for key in (
                "orders_count",
                "total_spent",
                "last_order_id",
                "last_order_name",
                "addresses",
            ):
                customer.pop(key, None)  # removed from order.customer since 2022-10
        else:
            customer = {
                "id": _num(order.customer_id),
                "admin_graphql_api_id": gid("Customer", order.customer_id),
            }
    shown = shopify_totals(order, state)
    line_total = sum(
        (li.unit_price.amount * shown.quantities[li.id] for li in order.line_items), Decimal(0)
    )
    total_price = _CORRUPT_AMOUNT if corrupt else fmt_amount(shown.total)
    money_keys = {
        "subtotal_price": shown.subtotal,
        "total_discounts": shown.discounts,
        "total_line_items_price": Money(amount=line_total, currency=cur),
        "total_tax": shown.tax,
        "current_subtotal_price": shown.current_subtotal,
        "current_total_discounts": shown.current_discounts,
        "current_total_tax": shown.current_tax,
    }
    current_total = shown.current_total
    checkout_token, cart_token = _checkout_tokens(order, state)
    out: dict[str, Any] = {
        "id": _num(order.id),
        "admin_graphql_api_id": gid("Order", order.id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": order.cancel_reason,
        "cancelled_at": fmt_time(order.cancelled_at, rest=True),
        "cart_token": cart_token,
        # no ``checkout_id`` since 2026-04, ``checkout_token`` names the checkout
        # (https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks)
        "checkout_token": checkout_token,
        "client_details": None,
        "closed_at": fmt_time(order.closed_at, rest=True),
        "confirmation_number": None,
        "confirmed": True,
        "contact_email": order.email,
        "created_at": fmt_time(order.created_at, rest=True),
        "currency": cur,
        "current_total_price": fmt_amount(current_total),
        "current_total_price_set": _rest_set(current_total, cur),
        "customer_locale": None,
        "device_id": None,
        "discount_codes": [
            {
                "code": code,
                "amount": fmt_amount(order.total_discounts if i == 0 else Money.zero(cur)),
                "type": "fixed_amount",
            }
            for i, code in enumerate(order.discount_codes)
        ],
        "email": order.email,
        "estimated_taxes": False,
        "financial_status": _financial_gql(order).lower(),
        "fulfillment_status": _REST_FULFILLMENT[order.fulfillment_status],
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "name": order.name,
        "note": None,
        "note_attributes": [],
        "number": _num(order.id) if order.id.isdigit() else 0,
        "order_number": _num(order.id) if order.id.isdigit() else 0,
        "payment_gateway_names": ["bogus"],
        "phone": None,
        "presentment_currency": cur,
        "processed_at": fmt_time(order.processed_at, rest=True),
        "reference": None,
        "referring_site": None,
        "source_identifier": None,
        "source_name": order.source,
        "source_url": None,
        "tags": ", ".join(order.tags),
        "tax_exempt": False,
        "tax_lines": [
            {
                "price": fmt_amount(t.amount),
                "rate": None if t.rate is None else float(t.rate),
                "title": t.title,
                "price_set": _rest_set(t.amount, cur),
                "channel_liable": None,
            }
            for t in order.tax_lines
        ],
        "taxes_included": bool(order.taxes_included),
        "test": order.test,
        "token": f"{order.id:0>32}"[-32:],
        "total_price": total_price,
        "total_price_set": _rest_set(shown.total, cur),
        "total_shipping_price_set": _rest_set(order.total_shipping, cur),
        "total_outstanding": "0.00",
        "total_tip_received": fmt_amount(order.total_tip) if order.total_tip else "0.00",
        "current_total_duties_set": (
            _rest_set(order.total_duties, cur) if order.total_duties else None
        ),
        "total_weight": 0,
        "updated_at": fmt_time(order.updated_at, rest=True),
        "user_id": None,
        "billing_address": _address_rest(order.billing_address),
        "customer": customer,
        "discount_applications": [
            {
                "target_type": "line_item",
                "type": d.type,
                "value": str(d.value),
                "value_type": d.value_type.value,
                "allocation_method": d.allocation or "across",
                "target_selection": "all",
                **({"code": d.code} if d.code else {}),
                **({"title": d.title, "description": d.title} if d.title else {}),
            }
            for d in order.discount_applications
        ],
        "fulfillments": [
            fulfillment_rest(f, order, i + 1) for i, f in enumerate(order.fulfillments)
        ],
        "line_items": [_line_rest(li, cur, shown=shown) for li in order.line_items],
        "payment_terms": None,
        "refunds": [refund_rest(r, order) for r in order.refunds],
        "shipping_address": _address_rest(order.shipping_address),
        "shipping_lines": [
            {
                "id": _num(f"{order.id}9"),
                "code": "Standard",
                "discounted_price": fmt_amount(order.total_shipping),
                "price": fmt_amount(order.total_shipping),
                "price_set": _rest_set(order.total_shipping, cur),
                "source": "shopify",
                "title": "Standard",
                "tax_lines": [],
            }
        ]
        if order.total_shipping.amount
        else [],
    }
    for key, money in money_keys.items():
        out[key] = fmt_amount(money)
        out[f"{key}_set"] = _rest_set(money, cur)
    if corrupt:
        out["total_price_set"]["shop_money"]["amount"] = _CORRUPT_AMOUNT
    return dict(sorted(out.items()))


def product_rest(product: Product, state: ShopState | None = None) -> dict[str, Any]:
    return {
        "id": _num(product.id),
        "title": product.title,
        "body_html": None,
        "vendor": product.vendor,
        "product_type": product.product_type or "",
        "created_at": fmt_time(product.created_at, rest=True),
        "handle": product.title.lower().replace(" ", "-"),
        "updated_at": fmt_time(product.updated_at, rest=True),
        "published_at": fmt_time(product.created_at, rest=True),
        "template_suffix": None,
        "published_scope": "web",
        "tags": ", ".join(product.tags),
        "status": product.status or "active",
        "admin_graphql_api_id": gid("Product", product.id),
        "variants": [
            {
                "id": _num(v.id),
                "product_id": _num(product.id),
                "title": v.title,
                "price": fmt_amount(v.price) if v.price is not None else None,
                "sku": v.sku,
                "admin_graphql_api_id": gid("ProductVariant", v.id),
            }
            for v in product.variants
        ],
        "options": [],
        "images": [],
        "image": None,
    }
