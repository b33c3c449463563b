"""Order edits in the emulated shop (Shopify's order editing: ``orderEditBegin``, a quantity
set or a line added, ``orderEditCommit``).

The state keeps the order as shopsync stores it, after the edit (lines at their new
quantity, refunds counted; totals lowered or raised by what the edit changed), and remembers
in an :class:`OrderEdit` what was ordered, which Shopify keeps showing in ``quantity`` and
``totalPriceSet`` beside the ``current*`` fields. Only unfulfilled units can be taken off
(https://shopify.dev/docs/api/admin-graphql/latest/mutations/orderEditCommit: "You can only
edit unfulfilled line items").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync._money import share
from shopsync.models import LineItem, Money, Order

__all__ = ["OrderEdit", "edited_order"]


@dataclass(frozen=True)
class OrderEdit:
    """What Shopify keeps of an edited order as it was placed, and the last edit's deltas
    (the ``line_items.additions`` / ``removals`` of the ``orders/edited`` webhook)."""

    quantities: dict[str, int]
    """Line id -> quantity as ordered; a line an edit added: its quantity when added."""
    discounts: dict[str, Money]
    """Line id -> its discount as ordered."""
    subtotal: Money
    total_discounts: Money
    total_tax: Money
    total: Money
    edit_id: str
    created_at: dt.datetime
    additions: dict[str, int] = field(default_factory=dict)
    removals: dict[str, int] = field(default_factory=dict)


def _shipped(order: Order, line_id: str) -> Decimal:
    return sum(
        (
            fl.quantity
            for f in order.fulfillments
            if f.status not in ("cancelled", "failure", "error")
            for fl in f.lines
            if fl.line_item_id == line_id
        ),
        Decimal(0),
    )


def edited_order(
    order: Order,
    previous: OrderEdit | None,
    line_id: str,
    quantity: int,
    *,
    at: dt.datetime,
    edit_id: str,
    new_line_id: str,
    line: dict[str, Any] | None = None,
) -> tuple[Order, OrderEdit]:
    """``order`` with line ``line_id`` set to ``quantity`` units (refunded units not counted),
    or, when the order has no such line, with a line added from ``line`` (``title``,
    ``unit_price`` and optionally ``sku``, ``product_id``, ``variant_id``)."""
    if order.taxes_included:
        raise ValueError("the emulator edits tax-exclusive orders only")
    if order.cancelled_at is not None:
        raise ValueError(f"order {order.id} is cancelled and cannot be edited")
    if quantity < 0:
        raise ValueError("a quantity cannot be negative")
    cur = order.currency
    zero = Money.zero(cur)
    original = previous or OrderEdit(
        quantities={li.id: int(li.quantity) for li in order.line_items},
        discounts={li.id: li.total_discount or zero for li in order.line_items},
        subtotal=order.subtotal,
        total_discounts=order.total_discounts,
        total_tax=order.total_tax,
        total=order.total,
        edit_id=edit_id,
        created_at=at,
    )
    quantities, discounts = dict(original.quantities), dict(original.discounts)
    lines = list(order.line_items)
    index = next((i for i, li in enumerate(lines) if li.id == line_id), None)
    if index is None:
        if not line or "unit_price" not in line or "title" not in line:
            raise ValueError(
                f"order {order.id} has no line {line_id}; a new line needs a title and unit_price"
            )
        unit = line["unit_price"]
        unit = unit if isinstance(unit, Money) else Money.of(unit, cur)
        old = LineItem(
            id=new_line_id,
            product_id=line.get("product_id"),
            variant_id=line.get("variant_id"),
            sku=line.get("sku"),
            title=line["title"],
            quantity=0,
            unit_price=unit,
            total_discount=zero,
            total=zero,
        )
        lines.append(old)
        index, quantities[old.id], discounts[old.id] = len(lines) - 1, quantity, zero
    old = lines[index]
    current = int(old.quantity - old.refunded_quantity)
    unshipped = current - int(_shipped(order, old.id))
    if current - quantity > unshipped:
        raise ValueError(f"line {old.id} has only {unshipped} unfulfilled units to take off")
    kept = old.refunded_quantity + quantity
    discount = share(discounts[old.id], kept, quantities[old.id])
    new = old.model_copy(
        update={
            "quantity": kept,
            "total_discount": discount,
            "total": Money(amount=old.unit_price.amount * kept - discount.amount, currency=cur),
        }
    )
    lines[index] = new
    delta_sub = new.total - old.total
    step = Decimal(1).scaleb(-EXPONENTS[cur])
    ratio = (
        order.total_tax.amount * delta_sub.amount / order.subtotal.amount
        if order.subtotal.amount
        else 0
    )
    delta_tax = Money(amount=Decimal(ratio).quantize(step, ROUND_HALF_UP), currency=cur)
    delta_discount = discount - (old.total_discount or zero)
    edited = order.model_copy(
        update={
            "line_items": tuple(lines),
            "subtotal": order.subtotal + delta_sub,
            "total_tax": order.total_tax + delta_tax,
            "total_discounts": order.total_discounts + delta_discount,
            "total": order.total + delta_sub + delta_tax,
            "updated_at": at,
        }
    )
    edited = Order.model_validate(edited.model_dump())  # the model's own checks
    change = quantity - current
    record = OrderEdit(
        quantities=quantities,
        discounts=discounts,
        subtotal=original.subtotal,
        total_discounts=original.total_discounts,
        total_tax=original.total_tax,
        total=original.total,
        edit_id=edit_id,
        created_at=at,
        additions={new.id: change} if change > 0 else {},
        removals={new.id: -change} if change < 0 else {},
    )
    return edited, record
