"""What real WooCommerce orders carry and the models must keep: fractional quantities, fees,
taxes, coupons, cancellations, and the refund summary of a webhook body (issue 15 item 4)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from shopsync_woocommerce.mapping import order_from_rest

from shopsync.errors import InvalidRecordError
from shopsync.models import DiscountValueType
from tests.pg_schema import own_schema, shared_url
from tests.woocommerce._fixtures import SHOP, load


def _order(**changes: Any) -> dict[str, Any]:
    order = copy.deepcopy(load("retrieve-an-order"))
    order.update(changes)
    return order


def _line(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    order["line_items"] = [dict(order["line_items"][0], **changes)]
    return order


def test_a_line_sold_by_weight_keeps_its_quantity_exactly() -> None:
    """Weight plugins store 1.5 (kg) in the line's quantity; the docs' ``quantity`` is a number."""
    raw = _line(_order(refunds=[]), quantity=1.5, subtotal="15.00", total="15.00")
    line = order_from_rest(raw, shop=SHOP).line_items[0]
    assert line.quantity == Decimal("1.5")
    assert line.unit_price.amount == Decimal("10.00")  # subtotal / quantity, exact
    assert line.unit_price.amount * line.quantity == Decimal("15.00")


def test_a_partial_refund_of_a_weighed_line() -> None:
    raw = _line(_order(refunds=[{"id": 9, "reason": "", "total": "-5.00"}]), quantity=1.5)
    line_id = raw["line_items"][0]["id"]
    refunds = [
        {
            "id": 9,
            "date_created_gmt": "2017-03-22T17:00:00",
            "amount": "5.00",
            "reason": "",
            "line_items": [
                {
                    "id": 91,
                    "quantity": -0.5,
                    "subtotal": "-5.00",
                    "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": str(line_id)}],
                }
            ],
        }
    ]
    order = order_from_rest(raw, shop=SHOP, refunds=refunds)
    assert order.line_items[0].refunded_quantity == Decimal("0.5")
    assert order.refunds[0].lines[0].quantity == Decimal("0.5")
    assert order.refunds_complete


def test_fee_lines_are_kept() -> None:
    fees = [
        {"id": 5, "name": "Gift wrap", "total": "2.50", "total_tax": "0.50"},
        {"id": 6, "name": "Loyalty discount", "total": "-3.00", "total_tax": "0.00"},
    ]
    order = order_from_rest(_order(fee_lines=fees), shop=SHOP)
    assert [(f.id, f.name, f.total.amount) for f in order.fee_lines] == [
        ("5", "Gift wrap", Decimal("2.50")),
        ("6", "Loyalty discount", Decimal("-3.00")),
    ]
    assert order.fee_lines[0].total_tax is not None
    assert order.fee_lines[0].total_tax.amount == Decimal("0.50")
    with pytest.raises(InvalidRecordError) as caught:
        order_from_rest(_order(fee_lines=[{"id": 5, "name": "x", "total": "abc"}]), shop=SHOP)
    assert caught.value.path == "fee_lines[0].total"


def test_a_webhook_body_lists_refunds_without_lines_so_they_are_incomplete() -> None:
    """An order.updated body carries ``refunds: [{id, reason, total}]`` only (v3 docs, Order
    properties: refunds "List of refunds", read-only, id/reason/total)."""
    summary = [{"id": 726, "reason": "", "total": "-10.00"}]
    webhook = order_from_rest(_order(refunds=summary), shop=SHOP)
    assert not webhook.refunds_complete
    assert [r.id for r in webhook.refunds] == ["726"]
    none = order_from_rest(_order(refunds=[]), shop=SHOP)
    assert none.refunds_complete
    details = [{"id": 726, "date_created_gmt": "2017-03-22T17:00:00", "amount": "10.00"}]
    synced = order_from_rest(_order(refunds=summary), shop=SHOP, refunds=details)
    assert synced.refunds_complete


def test_taxes_and_whether_prices_include_them() -> None:
    raw = _order()
    raw["tax_lines"] = [
        {
            "id": 318,
            "rate_code": "US-CA-STATE TAX",
            "rate_id": 75,
            "label": "State Tax",
            "compound": False,
            "tax_total": "1.35",
            "shipping_tax_total": "0.20",
            "rate_percent": 7.25,
            "meta_data": [],
        }
    ]
    order = order_from_rest(dict(raw, prices_include_tax=True), shop=SHOP)
    assert order.taxes_included is True
    (tax,) = order.tax_lines
    assert (tax.title, tax.rate, tax.amount.amount) == (
        "State Tax",
        Decimal("0.0725"),
        Decimal("1.55"),
    )
    # WooCommerce's REST line totals exclude tax whatever prices_include_tax says
    assert order.line_items[0].total.amount == Decimal(raw["line_items"][0]["total"])
    plain = order_from_rest(load("retrieve-an-order"), shop=SHOP)
    assert plain.taxes_included is False
    assert plain.tax_lines[0].rate is None  # the docs' payload predates rate_percent


def test_coupons_are_discount_applications() -> None:
    coupons = [
        {"id": 7, "code": "spring10", "discount": "4.00", "discount_tax": "0.00"},
        {
            "id": 8,
            "code": "vip",
            "discount": "2.00",
            "discount_type": "percent",
            "nominal_amount": 5,
        },
    ]
    order = order_from_rest(_order(coupon_lines=coupons), shop=SHOP)
    first, second = order.discount_applications
    assert (first.type, first.code, first.value, first.value_type) == (
        "coupon",
        "spring10",
        Decimal("4.00"),
        DiscountValueType.FIXED_AMOUNT,
    )
    assert (second.value, second.value_type) == (Decimal(5), DiscountValueType.PERCENTAGE)
    assert order.discount_codes == ("spring10", "vip")


def test_a_cancelled_order() -> None:
    order = order_from_rest(_order(status="cancelled"), shop=SHOP)
    assert order.cancelled_at == order.updated_at
    assert order.cancel_reason is None  # core keeps no reason


def _store_urls(sqlite_file: Path) -> Iterator[str]:
    """A SQLite store, then (on a run with PostgreSQL) a schema of its own in the shared test
    database, dropped when the loop moves past it."""
    yield f"sqlite:///{sqlite_file}"
    base = shared_url()
    if base:
        with own_schema(base) as url:
            yield url


def test_the_emulated_store_sells_by_weight_and_charges_fees(tmp_path: Any) -> None:
    """End to end: emulator -> adapter -> store -> read back, on SQLite and PostgreSQL."""
    import shopsync
    from shopsync.models import Order
    from shopsync.testing import emulate
    from shopsync.testing.contract import read_all

    with emulate("woocommerce", seed=8, customers=30, orders=200, products=6) as shop:
        records, rejected, _ = read_all(shopsync.connect("woocommerce", **shop.settings), "orders")
        want = {k: shop.emulator.view(v) for k, v in shop.state.orders.items()}  # type: ignore[attr-defined]
    assert not rejected and records == want
    weighed = [o for o in records.values() if any(li.quantity % 1 for li in o.line_items)]
    with_fees = [o for o in records.values() if o.fee_lines]
    assert weighed and with_fees
    for url in _store_urls(tmp_path / "s.db"):
        store = shopsync.Store(url)
        store.upsert(records.values())
        for order in weighed[:5] + with_fees[:5]:
            assert store.get(Order, "woocommerce", shop.state.shop, order.id) == order
        store.close()


def test_a_refund_summary_keeps_what_the_store_holds_until_the_next_sync(tmp_path: Any) -> None:
    import datetime as dt

    import shopsync
    from shopsync.models import Order

    base = _line(_order(), quantity=2, subtotal="20.00", total="20.00")
    line_id = str(base["line_items"][0]["id"])
    first = {
        "id": 726,
        "date_created_gmt": "2017-03-20T10:00:00",
        "amount": "10.00",
        "reason": "broken",
        "line_items": [
            {
                "id": 1,
                "quantity": -1,
                "subtotal": "-10.00",
                "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": line_id}],
            }
        ],
    }
    synced = dict(base, refunds=[{"id": 726, "reason": "broken", "total": "-10.00"}])
    synced["date_modified_gmt"] = "2017-03-21T10:00:00"
    webhook = dict(
        synced,
        refunds=[
            {"id": 727, "reason": "", "total": "-1.00"},
            {"id": 726, "reason": "broken", "total": "-10.00"},
        ],
        date_modified_gmt="2017-03-25T10:00:00",
    )
    for url in _store_urls(tmp_path / "r.db"):
        store = shopsync.Store(url)
        store.upsert([order_from_rest(synced, shop=SHOP, refunds=[first])])
        store.upsert([order_from_rest(webhook, shop=SHOP)])
        held = store.get(Order, "woocommerce", SHOP, str(base["id"]))
        assert held is not None and not held.refunds_complete
        old = {r.id: r for r in held.refunds}["726"]
        assert old.created_at == dt.datetime(2017, 3, 20, 10, tzinfo=dt.timezone.utc)
        assert [(x.line_item_id, x.quantity) for x in old.lines] == [(line_id, Decimal(1))]
        assert held.line_items[0].refunded_quantity == Decimal(1)
        assert {r.id for r in held.refunds} == {"726", "727"}
        assert held.total_refunded.amount == Decimal("11.00")
        second = {"id": 727, "date_created_gmt": "2017-03-25T10:00:00", "amount": "1.00"}
        store.upsert([order_from_rest(webhook, shop=SHOP, refunds=[second, first])])
        whole = store.get(Order, "woocommerce", SHOP, str(base["id"]))
        assert whole is not None and whole.refunds_complete
        assert {r.id: r.created_at.day for r in whole.refunds} == {"726": 20, "727": 25}
        store.close()
