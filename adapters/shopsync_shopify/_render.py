"""Shared models -> Shopify wire JSON: GraphQL node dicts and REST/webhook bodies.

This is the emulator's half of the round trip (the adapter's half is :mod:`.mapping`):
every field the mapping reads is rendered here in the shape real Shopify uses (checked
against the payloads in ``tests/fixtures/shopify``), and ``mapping(render(model)) == model``
for every model Shopify can express. What it cannot express, and so what the round trip
normalises (see :func:`expressible`): a payment time on the order (``paid_at`` reads as
``processed_at`` once captured), a line item's product type, a ``cancelled`` payment
state, a line discount Shopify would not know (``None``), and ``on_hold`` in REST.

GraphQL dicts hold every field we serve, connections as plain lists; a value may be a
callable taking the field's arguments (``metafield(namespace:, key:)``) or nothing (lazy
sub-objects such as an order's customer), which the executor calls on demand.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    ConsentState,
    Customer,
    DiscountApplication,
    DiscountValueType,
    FinancialStatus,
    Fulfillment,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
    Product,
    Refund,
)
from shopsync_shopify._emu_edits import ShopifyTotals, shopify_totals
from shopsync_shopify.mapping import gid

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = [
    "customer_graphql",
    "customer_rest",
    "expressible",
    "fmt_time",
    "fulfillment_rest",
    "order_graphql",
    "order_rest",
    "product_graphql",
    "product_rest",
    "refund_rest",
]

_CORRUPT_DATE = "not-a-date"
_CORRUPT_AMOUNT = "abc"

_REST_FULFILLMENT = {
    FulfillmentStatus.UNFULFILLED: None,
    FulfillmentStatus.PARTIALLY_FULFILLED: "partial",
    FulfillmentStatus.FULFILLED: "fulfilled",
    FulfillmentStatus.RESTOCKED: "restocked",
    FulfillmentStatus.ON_HOLD: None,
}
_CAPTURED = {
    FinancialStatus.PAID,
    FinancialStatus.PARTIALLY_PAID,
    FinancialStatus.PARTIALLY_REFUNDED,
    FinancialStatus.REFUNDED,
}


def fmt_time(value: dt.datetime | None, *, rest: bool = False) -> str | None:
    """Shopify's timestamp text; fractional seconds only when the model has them (the
    emulator's clock ticks in microseconds, real Shopify in whole seconds)."""
    if value is None:
        return None
    value = value.astimezone(dt.timezone.utc)
    spec = "seconds" if value.microsecond == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    return text if rest else text.replace("+00:00", "Z")


def fmt_amount(money: Money | Decimal | None) -> str | None:
    """A decimal string at the currency's precision (``"199.00"``), more digits if needed."""
    if money is None:
        return None
    amount, currency = (money.amount, money.currency) if isinstance(money, Money) else (money, None)
    if currency is not None:
        step = Decimal(1).scaleb(-EXPONENTS[currency])
        if amount == amount.quantize(step):
            amount = amount.quantize(step)
    return format(amount, "f")


def _bag(money: Money | None, currency: str) -> dict[str, Any]:
    money = money if money is not None else Money.zero(currency)
    inner = {"amount": fmt_amount(money), "currencyCode": money.currency}
    return {"shopMoney": inner, "presentmentMoney": dict(inner)}


def _rest_set(money: Money | None, currency: str) -> dict[str, Any]:
    money = money if money is not None else Money.zero(currency)
    inner = {"amount": fmt_amount(money), "currency_code": money.currency}
    return {"shop_money": inner, "presentment_money": dict(inner)}


def _collection_id(title: str) -> str:
    return str(zlib.crc32(title.encode()) or 1)


_DISCOUNT_GQL = {
    "discount_code": "DiscountCodeApplication",
    "automatic": "AutomaticDiscountApplication",
    "script": "ScriptDiscountApplication",
}


def _discount_gql(d: DiscountApplication, cur: str) -> dict[str, Any]:
    value: dict[str, Any] = (
        {"__typename": "PricingPercentageValue", "percentage": float(d.value)}
        if d.value_type is DiscountValueType.PERCENTAGE
        else {"__typename": "MoneyV2", "amount": str(d.value), "currencyCode": cur}
    )
    return {
        "__typename": _DISCOUNT_GQL.get(d.type, "ManualDiscountApplication"),
        "allocationMethod": (d.allocation or "across").upper(),
        "targetSelection": "ALL",
        "targetType": "LINE_ITEM",
        "index": 0,
        "value": value,
        "code": d.code,
        "title": d.title,
    }


