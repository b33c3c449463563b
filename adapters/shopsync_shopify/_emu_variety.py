"""Order facts a real Shopify shop has and the neutral shop generator does not make, added by
the emulator when asked (``order_variety=True``; off by default so other suites' figures stay
as they are).

Rates are assumptions of an ordinary shop, stated here because Shopify publishes none:
test orders are rare in a live shop (1 in 200, placed while setting up a gateway), tips come
with about 3 % of orders (more in restaurants and POS), duties with about 2 % (cross-border,
Shopify Markets), every taxed order lists its tax line, and a cancelled order says why. Each
choice is a hash of the order id, so a seed gives the same shop every time.

About 2 % of the orders that still have an unfulfilled unit are edited after the fact (one
unit taken off their first such line, :meth:`ShopState.edit_order`; merchants edit orders to
drop an out-of-stock item or change a quantity before shipping).

Not modelled: a shop showing prices with tax (the state holds net amounts; rendering them
gross so that the adapter's conversion gives them back exactly is left to do).
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from shopsync.models import Money, Order, TaxLine

if TYPE_CHECKING:
    from shopsync.testing.state import ShopState

__all__ = ["add_variety"]

_REASONS = ("customer", "inventory", "fraud", "declined", "other")


def _draw(order_id: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{order_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _share(amount: Money, fraction: str) -> Money:
    value = (amount.amount * Decimal(fraction)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return Money(amount=value, currency=amount.currency)


def add_variety(state: ShopState) -> int:
    """Give the shop's orders the facts above (their ``updated_at`` unchanged); returns how
    many orders changed."""
    changed = 0
    for order in list(state.ordered("orders")):
        fields = _facts(order)
        if fields:
            state.update_order(order.id, updated_at=order.updated_at, **fields)
            changed += 1
        if order.cancelled_at is None and _draw(order.id, "edit") < 0.02:
            changed += _edit(state, order.id)
    return changed


def _edit(state: ShopState, order_id: str) -> int:
    """Take one unfulfilled unit off the order's first line that has one; 0 when none has."""
    order = state.orders[order_id]
    shipped: dict[str, Decimal] = {}
    for f in order.fulfillments:
        for fl in f.lines:
            shipped[fl.line_item_id] = shipped.get(fl.line_item_id, Decimal(0)) + fl.quantity
    for line in order.line_items:
        left = line.quantity - line.refunded_quantity
        if left - shipped.get(line.id, Decimal(0)) >= 1:
            try:
                state.edit_order(order_id, line.id, int(left) - 1)
            except ValueError:  # the refunds already exceed what the edit would leave
                return 0
            return 1
    return 0


def _facts(order: Order) -> dict[str, object]:
    fields: dict[str, object] = {"taxes_included": False}  # Shopify always says
    if _draw(order.id, "test") < 0.005:
        fields["test"] = True
    if order.subtotal.amount > 0 and _draw(order.id, "tip") < 0.03:
        fields["total_tip"] = _share(order.subtotal, "0.10")
    if order.subtotal.amount > 0 and _draw(order.id, "duties") < 0.02:
        fields["total_duties"] = _share(order.subtotal, "0.05")
    if order.total_tax.amount > 0 and not order.tax_lines and order.subtotal.amount > 0:
        rate = (order.total_tax.amount / order.subtotal.amount).quantize(Decimal("0.0001"))
        fields["tax_lines"] = (TaxLine(title="Tax", rate=rate, amount=order.total_tax),)
    if order.cancelled_at is not None and order.cancel_reason is None:
        fields["cancel_reason"] = _REASONS[int(_draw(order.id, "cancel") * len(_REASONS))]
    return fields
