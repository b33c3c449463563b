"""What a real Shopify order carries that the models used to lose (issue 15 item 4), read
from the REST 2026-07 fixture (shopify-api-ruby, copied in tests/fixtures/shopify) and from
the GraphQL shape the emulator renders: test orders, ``taxes_included``, edited orders'
current quantities, cancel reason, discount applications, tax lines, tips and duties."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

from shopsync_shopify._render import expressible
from shopsync_shopify.mapping import order_from_webhook

from shopsync.models import DiscountValueType, Money, TaxLine

from .conftest import load
from .test_shopify_adapter import _connect, _read

SHOP = "fixture-shop.myshopify.com"


def _real() -> dict[str, Any]:
    return copy.deepcopy(load("ruby-2026-07-order.json")["order"])


def test_rest_order_keeps_tax_lines_discounts_and_cancel_reason() -> None:
    data = _real()
    data["cancel_reason"] = "customer"
    order = order_from_webhook(data, shop=SHOP)
    assert order.test is False and order.taxes_included is False
    assert order.cancel_reason == "customer"
    assert order.tax_lines == (
        TaxLine(
            title="State Tax", rate=Decimal("0.06"), amount=Money(amount="11.94", currency="USD")
        ),
    )
    [discount] = order.discount_applications
    assert (discount.type, discount.code, discount.value) == ("discount_code", "TENOFF", 10)
    assert discount.value_type is DiscountValueType.FIXED_AMOUNT
    assert discount.allocation == "across"
    assert order.total_tip is None  # 0.00 received: no tip


def test_rest_test_orders_tips_and_duties() -> None:
    data = _real()
    data |= {
        "test": True,
        "total_tip_received": "5.00",
        "current_total_duties_set": {
            "shop_money": {"amount": "12.30", "currency_code": "USD"},
            "presentment_money": {"amount": "12.30", "currency_code": "USD"},
        },
    }
    order = order_from_webhook(data, shop=SHOP)
    assert order.test is True
    assert order.total_tip == Money(amount="5.00", currency="USD")
    assert order.total_duties == Money(amount="12.30", currency="USD")


def test_an_edited_line_uses_its_current_quantity() -> None:
    data = _real()
    data["refunds"] = []
    data["line_items"][0]["quantity"] = 3
    data["line_items"][0]["current_quantity"] = 1  # two removed by an order edit
    order = order_from_webhook(data, shop=SHOP)
    assert order.line_items[0].quantity == 1
    data["refunds"] = _real()["refunds"]  # refunded lines stay counted as refunds
    order = order_from_webhook(data, shop=SHOP)
    refunded = {line.id: line.refunded_quantity for line in order.line_items}
    assert all(line.quantity >= line.refunded_quantity for line in order.line_items)
    assert sum(refunded.values()) == 2


def test_taxes_included_prices_are_converted_to_net() -> None:
    data = _real()
    data["taxes_included"] = True
    order = order_from_webhook(data, shop=SHOP)
    assert order.taxes_included is True
    line = order.line_items[1]  # 199.00 gross less its discount, with 3.98 tax on that
    share = sum(Decimal(a["amount"]) for a in data["line_items"][1]["discount_allocations"])
    assert line.total.amount == Decimal("199.00") - share - Decimal("3.98")
    assert line.unit_price.amount < Decimal("199.00")
    assert order.subtotal.amount == Decimal("597.00") - Decimal("11.94")


def test_paging_and_webhook_agree_on_the_new_facts(shopify_shop: Any) -> None:
    shop = shopify_shop(customers=10, orders=20)
    state = shop.state
    base = next(o for o in state.orders.values() if o.line_items and not o.refunds)
    special = base.model_copy(
        update={
            "id": "99000001",
            "test": True,
            "taxes_included": False,
            "cancel_reason": "fraud",
            "cancelled_at": base.created_at + dt.timedelta(hours=1),
            "total_tip": Money(amount="4.00", currency=base.currency),
            "tax_lines": (TaxLine(title="VAT", rate=Decimal("0.2"), amount=base.total_tax),),
        }
    )
    state.add_order(special)
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, rejected = _read(adapter.read_orders())
    assert not rejected
    got = paged["99000001"]
    assert got.test and got.cancel_reason == "fraud" and got.total_tip == special.total_tip
    assert got.tax_lines == special.tax_lines
    assert got == expressible(state.orders["99000001"])


def test_an_emulated_shop_with_order_variety_round_trips(shopify_shop: Any) -> None:
    # a fixed day: which orders are still open (so editable) follows the generation's end,
    # and on some days none had a line of several units
    end = dt.datetime(2026, 12, 4, 12, tzinfo=dt.timezone.utc)
    shop = shopify_shop(customers=60, orders=600, order_variety=True, end=end)
    orders = list(shop.state.orders.values())
    assert any(o.test for o in orders) and any(o.total_tip for o in orders)
    assert any(o.total_duties for o in orders) and any(o.tax_lines for o in orders)
    assert all(o.cancel_reason for o in orders if o.cancelled_at)
    if not shop.state.order_edits:  # the variety edits 2 % of the still unfulfilled orders:
        _edit_one(shop.state)  # on some days none (CI saw it); edit one as the merchant would
    assert shop.state.order_edits  # an edited order among them (issue 15 item 4)
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, rejected = _read(adapter.read_orders())
        bulk, _ = _read(adapter.backfill_orders())
    assert not rejected
    expected = {k: expressible(v) for k, v in shop.state.orders.items()}
    assert paged == expected and bulk == expected


def _edit_one(state: Any) -> None:
    """Take one unit off the first line of an open order that has more than one unit."""
    for order in state.ordered("orders"):
        if order.cancelled_at is None and not order.fulfillments and not order.refunds:
            for line in order.line_items:
                if line.quantity > 1:
                    state.edit_order(order.id, line.id, int(line.quantity) - 1)
                    return
    raise AssertionError("no open order with a line of several units to edit")