def expressible(model: Any) -> Any:
    """``model`` reduced to what Shopify's order/customer payloads can carry.

    The round-trip tests compare ``mapping(render(m))`` with ``expressible(m)``; for most
    models the two are the same object.
    """
    if not isinstance(model, Order):
        return model
    update: dict[str, Any] = {}
    paid_at = model.processed_at if model.financial_status in _CAPTURED else None
    if model.paid_at != paid_at:
        update["paid_at"] = paid_at
    if model.financial_status is FinancialStatus.CANCELLED:
        update["financial_status"] = FinancialStatus.VOIDED
    if model.taxes_included is None:  # Shopify always says
        update["taxes_included"] = False
    if model.total_tip is not None and model.total_tip.amount == 0:  # no tip
        update["total_tip"] = None
    lines = []
    for line in model.line_items:
        changes: dict[str, Any] = {}
        if line.product_type is not None:
            changes["product_type"] = None
        if line.total_discount is None:
            changes["total_discount"] = Money.zero(line.unit_price.currency)
        lines.append(line.model_copy(update=changes) if changes else line)
    if lines != list(model.line_items):
        update["line_items"] = tuple(lines)
    return model.model_copy(update=update) if update else model


# ----------------------------------------------------------------------------- GraphQL


def _address_gql(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    name = " ".join(p for p in (address.first_name, address.last_name) if p) or None
    return {
        "firstName": address.first_name,
        "lastName": address.last_name,
        "name": name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "province": address.province,
        "zip": address.zip,
        "countryCodeV2": address.country_code,
        "countryCode": address.country_code,
        "phone": address.phone,
    }


def _consent_gql(consent: MarketingConsent, *, sms: bool) -> dict[str, Any] | None:
    if consent == MarketingConsent():
        return None
    state = consent.state.value.upper() if consent.state is not ConsentState.UNKNOWN else "INVALID"
    out = {
        "marketingState": state,
        "marketingOptInLevel": consent.opt_in_level.value.upper(),
        "consentUpdatedAt": fmt_time(consent.updated_at),
    }
    if sms:
        out["consentCollectedFrom"] = "OTHER"
    return out


def customer_graphql(customer: Customer, state: ShopState | None = None) -> dict[str, Any]:
    corrupt = state is not None and state.faults.corrupt("customers", customer.id)
    birthday = customer.birthday.isoformat() if customer.birthday else None

    def metafield(args: Mapping[str, Any]) -> dict[str, Any] | None:
        if birthday and args.get("namespace") == "facts" and args.get("key") == "birth_date":
            return {
                "id": gid("Metafield", customer.id),
                "namespace": "facts",
                "key": "birth_date",
                "value": birthday,
                "type": "date",
            }
        return None

    spent = customer.total_spent
    name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
    return {
        "__typename": "Customer",
        "id": gid("Customer", customer.id),
        "legacyResourceId": customer.id,
        "email": customer.email,
        "phone": customer.phone,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "displayName": name or customer.email or customer.phone or "",
        "createdAt": _CORRUPT_DATE if corrupt else fmt_time(customer.created_at),
        "updatedAt": fmt_time(customer.updated_at),
        "tags": list(customer.tags),
        "state": "ENABLED" if customer.email else "DISABLED",
        "verifiedEmail": customer.email is not None,
        "emailMarketingConsent": _consent_gql(customer.consent.email, sms=False),
        "smsMarketingConsent": _consent_gql(customer.consent.sms, sms=True),
        "defaultAddress": _address_gql(customer.default_address),
        "numberOfOrders": None if customer.orders_count is None else str(customer.orders_count),
        "amountSpent": None
        if spent is None
        else {"amount": fmt_amount(spent), "currencyCode": spent.currency},
        "metafield": metafield,
    }


def _line_gql(
    line: LineItem, currency: str, state: ShopState | None, shown: ShopifyTotals | None = None
) -> dict[str, Any]:
    discount = line.total_discount or Money.zero(currency)
    ordered = int(line.quantity)
    if shown is not None:  # an edited line shows what was ordered (._emu_edits)
        ordered, discount = shown.quantities[line.id], shown.line_discounts[line.id]
    original_total = Money(amount=line.unit_price.amount * ordered, currency=currency)

    def product(_args: Any = None) -> dict[str, Any] | None:
        if line.product_id is None:
            return None
        found = state.products.get(line.product_id) if state is not None else None
        if found is not None:
            return product_graphql(found, state)
        return {"__typename": "Product", "id": gid("Product", line.product_id)}

    variant = None
    if line.variant_id is not None:
        variant = {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", line.variant_id),
            "sku": line.sku,
        }
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", line.id),
        "title": line.title,
        "name": line.title,
        "sku": line.sku,
        "quantity": ordered,
        "currentQuantity": int(line.quantity - line.refunded_quantity),
        "refundableQuantity": int(line.quantity - line.refunded_quantity),
        "product": product,
        "variant": variant,
        "originalUnitPriceSet": _bag(line.unit_price, currency),
        "originalTotalSet": _bag(original_total, currency),
        "totalDiscountSet": _bag(discount, currency),
        "discountedTotalSet": _bag(line.total, currency),
    }


