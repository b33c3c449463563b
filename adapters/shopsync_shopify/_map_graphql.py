"""Shopify GraphQL nodes -> shared models (the rules are in :mod:`shopsync_shopify.mapping`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shopsync._money import share
from shopsync.adapter_kit import guarded
from shopsync.models import (
    Consent,
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    Money,
    Order,
    Product,
    Refund,
    RefundLine,
    Variant,
)
from shopsync_shopify import _order_facts as facts
from shopsync_shopify._map_common import (
    _CAPTURED,
    _FULFILLMENT,
    PLATFORM,
    _address,
    _blank,
    _consent,
    _Ctx,
    _enum,
    _financial,
    _nodes,
    _tags,
)

__all__ = ["customer_from_graphql", "order_from_graphql", "product_from_graphql"]


@guarded
def customer_from_graphql(node: Mapping[str, Any], *, shop: str) -> Customer:
    """A ``Customer`` node (as :data:`shopsync_shopify.queries.CUSTOMER_FIELDS` selects it)."""
    ctx = _Ctx(node)
    spent = node.get("amountSpent")
    total_spent = None
    if spent is not None:
        total_spent = ctx.money(
            ctx.get(spent, "amount", "amountSpent"),
            ctx.required(spent, "currencyCode", "amountSpent"),
            "amountSpent.amount",
        )
    count = node.get("numberOfOrders")
    birth = node.get("metafield")
    return ctx.build(
        Customer,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        email=node.get("email"),
        phone=node.get("phone"),
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
        created_at=ctx.timestamp_required(node.get("createdAt"), "createdAt"),
        updated_at=ctx.timestamp_required(node.get("updatedAt"), "updatedAt"),
        tags=_tags(node.get("tags")),
        consent=Consent(
            email=_consent(
                ctx, node.get("emailMarketingConsent"), "emailMarketingConsent", graphql=True
            ),
            sms=_consent(ctx, node.get("smsMarketingConsent"), "smsMarketingConsent", graphql=True),
        ),
        birthday=ctx.date(birth.get("value") if birth else None, "metafield.value"),
        default_address=_address(ctx, node.get("defaultAddress"), "defaultAddress", graphql=True),
        orders_count=None if count is None else ctx.int(count, "numberOfOrders"),
        total_spent=total_spent,
    )


def _line_gql(
    ctx: _Ctx,
    node: Any,
    currency: str,
    refunded: Mapping[str, Decimal],
    path: str,
    taxes_included: bool | None = None,
    rates: tuple[Decimal, ...] = (),
    ordered: dict[str, tuple[int, Money]] | None = None,
) -> LineItem:
    line_id = ctx.id(ctx.required(node, "id", path), f"{path}.id")
    count = ctx.int(ctx.required(node, "quantity", path), f"{path}.quantity")
    quantity = facts.current_quantity(
        ctx,
        count,
        node.get("currentQuantity"),
        int(refunded.get(line_id, 0)),
        f"{path}.currentQuantity",
    )
    unit = ctx.bag(node.get("originalUnitPriceSet"), currency, f"{path}.originalUnitPriceSet")
    discount = ctx.bag(node.get("totalDiscountSet"), currency, f"{path}.totalDiscountSet")
    if ordered is not None:
        ordered[line_id] = (count, discount)
    discount = share(discount, quantity, count)  # an edit's kept units (the module doc)
    product = node.get("product") or {}
    variant = node.get("variant") or {}
    tax, line_rates = facts.line_tax(
        ctx, node.get("taxLines"), currency, f"{path}.taxLines", graphql=True
    )
    unit, discount, total = facts.net_line(
        unit, quantity, discount, taxes_included, tax, line_rates or rates
    )
    return ctx.build(
        LineItem,
        path,
        id=line_id,
        product_id=ctx.opt_id(product.get("id"), f"{path}.product.id"),
        variant_id=ctx.opt_id(variant.get("id"), f"{path}.variant.id"),
        sku=_blank(node.get("sku")),
        title=node.get("title") or node.get("name") or "",
        product_type=None,
        quantity=quantity,
        unit_price=unit,
        total_discount=discount,
        total=total,
        refunded_quantity=refunded.get(line_id, 0),
    )


def _refund_gql(ctx: _Ctx, node: Any, currency: str, path: str) -> Refund:
    lines = []
    for j, item in enumerate(_nodes(node.get("refundLineItems"))):
        where = f"{path}.refundLineItems[{j}]"
        subtotal = item.get("subtotalSet")
        lines.append(
            RefundLine(
                line_item_id=ctx.id(
                    ctx.required(item.get("lineItem") or {}, "id", f"{where}.lineItem"),
                    f"{where}.lineItem.id",
                ),
                quantity=ctx.int(item.get("quantity"), f"{where}.quantity"),
                subtotal=None
                if subtotal is None
                else ctx.bag(subtotal, currency, f"{where}.subtotalSet"),
            )
        )
    return ctx.build(
        Refund,
        path,
        id=ctx.id(ctx.required(node, "id", path), f"{path}.id"),
        created_at=ctx.timestamp_required(node.get("createdAt"), f"{path}.createdAt"),
        amount=ctx.bag(node.get("totalRefundedSet"), currency, f"{path}.totalRefundedSet"),
        note=_blank(node.get("note")),
        lines=tuple(lines),
    )


def _fulfillment_gql(ctx: _Ctx, node: Any, path: str) -> Fulfillment:
    tracking = node.get("trackingInfo") or []
    company = next((t.get("company") for t in tracking if t.get("company")), None)
    lines = tuple(
        FulfillmentLine(
            line_item_id=ctx.id(
                ctx.required(item.get("lineItem") or {}, "id", f"{path}.fulfillmentLineItems[{j}]"),
                f"{path}.fulfillmentLineItems[{j}].lineItem.id",
            ),
            quantity=ctx.int(item.get("quantity"), f"{path}.fulfillmentLineItems[{j}].quantity"),
        )
        for j, item in enumerate(_nodes(node.get("fulfillmentLineItems")))
    )
    return ctx.build(
        Fulfillment,
        path,
        id=ctx.id(ctx.required(node, "id", path), f"{path}.id"),
        created_at=ctx.timestamp_required(node.get("createdAt"), f"{path}.createdAt"),
        status=str(node.get("status") or "success").lower(),
        tracking_company=company,
        tracking_numbers=tuple(t["number"] for t in tracking if t.get("number")),
        tracking_urls=tuple(t["url"] for t in tracking if t.get("url")),
        delivered_at=ctx.timestamp(node.get("deliveredAt"), f"{path}.deliveredAt"),
        lines=lines,
    )


@guarded
def order_from_graphql(node: Mapping[str, Any], *, shop: str) -> Order:
    """An ``Order`` node (as :data:`shopsync_shopify.queries.ORDER_FIELDS` selects it).

    Connections may come as ``edges``, ``nodes`` or plain lists (a regrouped bulk result).
    """
    ctx = _Ctx(node)
    currency = ctx.required(node, "currencyCode", "")
    if not isinstance(currency, str):
        ctx.fail("currencyCode", f"{currency!r} is not a currency code")
    refunds = tuple(
        _refund_gql(ctx, item, currency, f"refunds[{i}]")
        for i, item in enumerate(_nodes(node.get("refunds")))
    )
    refunded = facts.refunded_quantities(refunds)
    extra = facts.facts_gql(ctx, node, currency)
    included = extra["taxes_included"]
    rates = tuple(t.rate for t in extra["tax_lines"] if t.rate is not None)
    ordered: dict[str, tuple[int, Money]] = {}
    lines = tuple(
        _line_gql(ctx, item, currency, refunded, f"lineItems[{i}]", included, rates, ordered)
        for i, item in enumerate(_nodes(node.get("lineItems")))
    )
    now = facts.after_edits_gql(ctx, node, currency, lines, ordered, refunds, included)
    fulfillments = tuple(
        _fulfillment_gql(ctx, item, f"fulfillments[{i}]")
        for i, item in enumerate(_nodes(node.get("fulfillments")))
    )
    cancelled_at = ctx.timestamp(node.get("cancelledAt"), "cancelledAt")
    processed_at = ctx.timestamp(node.get("processedAt"), "processedAt")
    financial = _financial(ctx, node.get("displayFinancialStatus"), "displayFinancialStatus")
    customer = node.get("customer")
    total_refunded = node.get("totalRefundedSet")
    return ctx.build(
        Order,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        name=node.get("name"),
        customer_id=ctx.opt_id(customer.get("id"), "customer.id") if customer else None,
        email=node.get("email"),
        created_at=ctx.timestamp_required(node.get("createdAt"), "createdAt"),
        updated_at=ctx.timestamp_required(node.get("updatedAt"), "updatedAt"),
        processed_at=processed_at,
        paid_at=processed_at if financial in _CAPTURED else None,
        cancelled_at=cancelled_at,
        closed_at=ctx.timestamp(node.get("closedAt"), "closedAt"),
        financial_status=financial,
        fulfillment_status=_enum(
            _FULFILLMENT, node.get("displayFulfillmentStatus"), FulfillmentStatus.UNFULFILLED
        ),
        currency=currency,
        subtotal=now.get("subtotal")
        or (
            sum((line.total for line in lines), Money.zero(currency))
            if included
            else ctx.bag(node.get("subtotalPriceSet"), currency, "subtotalPriceSet")
        ),
        total_discounts=now.get("total_discounts")
        or ctx.bag(node.get("totalDiscountsSet"), currency, "totalDiscountsSet"),
        total_shipping=ctx.bag(
            node.get("totalShippingPriceSet"), currency, "totalShippingPriceSet"
        ),
        total_tax=now.get("total_tax") or ctx.bag(node.get("totalTaxSet"), currency, "totalTaxSet"),
        total=now.get("total") or ctx.bag(node.get("totalPriceSet"), currency, "totalPriceSet"),
        total_refunded=(
            ctx.bag(total_refunded, currency, "totalRefundedSet")
            if total_refunded is not None
            else sum((r.amount for r in refunds), Money.zero(currency))
        ),
        line_items=lines,
        refunds=refunds,
        fulfillments=fulfillments,
        discount_codes=tuple(node.get("discountCodes") or ()),
        source=node.get("sourceName"),
        tags=_tags(node.get("tags")),
        billing_address=_address(ctx, node.get("billingAddress"), "billingAddress", graphql=True),
        shipping_address=_address(
            ctx, node.get("shippingAddress"), "shippingAddress", graphql=True
        ),
        **extra,
    )


def _categories_gql(node: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(c["title"] for c in _nodes(node.get("collections")) if c and c.get("title"))


@guarded
def product_from_graphql(node: Mapping[str, Any], *, shop: str, currency: str) -> Product:
    """A ``Product`` node; variant prices are in the shop's ``currency``."""
    ctx = _Ctx(node)
    variants = []
    for i, item in enumerate(_nodes(node.get("variants"))):
        path = f"variants[{i}]"
        price = item.get("price")
        variants.append(
            ctx.build(
                Variant,
                path,
                id=ctx.id(ctx.required(item, "id", path), f"{path}.id"),
                sku=_blank(item.get("sku")),
                title=item.get("title"),
                price=None if price is None else ctx.money(price, currency, f"{path}.price"),
            )
        )
    status = node.get("status")
    return ctx.build(
        Product,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(node, "id", ""), "id"),
        title=node.get("title") or "",
        product_type=_blank(node.get("productType")),
        vendor=_blank(node.get("vendor")),
        tags=_tags(node.get("tags")),
        categories=_categories_gql(node),
        status=status.lower() if isinstance(status, str) else None,
        created_at=ctx.timestamp_required(node.get("createdAt"), "createdAt"),
        updated_at=ctx.timestamp_required(node.get("updatedAt"), "updatedAt"),
        variants=tuple(variants),
    )
