"""The order facts issue 15 added to the models, read from both Shopify shapes.

- ``test`` (REST ``test``, GraphQL ``test``): an order placed through a test gateway;
- ``taxes_included`` (``taxes_included`` / ``taxesIncluded``): prices shown with tax; line
  amounts and the subtotal are converted to net with :mod:`shopsync._money`, subtracting the
  tax Shopify reports per line (``tax_lines`` / ``taxLines``) so lines plus tax still add up;
- edited orders: a line's ``current_quantity`` / ``currentQuantity`` is what is left after
  edits *and* refunds, so the line keeps ``current + refunded`` (never more than ordered) and
  its refunds stay in ``refunded_quantity``; a line an edit shortened keeps the share of its
  discount its kept units carry. Shopify leaves ``total_price`` / ``totalPriceSet`` (and the
  subtotal, tax and discounts) as ordered and reports the order as it stands in
  ``current_total_price`` / ``currentTotalPriceSet`` and their subtotal, tax and discounts
  twins, *after edits, returns and refunds*. An edited order (:func:`after_edits`) is stored
  after edits and before refunds, the convention of docs/models.md: current + what the refund
  lines took off (their subtotal and tax), so ``total - total_refunded`` is what was kept;
- ``cancel_reason`` (lower case), ``tax_lines`` (order level), ``discount_applications``,
  ``total_tip_received`` / ``totalTipReceivedSet`` (a zero tip reads as none) and
  ``current_total_duties_set`` / ``currentTotalDutiesSet``.

Sources: REST Order (https://shopify.dev/docs/api/admin-rest/latest/resources/order), GraphQL
Order (https://shopify.dev/docs/api/admin-graphql/latest/objects/Order), the 2026-07 REST
fixture from shopify-api-ruby (tests/fixtures/shopify/ruby-2026-07-order.json). Edits:
orderEditCommit (https://shopify.dev/docs/api/admin-graphql/latest/mutations/orderEditCommit:
only unfulfilled lines can be edited), the Order's current fields as the Storefront API words
them (https://shopify.dev/docs/api/storefront/latest/objects/Order: ``currentTotalPrice`` "minus
amounts for line items that have been removed"), and the 2026-07 changelog entry for
``LineItem.priceAfterAllDiscountsBeforeTaxesSet`` (https://shopify.dev/changelog/posts/
lineitem-priceafteralldiscountsbeforetaxesset-field-now-available: current figures exclude
"refunded and removed quantities"). In the fixture an unedited order's
``current_total_price`` (199.65) is the total less the refund lines (391.33 + 7.96 tax), not
less the money refunded (209.00): refunds are added back by line, never by amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from shopsync._money import line_excluding_tax, share
from shopsync.models import DiscountApplication, DiscountValueType, LineItem, Money, Refund, TaxLine
from shopsync_shopify._map_common import _Ctx, _nodes, _set_or_amount

__all__ = [
    "after_edits",
    "after_edits_gql",
    "after_edits_rest",
    "current_quantity",
    "facts_gql",
    "facts_rest",
    "line_tax",
    "net_line",
    "refunded_quantities",
    "rest_amount",
]


def _rate(ctx: Any, value: Any, path: str) -> Decimal | None:
    if value is None:
        return None
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        ctx.fail(path, f"{value!r} is not a tax rate")
    if not rate.is_finite() or rate < 0:
        ctx.fail(path, f"{value!r} is not a tax rate")
    return rate


def _rest_money(ctx: _Ctx, item: Mapping[str, Any], key: str, currency: str, path: str) -> Money:
    bag = item.get(f"{key}_set")
    if isinstance(bag, Mapping) and isinstance(bag.get("shop_money"), Mapping):
        return ctx.money(bag["shop_money"].get("amount"), currency, f"{path}.{key}_set")
    return ctx.money(item.get(key), currency, f"{path}.{key}")


def line_tax(
    ctx: Any, items: Any, currency: str, path: str, *, graphql: bool
) -> tuple[Money | None, tuple[Decimal, ...]]:
    """A line's reported tax (summed) and its rates; (None, ()) when it lists none."""
    if not items:
        return None, ()
    total = Money.zero(currency)
    rates = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if graphql:
            total += ctx.bag(item.get("priceSet"), currency, f"{where}.priceSet")
        else:
            total += _rest_money(ctx, item, "price", currency, where)
        rate = _rate(ctx, item.get("rate"), f"{where}.rate")
        if rate is not None:
            rates.append(rate)
    return total, tuple(rates)