def _refund_gql(refund: Refund, currency: str, lines: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "Refund",
        "id": gid("Refund", refund.id),
        "legacyResourceId": refund.id,
        "createdAt": fmt_time(refund.created_at),
        "note": refund.note,
        "totalRefundedSet": _bag(refund.amount, currency),
        "refundLineItems": [
            {
                "__typename": "RefundLineItem",
                "id": gid("RefundLineItem", f"{refund.id}{j:03d}"),
                "lineItem": lines.get(rl.line_item_id)
                or {"__typename": "LineItem", "id": gid("LineItem", rl.line_item_id)},
                "quantity": int(rl.quantity),
                "subtotalSet": _bag(rl.subtotal, currency),
                "totalTaxSet": _bag(None, currency),  # the emulator's refunds carry no tax
            }
            for j, rl in enumerate(refund.lines)
        ],
    }


def _fulfillment_gql(f: Fulfillment, lines: Mapping[str, Any]) -> dict[str, Any]:
    numbers, urls = list(f.tracking_numbers), list(f.tracking_urls)
    count = max(len(numbers), len(urls), 1 if f.tracking_company else 0)
    tracking = [
        {
            "company": f.tracking_company,
            "number": numbers[i] if i < len(numbers) else None,
            "url": urls[i] if i < len(urls) else None,
        }
        for i in range(count)
    ]
    return {
        "__typename": "Fulfillment",
        "id": gid("Fulfillment", f.id),
        "legacyResourceId": f.id,
        "createdAt": fmt_time(f.created_at),
        "updatedAt": fmt_time(f.delivered_at or f.created_at),
        "deliveredAt": fmt_time(f.delivered_at),
        "status": f.status.upper(),
        "displayStatus": "DELIVERED" if f.delivered_at else "FULFILLED",
        "trackingInfo": tracking,
        "fulfillmentLineItems": [
            {
                "__typename": "FulfillmentLineItem",
                "id": gid("FulfillmentLineItem", f"{f.id}{j:03d}"),
                "lineItem": lines.get(fl.line_item_id)
                or {"__typename": "LineItem", "id": gid("LineItem", fl.line_item_id)},
                "quantity": int(fl.quantity),
            }
            for j, fl in enumerate(f.lines)
        ],
    }


def _financial_gql(order: Order) -> str:
    status = order.financial_status
    if status is FinancialStatus.CANCELLED:
        status = FinancialStatus.VOIDED
    return status.value.upper()


