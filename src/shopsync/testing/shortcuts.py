"""A customer or an order in an emulated shop in one line.

::

    ada = shop.add_customer("ada@example.com", first_name="Ada", consent="subscribed")
    shop.add_order(ada, "49.90")                     # paid now, one line of a product of the shop
    shop.add_order(ada.id, "12.50", quantity=2, paid=False, at=last_month)

:meth:`ShopState.add_order` takes a whole :class:`~shopsync.models.Order`, which is what a
test about mapping needs but a dozen fields for a test about a rule or a sync. These fill in
what the platform would (ids, timestamps, the shop's currency, a line item whose total is the
order's, the customer's email) and go through the state's own change methods, so the
platform's webhooks fire and the customer's ``orders_count`` follows, as they do in a shop.
Both take an :class:`~shopsync.testing.EmulatedShop` or a bare :class:`ShopState`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from shopsync.models import (
    ConsentState,
    Customer,
    FinancialStatus,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
)
from shopsync.testing.state import ShopState

__all__ = ["add_customer", "add_order"]


def _state(shop: Any) -> ShopState:
    state = getattr(shop, "state", shop)
    if not isinstance(state, ShopState):
        raise TypeError(f"expected an EmulatedShop or a ShopState, not {type(shop).__name__}")
    return state


def add_customer(
    shop: Any,
    email: str | None = None,
    *,
    consent: str | ConsentState | None = None,
    at: dt.datetime | None = None,
    **fields: Any,
) -> Customer:
    """Add a customer with ``email``; ``consent`` is the email marketing state
    (``"subscribed"``, ``"unsubscribed"``...; single opt-in when subscribed); ``at`` the
    creation time (default: the state's clock); other ``fields`` as on :class:`Customer`."""
    state = _state(shop)
    values: dict[str, Any] = {"email": email, **fields}
    if consent is not None:
        chosen = ConsentState(consent)
        level = OptInLevel.SINGLE_OPT_IN if chosen is ConsentState.SUBSCRIBED else None
        email_consent = MarketingConsent(
            state=chosen, opt_in_level=level or OptInLevel.UNKNOWN, updated_at=at
        )
        values["consent"] = {"email": email_consent}
    if at is not None:
        values.update(created_at=at, updated_at=at)
    return state.add_customer(**values)


def _amount(value: str | int | Decimal) -> Decimal:
    if isinstance(value, (float, bool)) or not isinstance(value, (str, int, Decimal)):
        raise ValueError(f"amount {value!r}: give a str, int or Decimal (money is never a float)")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"amount {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount {value!r} must be zero or more")
    return amount


def add_order(
    shop: Any,
    customer: Customer | str | None,
    total: str | int | Decimal,
    *,
    product: str | None = None,
    quantity: int = 1,
    paid: bool = True,
    at: dt.datetime | None = None,
    **fields: Any,
) -> Order:
    """Add an order of ``customer`` (a model, an id, or None for a guest) worth ``total``
    in the shop's currency: one line of ``quantity`` units of ``product`` (default: the
    shop's first product), paid at ``at`` unless ``paid`` is false (then pending, as an
    order awaiting a bank transfer). Other ``fields`` override the Order's own."""
    state = _state(shop)
    amount = _amount(total)
    if quantity < 1:
        raise ValueError(f"quantity {quantity} must be at least 1")
    with state.lock:
        customer_id = customer.id if isinstance(customer, Customer) else customer
        buyer = None
        if customer_id is not None:
            buyer = state.customers.get(customer_id)
            if buyer is None:
                raise KeyError(f"no customer {customer_id!r} in the shop: add_customer first")
        product_id = product or next(iter(sorted(state.products)), None)
        item = state.products.get(product_id) if product_id is not None else None
        if product is not None and item is None:
            raise KeyError(f"no product {product!r} in the shop")
        when = at or state.stamp()
        currency = state.currency
        money = Money(amount=amount, currency=currency)
        zero = Money(amount=Decimal(0), currency=currency)
        variant = item.variants[0] if item is not None and item.variants else None
        line = {
            "id": state.new_id("line_items"),
            "product_id": item.id if item is not None else None,
            "variant_id": variant.id if variant is not None else None,
            "sku": variant.sku if variant is not None else None,
            "title": item.title if item is not None else "Item",
            "quantity": Decimal(quantity),
            "unit_price": Money(amount=amount / quantity, currency=currency),
            "total": money,
        }
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "email": buyer.email if buyer is not None else None,
            "created_at": when,
            "processed_at": when,
            "updated_at": when,
            "currency": currency,
            "subtotal": money,
            "total_discounts": zero,
            "total_shipping": zero,
            "total_tax": zero,
            "total": money,
            "total_refunded": zero,
            "line_items": (line,),
            "financial_status": FinancialStatus.PAID if paid else FinancialStatus.PENDING,
            "paid_at": when if paid else None,
            **fields,
        }
        if at is None:
            values.pop("updated_at")  # stamped by the state, strictly after the last change
        return state.add_order(**values)
