"""What real WooCommerce stores hold that the platform-neutral shop generator does not make:
lines sold by weight and fee lines. The emulator applies it to its state before serving.

- **Sold by weight or length.** Core WooCommerce accepts a decimal quantity through the REST
  API (the v3 docs type ``line_items[].quantity`` as a number) and weight plugins (e.g.
  "Product Quantity for WooCommerce", "Sell by weight") let shoppers buy 1.5 kg. A chosen
  line's quantity is halved and its unit price doubled: 3 x 10.00 becomes 1.5 (kg) x 20.00,
  so every amount of the order stays exactly as generated; its refunded and shipped
  quantities are halved with it.
- **Fees.** ``WC_Order_Item_Fee`` lines (``fee_lines`` in the v3 order: ``id``, ``name``,
  ``total``, ``total_tax``) are what stores add at checkout for gift wrapping, cash on
  delivery or payment surcharges. A chosen order without refunds gets a "Gift wrap" fee of
  250 minor units, added to its total, as ``WC_Order::calculate_totals`` would.

Orders are chosen by a hash of their id, so a seeded shop is the same on every run.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from shopsync._currencies import EXPONENTS
from shopsync.models import FeeLine, LineItem, Money, Order
from shopsync.testing.state import ShopState

__all__ = ["apply_store_habits"]

_HALF = Decimal(2)


def _chosen(order_id: str, salt: str, share: float) -> bool:
    digest = hashlib.sha256(f"{salt}:{order_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _by_weight(order: Order) -> Order:
    first = order.line_items[0]
    line: LineItem = first.model_copy(
        update={
            "quantity": first.quantity / _HALF,
            "refunded_quantity": first.refunded_quantity / _HALF,
            "unit_price": Money(
                amount=first.unit_price.amount * _HALF, currency=first.unit_price.currency
            ),
        }
    )

    def halve(lines: tuple[object, ...]) -> tuple[object, ...]:
        return tuple(
            x.model_copy(update={"quantity": x.quantity / _HALF})  # type: ignore[attr-defined]
            if x.line_item_id == first.id  # type: ignore[attr-defined]
            else x
            for x in lines
        )

    refunds = tuple(r.model_copy(update={"lines": halve(r.lines)}) for r in order.refunds)
    shipped = tuple(f.model_copy(update={"lines": halve(f.lines)}) for f in order.fulfillments)
    return Order.model_validate(
        {
            **dict(order),
            "line_items": (line, *order.line_items[1:]),
            "refunds": refunds,
            "fulfillments": shipped,
        }
    )


def _with_fee(order: Order) -> Order:
    fee = Money(
        amount=Decimal(250).scaleb(-EXPONENTS.get(order.currency, 2)), currency=order.currency
    )
    untaxed = Money(amount=Decimal(0), currency=order.currency)
    line = FeeLine(id=str(int(order.id) * 10 + 7), name="Gift wrap", total=fee, total_tax=untaxed)
    return Order.model_validate(
        {**dict(order), "fee_lines": (*order.fee_lines, line), "total": order.total + fee}
    )


def apply_store_habits(state: ShopState, *, by_weight: float, fees: float) -> None:
    """Give about ``by_weight`` of the orders a line sold by weight and ``fees`` of those
    without refunds a fee line (shares from 0 to 1), in place, before the store serves."""
    with state.lock:
        for order_id, order in list(state.orders.items()):
            changed = order
            if changed.line_items and _chosen(order_id, "weight", by_weight):
                changed = _by_weight(changed)
            if not changed.refunds and _chosen(order_id, "fee", fees):
                changed = _with_fee(changed)
            if changed is not order:
                state.orders[order_id] = changed