def order_graphql(order: Order, state: ShopState | None = None) -> dict[str, Any]:
    cur = order.currency
    corrupt = state is not None and state.faults.corrupt("orders", order.id)
    shown = shopify_totals(order, state)
    lines = [_line_gql(li, cur, state, shown) for li in order.line_items]
    by_id = {li.id: rendered for li, rendered in zip(order.line_items, lines, strict=False)}

    def customer(_args: Any = None) -> dict[str, Any] | None:
        if order.customer_id is None:
            return None
        found = state.customers.get(order.customer_id) if state is not None else None
        if found is not None:
            return customer_graphql(found, None)
        return {"__typename": "Customer", "id": gid("Customer", order.customer_id)}

    captured = order.financial_status in _CAPTURED
    transactions = []
    if captured and order.processed_at is not None:
        transactions.append(
            {
                "__typename": "OrderTransaction",
                "id": gid("OrderTransaction", f"{order.id}001"),
                "kind": "SALE",
                "status": "SUCCESS",
                "processedAt": fmt_time(order.processed_at),
                "amountSet": _bag(order.total, cur),
            }
        )
    total = _bag(shown.total, cur)
    if corrupt:
        total["shopMoney"]["amount"] = _CORRUPT_AMOUNT
    return {
        "__typename": "Order",
        "id": gid("Order", order.id),
        "legacyResourceId": order.id,
        "name": order.name,
        "email": order.email,
        "phone": None,
        "createdAt": fmt_time(order.created_at),
        "updatedAt": fmt_time(order.updated_at),
        "processedAt": fmt_time(order.processed_at),
        "cancelledAt": fmt_time(order.cancelled_at),
        "closedAt": fmt_time(order.closed_at),
        "cancelReason": order.cancel_reason.upper() if order.cancel_reason else None,
        "closed": order.closed_at is not None,
        "displayFinancialStatus": _financial_gql(order),
        "displayFulfillmentStatus": order.fulfillment_status.value.upper(),
        "currencyCode": cur,
        "presentmentCurrencyCode": cur,
        "subtotalPriceSet": _bag(shown.subtotal, cur),
        "totalDiscountsSet": _bag(shown.discounts, cur),
        "totalShippingPriceSet": _bag(order.total_shipping, cur),
        "totalTaxSet": _bag(shown.tax, cur),
        "totalPriceSet": total,
        "totalRefundedSet": _bag(order.total_refunded, cur),
        "edited": shown.edited,
        "currentTotalPriceSet": _bag(shown.current_total, cur),
        "currentSubtotalPriceSet": _bag(shown.current_subtotal, cur),
        "currentTotalTaxSet": _bag(shown.current_tax, cur),
        "currentTotalDiscountsSet": _bag(shown.current_discounts, cur),
        "discountCodes": list(order.discount_codes),
        "sourceName": order.source,
        "tags": list(order.tags),
        "test": order.test,
        "taxesIncluded": bool(order.taxes_included),
        "totalTipReceivedSet": _bag(order.total_tip or Money.zero(cur), cur),
        "currentTotalDutiesSet": _bag(order.total_duties, cur) if order.total_duties else None,
        "taxLines": [
            {
                "__typename": "TaxLine",
                "title": t.title,
                "rate": None if t.rate is None else float(t.rate),
                "priceSet": _bag(t.amount, cur),
            }
            for t in order.tax_lines
        ],
        "discountApplications": [_discount_gql(d, cur) for d in order.discount_applications],
        "customer": customer,
        "billingAddress": _address_gql(order.billing_address),
        "shippingAddress": _address_gql(order.shipping_address),
        "lineItems": lines,
        "refunds": [_refund_gql(r, cur, by_id) for r in order.refunds],
        "fulfillments": [_fulfillment_gql(f, by_id) for f in order.fulfillments],
        "transactions": transactions,
    }


def product_graphql(product: Product, state: ShopState | None = None) -> dict[str, Any]:
    currency = state.currency if state is not None else "USD"
    corrupt = state is not None and state.faults.corrupt("products", product.id)
    return {
        "__typename": "Product",
        "id": gid("Product", product.id),
        "legacyResourceId": product.id,
        "title": product.title,
        "handle": product.title.lower().replace(" ", "-"),
        "productType": product.product_type or "",
        "vendor": product.vendor or "",
        "tags": list(product.tags),
        "status": (product.status or "active").upper(),
        "createdAt": _CORRUPT_DATE if corrupt else fmt_time(product.created_at),
        "updatedAt": fmt_time(product.updated_at),
        "variants": [
            {
                "__typename": "ProductVariant",
                "id": gid("ProductVariant", v.id),
                "sku": v.sku,
                "title": v.title,
                "price": fmt_amount(v.price) if v.price is not None else None,
            }
            for v in product.variants
        ],
        "collections": [
            {"__typename": "Collection", "id": gid("Collection", _collection_id(c)), "title": c}
            for c in product.categories
        ],
        "_currency": currency,
    }


# ----------------------------------------------------------------------------- REST


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
    out: dict[str, Any] = {
        "id": _num(order.id),
        "admin_graphql_api_id": gid("Order", order.id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": order.cancel_reason,
        "cancelled_at": fmt_time(order.cancelled_at, rest=True),
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": None,
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


Renderer = Callable[[Any, Any], dict[str, Any]]
