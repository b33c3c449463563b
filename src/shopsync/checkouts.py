"""Checkouts a shopper started and may not have finished: the shared model.

A checkout counts once the shopper gave contact details (Shopify calls it abandoned from
then on until it completes: "A checkout is considered abandoned when a customer adds contact
information but doesn't complete their purchase. Includes both abandoned and recovered
checkouts", https://shopify.dev/docs/api/admin-graphql/latest/queries/abandonedCheckouts).
WooCommerce core has no such record: its block checkout keeps a ``checkout-draft`` order and
an unpaid order stays ``pending`` (plugins/woocommerce/src/StoreApi/Utilities/OrderController.php,
``wc_register_order_status`` of ``wc-checkout-draft``); its adapter maps those orders here.

Money is :class:`~shopsync.models.Money` (Decimal and currency), times are aware UTC, ids
strings, like every shared model. ``completed_at`` is set once the checkout became an order;
the abandoned-checkout program (:mod:`shopsync.core.abandoned`) also stops on any later
order of the same customer, so a missing completion never sends a reminder after a purchase.
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from shopsync._quantity import Quantity
from shopsync.models import (
    Amount,
    Email,
    Id,
    Text,
    UTCDateTime,
    _currency_code,
    _Frozen,
    _Record,
)

__all__ = ["Checkout", "CheckoutLine"]


class CheckoutLine(_Frozen):
    """One line of a checkout: what the shopper meant to buy."""

    product_id: Id | None = None
    """None: the product was deleted since."""
    variant_id: Id | None = None
    title: Text
    quantity: Quantity
    unit_price: Amount


class Checkout(_Record):
    """A started checkout (abandoned until ``completed_at``), keyed like orders by id."""

    customer_id: Id | None = None
    """None for a guest: the program then has nobody it may write to."""
    email: Email = None
    created_at: UTCDateTime
    updated_at: UTCDateTime
    completed_at: UTCDateTime | None = None
    """When it became an order (None: not, or not yet)."""
    recovery_url: Text | None = None
    """Where the shopper takes the checkout up again (Shopify ``abandonedCheckoutUrl``,
    WooCommerce ``payment_url``). A secret-bearing link: never logged."""
    currency: str
    subtotal: Amount
    total: Amount
    line_items: tuple[CheckoutLine, ...] = ()
    token_key: Id | None = None
    """A second key the platform names the checkout by, where ``id`` is derived from
    another token (Shopify: ``id`` from the cart token its recovery link names, this from
    its checkout token, which deletions and orders name). A digest, never the token."""
    number: Id | None = None
    """The platform's own number of the checkout, where ``id`` is not it (Shopify: the
    ``AbandonedCheckout`` gid's number, the REST ``id`` a ``checkouts/delete`` body names).
    Plain: it is no secret (it opens nothing without the shop's credentials)."""

    _currency = field_validator("currency", mode="before")(_currency_code)

    @model_validator(mode="after")
    def _one_currency(self) -> Checkout:
        amounts = [self.subtotal, self.total, *(line.unit_price for line in self.line_items)]
        others = sorted({m.currency for m in amounts} - {self.currency})
        if others:
            raise ValueError(f"checkout in {self.currency} carries amounts in {others}")
        return self

    def __repr__(self) -> str:
        # the recovery URL carries the checkout's secret token: keep it out of reprs and logs
        return (
            f"Checkout(platform={self.platform!r}, shop={self.shop!r}, id={self.id!r}, "
            f"customer_id={self.customer_id!r}, completed_at={self.completed_at!r})"
        )

    __str__ = __repr__
