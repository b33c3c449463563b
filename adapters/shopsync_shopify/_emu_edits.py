"""How the emulator shows an order's edits the way Shopify does (issue 15 item 4).

The shop state holds an edited order as shopsync stores it: after edits, before refunds
(:meth:`shopsync.testing.state.ShopState.edit_order` keeps what was ordered in an
:class:`~shopsync.testing._edits.OrderEdit`). Shopify shows it differently: ``quantity``,
``totalDiscountSet`` and the order's ``totalPriceSet``, ``subtotalPriceSet``, ``totalTaxSet``
and ``totalDiscountsSet`` stay as ordered, while ``currentQuantity`` and the ``current*``
totals are the order after edits, returns and refunds (sources in
:mod:`shopsync_shopify._order_facts` and docs/adapters/shopify.md#edited-orders).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shopsync._money import share
from shopsync.models import LineItem, Money, Order

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = ["ShopifyTotals", "order_edited_rest", "shopify_totals"]


@dataclass(frozen=True)
class ShopifyTotals:
    """An order's totals as Shopify reports them: as ordered, and current."""

    total: Money
    subtotal: Money
    tax: Money
    discounts: Money
    current_total: Money
    current_subtotal: Money
    current_tax: Money
    current_discounts: Money
    quantities: dict[str, int]
    """Line id -> quantity as ordered (an added line: its quantity when added)."""
    line_discounts: dict[str, Money]
    """Line id -> its discount as ordered."""
    edited: bool


def _floor(money: Money) -> Money:
    return money if money.amount >= 0 else Money.zero(money.currency)


def _line_discount(line: LineItem) -> Money:
    return line.total_discount or Money.zero(line.unit_price.currency)


def shopify_totals(order: Order, state: ShopState | None) -> ShopifyTotals:
    """``order``'s Shopify figures; an order never edited shows its own totals as ordered
    and, as before, ``total - total_refunded`` as its current total."""
    edit = state.order_edits.get(order.id) if state is not None else None
    quantities = {li.id: int(li.quantity) for li in order.line_items}
    discounts = {li.id: _line_discount(li) for li in order.line_items}
    if edit is not None:
        quantities |= edit.quantities
        discounts |= edit.discounts
    zero = Money.zero(order.currency)
    refunded_sub = sum((rl.subtotal or zero for r in order.refunds for rl in r.lines), zero)
    refunded_discounts = zero
    for refund in order.refunds:
        for rl in refund.lines:
            ordered = quantities.get(rl.line_item_id, 0)
            refunded_discounts += share(discounts.get(rl.line_item_id, zero), rl.quantity, ordered)
    return ShopifyTotals(
        total=edit.total if edit else order.total,
        subtotal=edit.subtotal if edit else order.subtotal,
        tax=edit.total_tax if edit else order.total_tax,
        discounts=edit.total_discounts if edit else order.total_discounts,
        # After refunds Shopify's current total drops by the refund lines (their subtotal
        # and tax; the emulator's refunds carry no tax); an order never edited keeps the
        # emulator's earlier figure, the total less the money refunded.
        current_total=_floor(order.total - (refunded_sub if edit else order.total_refunded)),
        current_subtotal=_floor(order.subtotal - refunded_sub),
        current_tax=order.total_tax,
        current_discounts=_floor(order.total_discounts - refunded_discounts),
        quantities=quantities,
        line_discounts=discounts,
        edited=edit is not None,
    )


def _num(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def order_edited_rest(order: Order, state: ShopState) -> dict[str, Any] | None:
    """The ``orders/edited`` body: the edit, not the order (Shopify's webhook reference,
    https://shopify.dev/docs/api/webhooks/latest?reference=toml#list-orders-edited: an
    ``order_edit`` with ``line_items.additions`` / ``removals`` as ``{id, delta}``); the
    order itself follows in ``orders/updated``."""
    edit = state.order_edits.get(order.id)
    if edit is None:
        return None
    from shopsync_shopify._render import fmt_time  # a cycle at import time otherwise

    def deltas(changes: dict[str, int]) -> list[dict[str, Any]]:
        return [{"id": _num(k), "delta": v} for k, v in changes.items()]

    return {
        "order_edit": {
            "id": _num(edit.edit_id),
            "app_id": None,
            "created_at": fmt_time(edit.created_at, rest=True),
            "notify_customer": False,
            "order_id": _num(order.id),
            "staff_note": "",
            "user_id": None,
            "line_items": {
                "additions": deltas(edit.additions),
                "removals": deltas(edit.removals),
            },
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []},
        }
    }
