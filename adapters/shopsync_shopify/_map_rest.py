"""Shopify REST-shaped JSON (webhooks, old payloads) -> shared models (the rules are in
:mod:`shopsync_shopify.mapping`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shopsync._money import excluding_tax, share
from shopsync.adapter_kit import guarded
from shopsync.models import (
    Consent,
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
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
    _set_or_amount,
    _tags,
)

__all__ = [
    "consent_from_webhook",
    "customer_from_webhook",
    "order_from_webhook",
    "product_from_webhook",
]


def _unwrap(payload: Any, key: str) -> Any:
    if isinstance(payload, (bytes, str)):
        payload = json.loads(payload)
    if isinstance(payload, Mapping) and key in payload and isinstance(payload[key], Mapping):
        return payload[key]
    return payload


def _metafield(payload: Mapping[str, Any], namespace: str, key: str) -> Any:
    for field in payload.get("metafields") or ():
        if (
            isinstance(field, Mapping)
            and field.get("namespace") == namespace
            and field.get("key") == key
        ):
            return field.get("value")
    return None


@guarded
def customer_from_webhook(
    payload: Mapping[str, Any] | bytes | str, *, shop: str, currency: str | None = None
) -> Customer:
    """A REST/webhook customer (``{"customer": {...}}`` or the bare object).

    ``currency`` is used for ``total_spent`` when the payload does not name one; without
    either, ``total_spent`` is left unknown rather than guessed.

    Only the fields the payload carries are given to the model (``model_fields_set``), so
    the store keeps what it holds for the rest: since 2025-01 Shopify's customer webhooks
    carry no ``tags``, marketing consents, ``orders_count`` or ``total_spent`` (changelog
    https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload),
    and the birthday metafield only when the subscription names its namespace.
    """
    data = _unwrap(payload, "customer")
    ctx = _Ctx(data)
    if not isinstance(data, Mapping):
        ctx.fail("", "a customer must be a JSON object")
    carried: dict[str, Any] = {
        key: data.get(key) for key in ("email", "phone", "first_name", "last_name") if key in data
    }
    if "tags" in data:
        carried["tags"] = _tags(data.get("tags"))
    email_consent = data.get("email_marketing_consent")
    if email_consent is None and data.get("accepts_marketing") is not None:
        email_consent = {"state": "subscribed" if data["accepts_marketing"] else "not_subscribed"}
    if email_consent is not None or data.get("sms_marketing_consent") is not None:
        carried["consent"] = Consent(
            email=_consent(ctx, email_consent, "email_marketing_consent", graphql=False),
            sms=_consent(
                ctx, data.get("sms_marketing_consent"), "sms_marketing_consent", graphql=False
            ),
        )
    if "metafields" in data:
        carried["birthday"] = ctx.date(
            _metafield(data, "facts", "birth_date"), "metafields.facts.birth_date"
        )
    if "default_address" in data:
        carried["default_address"] = _address(
            ctx, data.get("default_address"), "default_address", graphql=False
        )
    if "orders_count" in data:
        count = data.get("orders_count")
        carried["orders_count"] = None if count is None else ctx.int(count, "orders_count")
    code = data.get("currency") or currency
    if "total_spent" in data:
        spent = data.get("total_spent")
        carried["total_spent"] = (
            ctx.money(spent, code, "total_spent") if spent is not None and code else None
        )
    return ctx.build(
        Customer,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        created_at=ctx.timestamp_required(data.get("created_at"), "created_at"),
        updated_at=ctx.timestamp_required(data.get("updated_at"), "updated_at"),
        **carried,
    )


@guarded
def consent_from_webhook(value: Any, *, path: str) -> MarketingConsent:
    """One channel's consent as the consent topics send it (``state``, ``opt_in_level``,
    ``consent_updated_at``); an unknown state reads as ``unknown``."""
    ctx = _Ctx(value)
    if not isinstance(value, Mapping):
        ctx.fail(path, "a consent must be a JSON object")
    return _consent(ctx, value, path, graphql=False)


def _refund_rest(ctx: _Ctx, data: Any, currency: str, path: str) -> Refund:
    lines = []
    for j, item in enumerate(data.get("refund_line_items") or ()):
        where = f"{path}.refund_line_items[{j}]"
        line_id = item.get("line_item_id")
        if line_id is None:
            line_id = (item.get("line_item") or {}).get("id")
        lines.append(
            RefundLine(
                line_item_id=ctx.id(line_id, f"{where}.line_item_id"),
                quantity=ctx.int(item.get("quantity"), f"{where}.quantity"),
                subtotal=_set_or_amount(ctx, item, "subtotal_set", "subtotal", currency, where),
            )
        )
    amount = Money.zero(currency)
    for j, txn in enumerate(data.get("transactions") or ()):
        if txn.get("kind") == "refund" and txn.get("status") == "success":
            amount += ctx.money(txn.get("amount"), currency, f"{path}.transactions[{j}].amount")
    return ctx.build(
        Refund,
        path,
        id=ctx.id(ctx.required(data, "id", path), f"{path}.id"),
        created_at=ctx.timestamp_required(data.get("created_at"), f"{path}.created_at"),
        amount=amount,
        note=_blank(data.get("note")),
        lines=tuple(lines),
    )


def _fulfillment_rest(ctx: _Ctx, data: Any, path: str) -> Fulfillment:
    delivered = None
    if data.get("shipment_status") == "delivered":
        delivered = ctx.timestamp(data.get("updated_at"), f"{path}.updated_at")
    numbers = data.get("tracking_numbers")
    if numbers is None:
        numbers = [data["tracking_number"]] if data.get("tracking_number") else []
    urls = data.get("tracking_urls")
    if urls is None:
        urls = [data["tracking_url"]] if data.get("tracking_url") else []
    return ctx.build(
        Fulfillment,
        path,
        id=ctx.id(ctx.required(data, "id", path), f"{path}.id"),
        created_at=ctx.timestamp_required(data.get("created_at"), f"{path}.created_at"),
        status=str(data.get("status") or "success").lower(),
        tracking_company=_blank(data.get("tracking_company")),
        tracking_numbers=tuple(n for n in numbers if n),
        tracking_urls=tuple(u for u in urls if u),
        delivered_at=delivered,
        lines=tuple(
            FulfillmentLine(
                line_item_id=ctx.id(item.get("id"), f"{path}.line_items[{j}].id"),
                quantity=ctx.int(item.get("quantity"), f"{path}.line_items[{j}].quantity"),
            )
            for j, item in enumerate(data.get("line_items") or ())
        ),
    )


def _line_rest(
    ctx: _Ctx,
    item: Any,
    currency: str,
    refunded: Mapping[str, Decimal],
    path: str,
    taxes_included: bool | None = None,
    ordered: dict[str, tuple[int, Money]] | None = None,
) -> LineItem:
    line_id = ctx.id(ctx.required(item, "id", path), f"{path}.id")
    count = ctx.int(ctx.required(item, "quantity", path), f"{path}.quantity")
    quantity = facts.current_quantity(
        ctx,
        count,
        item.get("current_quantity"),
        int(refunded.get(line_id, 0)),
        f"{path}.current_quantity",
    )
    unit = _set_or_amount(ctx, item, "price_set", "price", currency, path)
    if unit is None:
        ctx.fail(f"{path}.price", "required amount is missing")
    allocations = item.get("discount_allocations")
    if allocations:
        discount = Money.zero(unit.currency)
        for j, alloc in enumerate(allocations):
            part = _set_or_amount(
                ctx, alloc, "amount_set", "amount", currency, f"{path}.discount_allocations[{j}]"
            )
            if part is not None:
                discount += part
    else:
        given = _set_or_amount(ctx, item, "total_discount_set", "total_discount", currency, path)
        discount = given if given is not None else Money.zero(unit.currency)
    if ordered is not None:
        ordered[line_id] = (count, discount)
    discount = share(discount, quantity, count)  # an edit's kept units (see _order_facts)
    tax, rates = facts.line_tax(
        ctx, item.get("tax_lines"), currency, f"{path}.tax_lines", graphql=False
    )
    unit, discount, total = facts.net_line(unit, quantity, discount, taxes_included, tax, rates)
    return ctx.build(
        LineItem,
        path,
        id=line_id,
        product_id=ctx.opt_id(item.get("product_id"), f"{path}.product_id"),
        variant_id=ctx.opt_id(item.get("variant_id"), f"{path}.variant_id"),
        sku=_blank(item.get("sku")),
        title=item.get("title") or item.get("name") or "",
        product_type=None,
        quantity=quantity,
        unit_price=unit,
        total_discount=discount,
        total=total,
        refunded_quantity=refunded.get(line_id, 0),
    )


@guarded
def order_from_webhook(payload: Mapping[str, Any] | bytes | str, *, shop: str) -> Order:
    """A REST/webhook order (``{"order": {...}}`` or the bare object).

    REST line items carry no product type: ``LineItem.product_type`` is ``None`` here and in
    :func:`order_from_graphql` alike (join the product for it), so both shapes agree.
    """
    data = _unwrap(payload, "order")
    ctx = _Ctx(data)
    if not isinstance(data, Mapping):
        ctx.fail("", "an order must be a JSON object")
    currency = ctx.required(data, "currency", "")
    if not isinstance(currency, str):
        ctx.fail("currency", f"{currency!r} is not a currency code")
    refunds = tuple(
        _refund_rest(ctx, item, currency, f"refunds[{i}]")
        for i, item in enumerate(data.get("refunds") or ())
    )
    refunded = facts.refunded_quantities(refunds)
    extra = facts.facts_rest(ctx, data, currency)
    included = extra["taxes_included"]
    ordered: dict[str, tuple[int, Money]] = {}
    lines = tuple(
        _line_rest(ctx, item, currency, refunded, f"line_items[{i}]", included, ordered)
        for i, item in enumerate(data.get("line_items") or ())
    )
    now = facts.after_edits_rest(ctx, data, currency, lines, ordered, refunds, included)
    line_tax = Money.zero(currency)
    for i, item in enumerate(data.get("line_items") or ()):
        tax, _ = facts.line_tax(
            ctx, item.get("tax_lines"), currency, f"line_items[{i}].tax_lines", graphql=False
        )
        line_tax += tax if tax is not None else Money.zero(currency)
    fulfillments = tuple(
        _fulfillment_rest(ctx, item, f"fulfillments[{i}]")
        for i, item in enumerate(data.get("fulfillments") or ())
    )
    shipping = _set_or_amount(ctx, data, "total_shipping_price_set", None, currency, "")
    if shipping is None:
        shipping = Money.zero(currency)
        for i, line in enumerate(data.get("shipping_lines") or ()):
            shipping += ctx.money(line.get("price"), currency, f"shipping_lines[{i}].price")
    cancelled_at = ctx.timestamp(data.get("cancelled_at"), "cancelled_at")
    processed_at = ctx.timestamp(data.get("processed_at"), "processed_at")
    financial = _financial(ctx, data.get("financial_status"), "financial_status")
    customer = data.get("customer")

    def money(key: str) -> Money:
        value = _set_or_amount(ctx, data, f"{key}_set", key, currency, "")
        if value is None:
            ctx.fail(key, "required amount is missing")
        return value

    return ctx.build(
        Order,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        name=data.get("name"),
        customer_id=ctx.opt_id(customer.get("id"), "customer.id") if customer else None,
        email=data.get("email") or data.get("contact_email"),
        created_at=ctx.timestamp_required(data.get("created_at"), "created_at"),
        updated_at=ctx.timestamp_required(data.get("updated_at"), "updated_at"),
        processed_at=processed_at,
        paid_at=processed_at if financial in _CAPTURED else None,
        cancelled_at=cancelled_at,
        closed_at=ctx.timestamp(data.get("closed_at"), "closed_at"),
        financial_status=financial,
        fulfillment_status=_enum(
            _FULFILLMENT, data.get("fulfillment_status"), FulfillmentStatus.UNFULFILLED
        ),
        currency=currency,
        subtotal=now.get("subtotal")
        or excluding_tax(
            money("subtotal_price"), taxes_included=included, tax=line_tax if included else None
        ),
        total_discounts=now.get("total_discounts") or money("total_discounts"),
        total_shipping=shipping,
        total_tax=now.get("total_tax") or money("total_tax"),
        total=now.get("total") or money("total_price"),
        total_refunded=sum((r.amount for r in refunds), Money.zero(currency)),
        line_items=lines,
        refunds=refunds,
        fulfillments=fulfillments,
        discount_codes=tuple(
            d.get("code") for d in data.get("discount_codes") or () if d.get("code")
        ),
        source=data.get("source_name"),
        tags=_tags(data.get("tags")),
        billing_address=_address(
            ctx, data.get("billing_address"), "billing_address", graphql=False
        ),
        shipping_address=_address(
            ctx, data.get("shipping_address"), "shipping_address", graphql=False
        ),
        **extra,
    )


@guarded
def product_from_webhook(
    payload: Mapping[str, Any] | bytes | str, *, shop: str, currency: str
) -> Product:
    """A REST/webhook product; REST carries no collections, so ``categories`` is empty."""
    data = _unwrap(payload, "product")
    ctx = _Ctx(data)
    return ctx.build(
        Product,
        "",
        platform=PLATFORM,
        shop=shop,
        id=ctx.id(ctx.required(data, "id", ""), "id"),
        title=data.get("title") or "",
        product_type=_blank(data.get("product_type")),
        vendor=_blank(data.get("vendor")),
        tags=_tags(data.get("tags")),
        status=data.get("status"),
        created_at=ctx.timestamp_required(data.get("created_at"), "created_at"),
        updated_at=ctx.timestamp_required(data.get("updated_at"), "updated_at"),
        variants=tuple(
            ctx.build(
                Variant,
                f"variants[{i}]",
                id=ctx.id(v.get("id"), f"variants[{i}].id"),
                sku=_blank(v.get("sku")),
                title=v.get("title"),
                price=None
                if v.get("price") is None
                else ctx.money(v["price"], currency, f"variants[{i}].price"),
            )
            for i, v in enumerate(data.get("variants") or ())
        ),
    )
