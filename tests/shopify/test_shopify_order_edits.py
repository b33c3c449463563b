"""Edited Shopify orders (issue 15 item 4): stored with the totals and quantities the order
has after the edit, whether read by paging, by bulk or delivered by webhook.

Shopify keeps an edited order's original ``quantity`` and ``total_price``/``totalPriceSet``
and reports the order as it stands in ``current_*`` / ``current*`` (after edits *and* refunds);
shopsync stores the order after edits, before refunds (refunds stay in ``refunds`` and
``total_refunded``), the convention docs/models.md gives.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from shopsync_shopify._render import expressible, order_graphql
from shopsync_shopify.mapping import order_from_graphql, order_from_webhook
from shopsync_shopify.webhooks import parse

from shopsync import loyalty, metrics
from shopsync.errors import InvalidRecordError
from shopsync.models import FinancialStatus, Money, Order
from shopsync.store import Store
from shopsync.testing.state import Event
from shopsync.testing.webhooks import Subscription

from .conftest import load
from .test_shopify_adapter import _connect, _read

SHOP = "fixture-shop.myshopify.com"


def _real() -> dict[str, Any]:
    return copy.deepcopy(load("ruby-2026-07-order.json")["order"])


def _set(amount: str) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": "USD"},
        "presentment_money": {"amount": amount, "currency_code": "USD"},
    }


def _edited_rest(*, refunds: bool) -> dict[str, Any]:
    """The 2026-07 fixture after an edit took two units off line 518995019 (3 ordered)."""
    data = _real()
    line = data["line_items"][1]
    assert line["id"] == 518995019
    line["quantity"], line["current_quantity"] = 3, 1
    data["total_price"] = data["total_price_set"]["shop_money"]["amount"] = "998.94"
    if not refunds:
        data["refunds"] = []
        for item in data["line_items"]:
            item["current_quantity"] = 1 if item["id"] != 466157049 else 0  # removed by edit
    return data


def test_rest_edited_order_without_refunds_stores_the_current_totals() -> None:
    data = _edited_rest(refunds=False)
    data |= {
        "current_total_price": "150.00",
        "current_total_price_set": _set("150.00"),
        "current_subtotal_price": "140.00",
        "current_subtotal_price_set": _set("140.00"),
        "current_total_tax": "10.00",
        "current_total_tax_set": _set("10.00"),
        "current_total_discounts": "5.00",
        "current_total_discounts_set": _set("5.00"),
    }
    order = order_from_webhook(data, shop=SHOP)
    usd = "USD"
    assert order.total == Money(amount="150.00", currency=usd)
    assert order.subtotal == Money(amount="140.00", currency=usd)
    assert order.total_tax == Money(amount="10.00", currency=usd)
    assert order.total_discounts == Money(amount="5.00", currency=usd)
    quantities = {line.id: line.quantity for line in order.line_items}
    assert quantities == {"466157049": 0, "518995019": 1, "703073504": 1}
    removed = next(line for line in order.line_items if line.id == "466157049")
    assert removed.total.amount == 0 and removed.total_discount is not None
    assert removed.total_discount.amount == 0


def test_rest_edited_and_refunded_order_adds_the_refunds_back() -> None:
    # current_* are after edits AND refunds; refunds stay in the order's refunds, so the
    # stored total is current + what the refund lines took off (subtotal and tax).
    order = order_from_webhook(_edited_rest(refunds=True), shop=SHOP)
    usd = "USD"
    assert order.total == Money(amount="598.94", currency=usd)  # 199.65 + 391.33 + 7.96
    assert order.subtotal == Money(amount="587.00", currency=usd)  # 195.67 + 391.33
    assert order.total_tax == Money(amount="11.94", currency=usd)  # 3.98 + 7.96
    assert order.total_discounts == Money(amount="10.00", currency=usd)  # 3.33 + 3.34 + 3.33
    assert order.total_refunded == Money(amount="209.00", currency=usd)
    lines = {line.id: (line.quantity, line.refunded_quantity) for line in order.line_items}
    assert lines == {"466157049": (1, 1), "518995019": (1, 0), "703073504": (1, 1)}


def test_an_order_never_edited_maps_as_before() -> None:
    # Its refunds took less money (209.00) than the lines' value: current_total_price is
    # not total - refunded, and must not be read as an edit.
    order = order_from_webhook(_real(), shop=SHOP)
    assert order.total.amount == Decimal("598.94")
    assert order.total_tax.amount == Decimal("11.94")
    assert order.total_discounts.amount == Decimal("10.00")


def test_a_payload_without_current_fields_keeps_the_original_totals() -> None:
    data = _edited_rest(refunds=False)
    for key in [k for k in data if k.startswith("current_total") or k.startswith("current_sub")]:
        del data[key]
    order = order_from_webhook(data, shop=SHOP)
    assert order.total.amount == Decimal("998.94")  # what the payload says, as before
    assert order.total_tax.amount == Decimal("11.94")
    assert {line.id: line.quantity for line in order.line_items}["518995019"] == 1


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("current_total_price_set", "current_total_price_set"),
        ("current_total_tax_set", "current_total_tax_set"),
    ],
)
def test_a_malformed_current_amount_is_refused_with_its_path(key: str, path: str) -> None:
    data = _edited_rest(refunds=False)
    data[key] = _set("12,00")
    with pytest.raises(InvalidRecordError) as caught:
        order_from_webhook(data, shop=SHOP)
    assert caught.value.path is not None and caught.value.path.startswith(path)


def test_graphql_malformed_current_amount_is_refused_with_its_path(shopify_shop: Any) -> None:
    shop, _, after = _shop_with_an_edit(shopify_shop)
    node = _plain(order_graphql(shop.state.orders[after.id], shop.state))
    assert order_from_graphql(node, shop=SHOP).total == after.total
    node["currentTotalPriceSet"] = {"shopMoney": {"amount": "x", "currencyCode": "USD"}}
    with pytest.raises(InvalidRecordError) as caught:
        order_from_graphql(node, shop=SHOP)
    assert caught.value.path is not None and caught.value.path.startswith("currentTotalPriceSet")


def _plain(value: Any) -> Any:
    """A rendered GraphQL node with its lazy connections resolved to plain lists."""
    if callable(value):
        return _plain(value({}))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _shop_with_an_edit(shopify_shop: Any) -> tuple[Any, Order, Order]:
    """An emulated shop holding a paid two-line order (1 x 20.00; 3 x 15.00 less 3.00) of
    a customer, edited: the first line removed, the second lowered to 2 units."""
    shop = shopify_shop(customers=10, orders=20, seed=11)
    state = shop.state
    base = next(o for o in state.orders.values() if o.customer_id and o.line_items)
    cur = base.currency

    def money(amount: str) -> Money:
        return Money(amount=amount, currency=cur)

    template = base.line_items[0]
    lines = (
        template.model_copy(
            update={
                "id": "99000771",
                "quantity": Decimal(1),
                "refunded_quantity": Decimal(0),
                "unit_price": money("20.00"),
                "total_discount": money("0.00"),
                "total": money("20.00"),
            }
        ),
        template.model_copy(
            update={
                "id": "99000772",
                "quantity": Decimal(3),
                "refunded_quantity": Decimal(0),
                "unit_price": money("15.00"),
                "total_discount": money("3.00"),
                "total": money("42.00"),
            }
        ),
    )
    before = state.add_order(
        base.model_copy(
            update={
                "id": "99000077",
                "name": "#99000077",
                "line_items": lines,
                "refunds": (),
                "fulfillments": (),
                "financial_status": FinancialStatus.PAID,
                "paid_at": base.processed_at,
                "cancelled_at": None,
                "closed_at": None,
                "cancel_reason": None,
                "test": False,
                "taxes_included": False,
                "tax_lines": (),
                "discount_applications": (),
                "total_tip": None,
                "total_duties": None,
                "subtotal": money("62.00"),
                "total_discounts": money("3.00"),
                "total_shipping": money("5.00"),
                "total_tax": money("6.20"),
                "total": money("73.20"),
                "total_refunded": money("0.00"),
            }
        )
    )
    first, second = before.line_items
    state.edit_order(before.id, first.id, 0)  # a line removed
    after = state.edit_order(before.id, second.id, 2)  # one unit fewer
    return shop, before, after


def test_the_emulator_edit_keeps_original_fields_and_lowers_the_order(shopify_shop: Any) -> None:
    shop, before, after = _shop_with_an_edit(shopify_shop)
    assert after.total < before.total and after.subtotal < before.subtotal
    assert after.line_items[0].quantity == 0
    assert after.line_items[1].quantity == before.line_items[1].quantity - 1
    rest = shop.emulator.webhook_payload(
        "orders/updated", Event("order.edited", "orders", after.id, after, after.updated_at)
    )
    assert rest["total_price"] == f"{before.total.amount}"  # Shopify keeps the original
    assert Decimal(rest["current_total_price"]) == after.total.amount
    assert rest["line_items"][0]["quantity"] == before.line_items[0].quantity
    assert rest["line_items"][0]["current_quantity"] == 0
    edit = shop.emulator.webhook_payload(
        "orders/edited", Event("order.edited", "orders", after.id, after, after.updated_at)
    )
    # One commit, one webhook: the last edit took one unit off the second line.
    assert edit["order_edit"]["line_items"] == {
        "additions": [],
        "removals": [{"id": int(after.line_items[1].id), "delta": 1}],
    }


def test_paging_bulk_and_webhook_store_the_edited_order(shopify_shop: Any) -> None:
    shop, before, after = _shop_with_an_edit(shopify_shop)
    shop.state.refund_order(after.id, lines={after.line_items[1].id: 1})  # and a refund
    expected = expressible(shop.state.orders[after.id])
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, rejected = _read(adapter.read_orders())
    with _connect(shop, bulk_threshold=1, bulk_poll_interval=0.01) as adapter:
        bulk, _ = _read(adapter.backfill_orders())
    assert not rejected
    assert paged[after.id] == expected and bulk[after.id] == expected
    assert paged[after.id].total < before.total
    sub = Subscription("1", "orders/updated", "http://127.0.0.1:9/unused", "s3cret")
    order = shop.state.orders[after.id]
    delivery = shop.emulator.webhook(
        Event("order.edited", "orders", order.id, order, order.updated_at), sub
    )
    assert delivery is not None
    assert parse("orders/updated", delivery.body, delivery.headers, secret="s3cret") == expected


def test_the_edit_fires_orders_edited_and_orders_updated(shopify_shop: Any) -> None:
    shop, _, after = _shop_with_an_edit(shopify_shop)
    event = Event("order.edited", "orders", after.id, after, after.updated_at)
    fired = []
    for topic in ("orders/edited", "orders/updated", "orders/create"):
        sub = Subscription("1", topic, "http://127.0.0.1:9/unused", "s3cret")
        if shop.emulator.webhook(event, sub) is not None:
            fired.append(topic)
    assert fired == ["orders/edited", "orders/updated"]


def _figures(store: Store, order: Order, customer: Any) -> tuple[Any, ...]:
    """(net spend, orders, AOV, lifetime points) of a store holding only ``order``."""
    store.upsert([customer, order])
    platform, shop = order.platform, order.shop
    as_of = order.created_at + dt.timedelta(days=60)
    value = dict(
        metrics.customer_value(store, platform, shop, as_of)
        .select("customer_id", "net_spend")
        .iter_rows()
    )
    m = metrics.period(
        store, platform, shop, start=order.created_at - dt.timedelta(days=1), end=as_of
    )
    loyalty.update_ledger(store, platform, shop, as_of=as_of)
    points = loyalty.balance(store, (platform, shop, customer.id)).lifetime
    return value.get(customer.id), m.orders, m.average_order_value, points


def test_revenue_aov_and_points_follow_the_edited_order(shopify_shop: Any, tmp_path: Any) -> None:
    shop, before, after = _shop_with_an_edit(shopify_shop)
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, _ = _read(adapter.read_orders())
    edited = paged[after.id]
    customer = shop.state.customers[after.customer_id]
    with Store(f"sqlite:///{tmp_path / 'edited.db'}") as store:
        spend, count, aov, points = _figures(store, edited, customer)
    with Store(f"sqlite:///{tmp_path / 'original.db'}") as store:
        spend0, _, aov0, points0 = _figures(store, expressible(before), customer)
    net = edited.total.amount - edited.total_refunded.amount
    assert edited.total < before.total
    assert (spend, count, aov) == (net, 1, net)
    assert spend0 == before.total.amount and aov0 == before.total.amount
    assert 0 < points < points0  # points on the goods kept, not on those taken off


def test_graphql_node_without_current_fields_keeps_the_totals_as_placed(
    shopify_shop: Any,
) -> None:
    # An older version or a partial node: edited, but no current figures to read.
    shop, before, after = _shop_with_an_edit(shopify_shop)
    node = _plain(order_graphql(shop.state.orders[after.id], shop.state))
    for key in [k for k in node if k.startswith("current") and k != "currentTotalDutiesSet"]:
        del node[key]
    order = order_from_graphql(node, shop=SHOP)
    assert order.total == before.total and order.total_tax == before.total_tax
    assert [line.quantity for line in order.line_items] == [0, 2]


def test_a_line_added_by_an_edit_counts(shopify_shop: Any) -> None:
    shop, _, after = _shop_with_an_edit(shopify_shop)
    added = shop.state.edit_order(after.id, "99000779", 2, title="Gift wrap", unit_price="7.50")
    assert added.total > after.total and added.line_items[-1].quantity == 2
    with _connect(shop, bulk_threshold=None) as adapter:
        paged, rejected = _read(adapter.read_orders())
    assert not rejected and paged[after.id] == expressible(shop.state.orders[after.id])
    edit = shop.emulator.webhook_payload(
        "orders/edited", Event("order.edited", "orders", added.id, added, added.updated_at)
    )
    assert edit["order_edit"]["line_items"]["additions"] == [{"id": 99000779, "delta": 2}]


def test_an_unedited_order_never_reads_the_current_fields() -> None:
    # Today's mapping of an order never edited does not depend on them, even malformed.
    data = _real()
    data["current_total_price_set"] = _set("12,00")
    data["refunds"][0]["refund_line_items"][0]["total_tax_set"] = _set("bad")
    assert order_from_webhook(data, shop=SHOP) == order_from_webhook(_real(), shop=SHOP)
