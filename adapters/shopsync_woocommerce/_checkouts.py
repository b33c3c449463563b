"""WooCommerce checkouts (issue 22): draft and pending-payment orders read as checkouts.

WooCommerce core keeps no abandoned-cart record. What it has: the block checkout saves the
cart as an order in the ``checkout-draft`` status while the shopper fills the form
(``wc-checkout-draft``, registered by the Blocks ``DraftOrders`` service,
plugins/woocommerce/src/Blocks/Domain/Services/DraftOrders.php), and an order placed but not
paid stays ``pending`` ("Pending payment", ``wc_get_order_statuses``). Both are listed by
``GET /wc/v3/orders?status=pending,checkout-draft`` (the REST status enum includes
``checkout-draft``), each with its ``payment_url``: ``WC_Order::get_checkout_payment_url``,
the order-pay page with the order key, where the shopper pays the same order.

A checkout read here keeps the order's id, so when the order is paid later the program sees
the paid order with the checkout's id (the orders sync brings it) and stops; the checkout is
then no longer listed here, and the write of its paid order (``processing`` or ``completed``,
``wc_get_is_paid_statuses``), by a sync or an order webhook, completes its row
(:func:`shopsync.store.checkout_rows.complete_by_orders`), which the recovery rate counts.
Guests (``customer_id`` 0) become checkouts without a customer, which the program never
writes to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from shopsync.adapter import Page
from shopsync.adapter_kit import PageLoop, RawPage
from shopsync.checkouts import Checkout
from shopsync.errors import InvalidRecordError
from shopsync_woocommerce._transport import wc_time
from shopsync_woocommerce.mapping import order_from_rest

__all__ = ["STATUSES", "checkout_from_rest", "read_checkouts"]

STATUSES = "pending,checkout-draft"


def checkout_from_rest(raw: Any, *, shop: str, site_timezone: dt.tzinfo | None = None) -> Checkout:
    """A draft or pending order as a checkout (the order mapping's rules and errors apply)."""
    order = order_from_rest(raw, shop=shop, site_timezone=site_timezone)
    url = raw.get("payment_url") if isinstance(raw, dict) else None
    try:
        return Checkout(
            platform=order.platform,
            shop=order.shop,
            id=order.id,
            customer_id=order.customer_id,
            email=order.email,
            created_at=order.created_at,
            updated_at=order.updated_at,
            completed_at=order.paid_at,
            recovery_url=url if isinstance(url, str) and url else None,
            currency=order.currency,
            subtotal=order.subtotal,
            total=order.total,
            line_items=tuple(
                {
                    "product_id": line.product_id,
                    "variant_id": line.variant_id,
                    "title": line.title,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                }
                for line in order.line_items
            ),
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise InvalidRecordError(f"checkout {order.id} is invalid: {fields}") from None


def read_checkouts(adapter: Any, updated_since: dt.datetime | None) -> Iterator[Page[Checkout]]:
    """Draft and pending orders modified at or after ``updated_since`` (all without), in id
    order; the high-water mark comes with the last page (an interrupted read starts over)."""
    params = {
        "status": STATUSES,
        "orderby": "id",
        "order": "asc",
        "dates_are_gmt": "true",
        "per_page": str(adapter.per_page),
    }
    if updated_since is not None:
        # strict and to the second in WooCommerce: one second earlier misses nothing
        params["modified_after"] = wc_time(updated_since - dt.timedelta(seconds=1))

    def pages() -> Iterator[RawPage]:
        page = 1
        while True:
            rows, total = adapter._list("orders", {**params, "page": str(page)})
            done = not rows or (
                page >= total if total is not None else len(rows) < int(params["per_page"])
            )
            yield RawPage(rows, cursor=str(page), last=done)
            page += 1

    loop: PageLoop[Checkout] = PageLoop(
        "checkouts",
        lambda raw: checkout_from_rest(raw, shop=adapter.shop, site_timezone=adapter.site_timezone),
        ordered=False,
    )
    return loop.run(pages())