def net_line(
    unit: Money,
    quantity: Decimal | int,
    discount: Money,
    taxes_included: bool | None,
    tax: Money | None,
    rates: tuple[Decimal, ...],
) -> tuple[Money, Money, Money]:
    """(unit price, discount, total) excluding tax (docs/models.md). A line an edit emptied
    keeps no more discount than its price (its total is 0, never negative)."""
    full = unit.amount * quantity
    if discount.amount > full:
        discount = Money(amount=full, currency=discount.currency)
    gross = Money(amount=full - discount.amount, currency=unit.currency)
    net = line_excluding_tax(
        unit_price=unit,
        quantity=Decimal(quantity),
        total_discount=discount,
        total=gross,
        taxes_included=taxes_included,
        tax=tax,
        rates=rates,
    )
    return net.unit_price, net.total_discount or discount, net.total


def current_quantity(ctx: _Ctx, ordered: int, current: Any, refunded: int, path: str) -> int:
    """What an edited line still holds, its refunds included (see the module doc)."""
    if current is None:
        return ordered
    left = ctx.int(current, path)
    return max(refunded, min(ordered, left + refunded))


def _tax_lines(
    ctx: Any, items: Any, currency: str, path: str, *, graphql: bool
) -> tuple[TaxLine, ...]:
    out = []
    for i, item in enumerate(items or ()):
        where = f"{path}[{i}]"
        amount = (
            ctx.bag(item.get("priceSet"), currency, f"{where}.priceSet")
            if graphql
            else _rest_money(ctx, item, "price", currency, where)
        )
        out.append(
            ctx.build(
                TaxLine,
                where,
                title=str(item.get("title") or "tax"),
                rate=_rate(ctx, item.get("rate"), f"{where}.rate"),
                amount=amount,
            )
        )
    return tuple(out)


_KINDS_GQL = {
    "DiscountCodeApplication": "discount_code",
    "AutomaticDiscountApplication": "automatic",
    "ManualDiscountApplication": "manual",
    "ScriptDiscountApplication": "script",
}


def _discounts(
    ctx: Any, items: Any, path: str, *, graphql: bool
) -> tuple[DiscountApplication, ...]:
    out = []
    for i, item in enumerate(items or ()):
        where = f"{path}[{i}]"
        if graphql:
            kind = _KINDS_GQL.get(str(item.get("__typename")), "manual")
            value = item.get("value") or {}
            if "percentage" in value:
                amount, value_type = value.get("percentage"), DiscountValueType.PERCENTAGE
            else:
                amount, value_type = value.get("amount"), DiscountValueType.FIXED_AMOUNT
            allocation = item.get("allocationMethod")
        else:
            kind = str(item.get("type") or "manual")
            amount = item.get("value")
            value_type = (
                DiscountValueType.PERCENTAGE
                if item.get("value_type") == "percentage"
                else DiscountValueType.FIXED_AMOUNT
            )
            allocation = item.get("allocation_method")
        out.append(
            ctx.build(
                DiscountApplication,
                where,
                type=kind.lower(),
                code=item.get("code") or None,
                title=item.get("title") or item.get("description") or None,
                value=ctx.amount(amount, f"{where}.value"),
                value_type=value_type,
                allocation=str(allocation).lower() if allocation else None,
            )
        )
    return tuple(out)


