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

The GraphQL renderers are here; the REST and webhook bodies are in :mod:`._render_rest` and
what both share in :mod:`._render_base`, re-exported here so ``_render`` stays the one name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shopsync.models import (
    Address,
    ConsentState,
    Customer,
    DiscountApplication,
    DiscountValueType,
    FinancialStatus,
    Fulfillment,
    LineItem,
    MarketingConsent,
    Money,
    Order,
    Product,
    Refund,
)
from shopsync_shopify._emu_edits import ShopifyTotals, shopify_totals
from shopsync_shopify._render_base import (
    _CAPTURED,
    _CORRUPT_AMOUNT,
    _CORRUPT_DATE,
    _bag,
    _collection_id,
    _financial_gql,
    fmt_amount,
    fmt_time,
)
from shopsync_shopify._render_rest import (
    _checkout_tokens,
    customer_rest,
    fulfillment_rest,
    order_rest,
    product_rest,
    refund_rest,
)
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
    # trackingInfo: [FulfillmentTrackingInfo!]! of {company, number, url}, one per number
    # (shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentTrackingInfo). Shopify
    # fills url itself only for a company named exactly as in its supported list
    # (FulfillmentTrackingInput.company); the state's URLs stand for that, and a fulfilment
    # created without one (another carrier, an app passing none) renders url null.
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
    # the REST checkout_token and cart_token, on the GraphQL Order since 2026-07:
    # https://shopify.dev/changelog/new-checkouttoken-field-added-to-the-order-object,
    # https://shopify.dev/changelog/new-field-carttoken-added-to-the-order-graphql-admin-api
    checkout_token, cart_token = _checkout_tokens(order, state)
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
        "checkoutToken": checkout_token,
        "cartToken": cart_token,
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


Renderer = Callable[[Any, Any], dict[str, Any]]