def _tip(money: Money | None) -> Money | None:
    return money if money is not None and money.amount > 0 else None


def facts_rest(ctx: Any, data: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """The new :class:`~shopsync.models.Order` fields of a REST/webhook order."""
    tip = data.get("total_tip_received")
    duties = data.get("current_total_duties_set")
    reason = data.get("cancel_reason")
    included = data.get("taxes_included")
    return {
        "test": bool(data.get("test")),
        "taxes_included": included if isinstance(included, bool) else None,
        "cancel_reason": str(reason).lower() if reason else None,
        "total_tip": _tip(None if tip is None else ctx.money(tip, currency, "total_tip_received")),
        "total_duties": (
            ctx.money(duties["shop_money"].get("amount"), currency, "current_total_duties_set")
            if isinstance(duties, Mapping) and isinstance(duties.get("shop_money"), Mapping)
            else None
        ),
        "tax_lines": _tax_lines(ctx, data.get("tax_lines"), currency, "tax_lines", graphql=False),
        "discount_applications": _discounts(
            ctx, data.get("discount_applications"), "discount_applications", graphql=False
        ),
    }


def facts_gql(ctx: Any, node: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """The new :class:`~shopsync.models.Order` fields of a GraphQL order node."""
    tip = node.get("totalTipReceivedSet")
    duties = node.get("currentTotalDutiesSet")
    reason = node.get("cancelReason")
    included = node.get("taxesIncluded")
    applications = node.get("discountApplications")
    if isinstance(applications, Mapping):
        applications = applications.get("nodes") or [
            e.get("node") for e in applications.get("edges") or ()
        ]
    return {
        "test": bool(node.get("test")),
        "taxes_included": included if isinstance(included, bool) else None,
        "cancel_reason": str(reason).lower() if reason else None,
        "total_tip": _tip(None if tip is None else ctx.bag(tip, currency, "totalTipReceivedSet")),
        "total_duties": (
            None if duties is None else ctx.bag(duties, currency, "currentTotalDutiesSet")
        ),
        "tax_lines": _tax_lines(ctx, node.get("taxLines"), currency, "taxLines", graphql=True),
        "discount_applications": _discounts(
            ctx, applications, "discountApplications", graphql=True
        ),
    }


def rest_amount(ctx: Any, data: Mapping[str, Any], key: str, currency: str) -> Money | None:
    """A top-level REST amount: ``{key}_set.shop_money`` when sent, else ``key``; None when
    the payload carries neither (an older version, a partial body)."""
    bag = data.get(f"{key}_set")
    value: Money | None = None
    if isinstance(bag, Mapping) and isinstance(bag.get("shop_money"), Mapping):
        value = ctx.money(bag["shop_money"].get("amount"), currency, f"{key}_set")
    elif data.get(key) is not None:
        value = ctx.money(data[key], currency, key)
    return value


def after_edits(
    current: Mapping[str, Money | None],
    *,
    edited: bool,
    lines: tuple[LineItem, ...],
    ordered: Mapping[str, tuple[int, Money]],
    refunds: tuple[Refund, ...],
    refund_tax: Money,
    taxes_included: bool | None,
) -> dict[str, Money]:
    """The totals of an edited order after edits, before refunds (see the module doc).

    ``current`` holds Shopify's ``total``, ``subtotal``, ``tax`` and ``discounts`` after
    edits and refunds (None when not sent); ``ordered`` maps a line id to its ordered
    quantity and discount. An order that was not edited, or a payload without the current
    total, gives ``{}``: the original totals stand, exactly as before.
    """
    total = current.get("total")
    if not edited or total is None:
        return {}
    currency = total.currency
    zero = Money.zero(currency)
    refunded_sub = sum((rl.subtotal or zero for r in refunds for rl in r.lines), zero)
    out = {"total": total + refunded_sub + (zero if taxes_included else refund_tax)}
    subtotal = current.get("subtotal")
    if taxes_included:
        out["subtotal"] = sum((line.total for line in lines), zero)
    elif subtotal is not None:
        out["subtotal"] = subtotal + refunded_sub
    tax = current.get("tax")
    if tax is not None:
        out["total_tax"] = tax + refund_tax
    discounts = current.get("discounts")
    if discounts is not None:
        for refund in refunds:
            for rl in refund.lines:
                quantity, discount = ordered.get(rl.line_item_id, (0, zero))
                discounts += share(discount, rl.quantity, quantity)
        out["total_discounts"] = discounts
    return out


_CURRENT_GQL = {
    "total": "currentTotalPriceSet",
    "subtotal": "currentSubtotalPriceSet",
    "tax": "currentTotalTaxSet",
    "discounts": "currentTotalDiscountsSet",
}
"""Shopify's figures after edits, returns and refunds (see the module doc)."""
_CURRENT_REST = {
    "total": "current_total_price",
    "subtotal": "current_subtotal_price",
    "tax": "current_total_tax",
    "discounts": "current_total_discounts",
}


def _shortened(lines: Iterable[LineItem], ordered: Mapping[str, tuple[int, Money]]) -> bool:
    """Whether an edit took units off a line: it holds fewer than ordered, refunds counted."""
    return any(line.quantity < ordered[line.id][0] for line in lines if line.id in ordered)


def after_edits_gql(
    ctx: _Ctx,
    node: Mapping[str, Any],
    currency: str,
    lines: tuple[LineItem, ...],
    ordered: Mapping[str, tuple[int, Money]],
    refunds: tuple[Refund, ...],
    included: bool | None,
) -> dict[str, Money]:
    """The totals an edited order is stored with (``{}`` when not edited: nothing read)."""
    if node.get("edited") is not True and not _shortened(lines, ordered):
        return {}
    refund_tax = Money.zero(currency)
    for i, item in enumerate(_nodes(node.get("refunds"))):
        for j, rl in enumerate(_nodes(item.get("refundLineItems"))):
            if rl.get("totalTaxSet") is not None:
                where = f"refunds[{i}].refundLineItems[{j}].totalTaxSet"
                refund_tax += ctx.bag(rl["totalTaxSet"], currency, where)
    current = {
        name: None if node.get(key) is None else ctx.bag(node.get(key), currency, key)
        for name, key in _CURRENT_GQL.items()
    }
    return after_edits(
        current,
        edited=True,
        lines=lines,
        ordered=ordered,
        refunds=refunds,
        refund_tax=refund_tax,
        taxes_included=included,
    )


def after_edits_rest(
    ctx: _Ctx,
    data: Mapping[str, Any],
    currency: str,
    lines: tuple[LineItem, ...],
    ordered: Mapping[str, tuple[int, Money]],
    refunds: tuple[Refund, ...],
    included: bool | None,
) -> dict[str, Money]:
    """:func:`after_edits_gql` for a REST/webhook order (REST says no ``edited``)."""
    if not _shortened(lines, ordered):
        return {}
    refund_tax = Money.zero(currency)
    for i, item in enumerate(data.get("refunds") or ()):
        for j, rl in enumerate(item.get("refund_line_items") or ()):
            where = f"refunds[{i}].refund_line_items[{j}]"
            tax = _set_or_amount(ctx, rl, "total_tax_set", "total_tax", currency, where)
            refund_tax += tax if tax is not None else Money.zero(currency)
    return after_edits(
        {name: rest_amount(ctx, data, key, currency) for name, key in _CURRENT_REST.items()},
        edited=True,
        lines=lines,
        ordered=ordered,
        refunds=refunds,
        refund_tax=refund_tax,
        taxes_included=included,
    )


def refunded_quantities(refunds: Iterable[Refund]) -> dict[str, Decimal]:
    counts: dict[str, Decimal] = {}
    for refund in refunds:
        for line in refund.lines:
            counts[line.line_item_id] = counts.get(line.line_item_id, 0) + line.quantity
    return counts
