"""WooCommerce JSON -> shared models: the real payloads field by field, and the bad-input rules."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from shopsync_woocommerce.mapping import (
    META,
    customer_from_rest,
    order_from_rest,
    product_from_rest,
)

from shopsync.errors import InvalidRecordError
from shopsync.models import (
    ConsentState,
    FinancialStatus,
    FulfillmentStatus,
    Money,
    OptInLevel,
)

from ._fixtures import CUSTOMER_FILES, ORDER_FILES, PRODUCT_FILES, SHOP, load, records

UTC = dt.timezone.utc


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- every real payload maps ------------------------------------------------------------------


@pytest.mark.parametrize(("label", "payload"), records(*ORDER_FILES))
def test_every_real_order_maps(label: str, payload: dict[str, Any]) -> None:
    order = order_from_rest(payload, shop=SHOP)
    assert order.id == str(payload["id"])
    assert order.total.amount == Decimal(payload["total"])
    assert len(order.line_items) == len(payload["line_items"])


@pytest.mark.parametrize(("label", "payload"), records(*CUSTOMER_FILES))
def test_every_real_customer_maps(label: str, payload: dict[str, Any]) -> None:
    customer = customer_from_rest(payload, shop=SHOP)
    assert customer.id == str(payload["id"])
    assert customer.email == payload["email"]


@pytest.mark.parametrize(("label", "payload"), records(*PRODUCT_FILES))
def test_every_real_product_maps(label: str, payload: dict[str, Any]) -> None:
    product = product_from_rest(payload, shop=SHOP)
    assert product.id == str(payload["id"])
    assert product.title == payload["name"]


# --- field by field -------------------------------------------------------------------------


def test_guest_order_727_field_by_field() -> None:
    src = load("retrieve-an-order")
    order = order_from_rest(src, shop=SHOP)
    assert order.platform == "woocommerce"
    assert order.shop == SHOP
    assert order.id == "727"
    assert order.name == "#727"
    assert order.customer_id is None  # customer_id 0 is a guest, not customer "0"
    assert order.is_guest
    assert order.email == "john.doe@example.com"
    assert order.created_at == at("2017-03-22T19:28:02")  # the _gmt twin, not site-local 16:28
    assert order.updated_at == at("2017-03-22T19:28:08")
    assert order.processed_at == order.created_at
    assert order.paid_at == at("2017-03-22T19:28:08")
    assert order.closed_at is None
    assert order.cancelled_at is None
    assert order.financial_status is FinancialStatus.PAID  # processing
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED
    assert order.currency == "USD"
    assert order.subtotal == usd("18.00")  # line totals 6.00 + 12.00
    assert order.total_discounts == usd("0.00")
    assert order.total_shipping == usd("10.00")
    assert order.total_tax == usd("1.35")
    assert order.total == usd("29.35")
    assert order.total_refunded == usd("0")
    assert order.source == "rest-api"
    assert order.discount_codes == ()
    assert order.refunds == () and order.fulfillments == () and order.tags == ()
    first, second = order.line_items
    assert (first.id, first.product_id, first.variant_id, first.sku) == ("315", "93", None, None)
    assert first.title == "Woo Single #1"
    assert (first.quantity, first.unit_price, first.total) == (2, usd("3.00"), usd("6.00"))
    assert first.total_discount == usd("0")
    assert (second.id, second.product_id, second.variant_id, second.sku) == (
        "316",
        "22",
        "23",
        "Bar3",
    )
    assert second.title == "Ship Your Idea – Color: Black, Size: M Test"  # &ndash; unescaped
    assert (second.quantity, second.unit_price, second.total) == (1, usd("12.00"), usd("12.00"))
    billing = order.billing_address
    assert billing is not None
    assert (billing.first_name, billing.last_name, billing.address1) == (
        "John",
        "Doe",
        "969 Market",
    )
    assert (billing.city, billing.province, billing.zip) == ("San Francisco", "CA", "94103")
    assert (billing.country_code, billing.phone, billing.company) == ("US", "(555) 555-5555", None)
    assert order.shipping_address is not None and order.shipping_address.phone is None


def test_order_723_with_its_refunds_field_by_field() -> None:
    src = load("list-all-orders")[1]
    refunds = load("list-all-refunds")
    order = order_from_rest(src, shop=SHOP, refunds=refunds)
    assert order.customer_id == "26"
    assert order.email == "joao.silva@example.com"
    assert order.paid_at is None  # bank transfer, date_paid null
    assert order.closed_at == at("2017-03-21T19:54:51")
    assert order.financial_status is FinancialStatus.PARTIALLY_REFUNDED  # 19.00 of 39.00
    assert order.fulfillment_status is FulfillmentStatus.FULFILLED  # completed
    assert order.total_refunded == usd("19.00")
    assert [r.id for r in order.refunds] == ["724", "726"]  # oldest first
    r724, r726 = order.refunds
    assert r724.created_at == at("2017-03-21T19:55:37")
    assert r724.amount == usd("9.00")
    assert r724.note is None
    assert [(x.line_item_id, x.quantity, x.subtotal) for x in r724.lines] == [
        ("311", 1, usd("9.00"))
    ]
    assert r726.created_at == at("2017-03-21T20:07:11") and r726.lines == ()
    lines = {li.id: li for li in order.line_items}
    assert lines["311"].refunded_quantity == 1
    assert lines["313"].refunded_quantity == 0
    assert order.billing_address is not None and order.billing_address.country_code == "BR"


def test_order_refund_summary_without_details() -> None:
    """Without /refunds the summary gives amounts; the last modification stands in for dates."""
    src = load("list-all-orders")[1]
    order = order_from_rest(src, shop=SHOP)
    assert [(r.id, r.amount) for r in order.refunds] == [
        ("724", usd("9.00")),
        ("726", usd("10.00")),
    ]
    assert all(r.created_at == order.updated_at for r in order.refunds)


def test_customer_25_field_by_field() -> None:
    src = load("retrieve-a-customer")
    customer = customer_from_rest(src, shop=SHOP)
    assert customer.id == "25"
    assert customer.email == "john.doe@example.com"
    assert (customer.first_name, customer.last_name) == ("John", "Doe")
    assert customer.phone == "(555) 555-5555"
    assert customer.created_at == at("2017-03-21T19:09:28")
    assert customer.updated_at == at("2017-03-21T19:09:30")
    address = customer.default_address
    assert address is not None
    assert (address.address1, address.city, address.province) == (
        "969 Market",
        "San Francisco",
        "CA",
    )
    assert (address.zip, address.country_code) == ("94103", "US")
    assert customer.tags == () and customer.birthday is None
    assert customer.consent.email.state is ConsentState.UNKNOWN
    assert customer.orders_count is None and customer.total_spent is None  # not in wc/v3


def test_simple_product_794_field_by_field() -> None:
    src = load("retrieve-a-product")
    product = product_from_rest(src, shop=SHOP)
    assert product.id == "794"
    assert product.title == "Premium Quality"
    assert product.categories == ("Clothing", "T-shirts")
    assert product.product_type == "Clothing"
    assert product.vendor is None
    assert product.tags == ()
    assert product.status == "active"  # publish
    assert product.created_at == at("2017-03-23T20:01:14")
    assert product.variants == ()  # a simple product has no variations


def test_variable_product_with_its_variations() -> None:
    src = copy.deepcopy(load("list-all-products")[0])
    assert src["type"] == "variable"
    src["variations"] = [732, 733]
    variations = load("list-all-product-variations")
    product = product_from_rest(src, shop=SHOP, variations=variations)
    assert [(v.id, v.sku, v.title, v.price) for v in product.variants] == [
        ("732", None, "Black", usd("9.00")),
        ("733", None, "Green", usd("9.00")),
    ]
    bare = product_from_rest(src, shop=SHOP)
    assert [(v.id, v.price) for v in bare.variants] == [("732", None), ("733", None)]


# --- the status table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "paid", "financial", "fulfillment"),
    [
        ("pending", False, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
        ("checkout-draft", False, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
        ("on-hold", False, FinancialStatus.AUTHORIZED, FulfillmentStatus.ON_HOLD),
        ("processing", True, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
        ("completed", True, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
        ("refunded", True, FinancialStatus.REFUNDED, FulfillmentStatus.UNFULFILLED),
        ("cancelled", False, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
        ("cancelled", True, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),
        ("trash", False, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
        ("failed", False, FinancialStatus.VOIDED, FulfillmentStatus.UNFULFILLED),
        ("wc-completed", True, FinancialStatus.PAID, FulfillmentStatus.FULFILLED),
        ("shipped", True, FinancialStatus.PAID, FulfillmentStatus.UNFULFILLED),  # plugin status
        ("awaiting-pickup", False, FinancialStatus.PENDING, FulfillmentStatus.UNFULFILLED),
    ],
)
def test_status_table(
    status: str, paid: bool, financial: FinancialStatus, fulfillment: FulfillmentStatus
) -> None:
    src = copy.deepcopy(load("retrieve-an-order"))
    src["status"] = status
    if not paid:
        src["date_paid"] = src["date_paid_gmt"] = None
    order = order_from_rest(src, shop=SHOP)
    assert (order.financial_status, order.fulfillment_status) == (financial, fulfillment)
    assert (order.cancelled_at is not None) == (status == "cancelled")


def test_cancelled_order_is_dated_by_its_last_modification() -> None:
    src = copy.deepcopy(load("retrieve-an-order"))
    src["status"] = "cancelled"
    order = order_from_rest(src, shop=SHOP)
    assert order.cancelled_at == order.updated_at == at("2017-03-22T19:28:08")


def test_shipment_tracking_items_become_fulfilments() -> None:
    src = copy.deepcopy(load("retrieve-an-order"))
    items = [
        {
            "tracking_provider": "usps",
            "custom_tracking_provider": "",
            "custom_tracking_link": "",
            "tracking_number": "9400100",
            "date_shipped": "1490227200",
            "tracking_id": "a1b2",
        },
        {
            "tracking_provider": "",
            "custom_tracking_provider": "Local Courier",
            "custom_tracking_link": "https://courier.example/t/77",
            "tracking_number": "77",
            "date_shipped": "1490313600",
            "tracking_id": "c3d4",
            "line_items": [{"id": 315, "quantity": 2}],
        },
    ]
    src["meta_data"].append({"id": 1, "key": META["tracking"], "value": items})
    order = order_from_rest(src, shop=SHOP)
    first, second = order.fulfillments
    assert (first.id, first.tracking_company, first.tracking_numbers) == (
        "a1b2",
        "usps",
        ("9400100",),
    )
    assert first.created_at == dt.datetime(2017, 3, 23, tzinfo=UTC)
    assert first.lines == ()
    assert (second.tracking_company, second.tracking_urls) == (
        "Local Courier",
        ("https://courier.example/t/77",),
    )
    assert [(x.line_item_id, x.quantity) for x in second.lines] == [("315", 2)]
    assert (
        order.fulfillment_status is FulfillmentStatus.FULFILLED
    )  # an item without lines ships all
    src["meta_data"][-1]["value"] = items[1:]
    partial = order_from_rest(src, shop=SHOP)
    assert (
        partial.fulfillment_status is FulfillmentStatus.PARTIALLY_FULFILLED
    )  # line 316 not shipped


def test_shopsync_meta_on_customers() -> None:
    src = copy.deepcopy(load("retrieve-a-customer"))
    src["meta_data"] = [
        {"id": 1, "key": META["tags"], "value": ["vip", "newsletter"]},
        {"id": 2, "key": META["birthday"], "value": "1990-05-17"},
        {
            "id": 3,
            "key": META["consent"],
            "value": {
                "email": {
                    "state": "subscribed",
                    "opt_in_level": "confirmed_opt_in",
                    "updated_at": "2017-03-21T19:09:28Z",
                }
            },
        },
    ]
    customer = customer_from_rest(src, shop=SHOP)
    assert customer.tags == ("vip", "newsletter")
    assert customer.birthday == dt.date(1990, 5, 17)
    assert customer.consent.email.state is ConsentState.SUBSCRIBED
    assert customer.consent.email.opt_in_level is OptInLevel.CONFIRMED_OPT_IN
    assert customer.consent.sms.state is ConsentState.UNKNOWN
    src["meta_data"] = [{"id": 1, "key": META["tags"], "value": "a, b,,c"}]
    assert customer_from_rest(src, shop=SHOP).tags == ("a", "b", "c")


# --- bad input rules --------------------------------------------------------------------------


def order_with(**changes: Any) -> dict[str, Any]:
    src = copy.deepcopy(load("retrieve-an-order"))
    src.update(changes)
    return src


def rejected(payload: Any, **kw: Any) -> InvalidRecordError:
    with pytest.raises(InvalidRecordError) as info:
        order_from_rest(payload, shop=SHOP, **kw)
    assert info.value.raw is payload
    return info.value


def test_site_local_date_without_gmt_twin_is_refused_without_a_site_timezone() -> None:
    src = order_with(date_created_gmt=None)
    error = rejected(src)
    assert error.path == "date_created"
    assert "offset" in error.reason


def test_site_local_date_is_converted_with_the_site_timezone() -> None:
    src = order_with(date_created_gmt=None)
    order = order_from_rest(src, shop=SHOP, site_timezone=dt.timezone(dt.timedelta(hours=-3)))
    assert order.created_at == at("2017-03-22T19:28:02")


def test_gmt_twin_wins_and_explicit_offsets_are_honoured() -> None:
    src = order_with(
        date_created="1999-01-01T00:00:00", date_modified_gmt="2017-03-22T21:28:08+02:00"
    )
    order = order_from_rest(src, shop=SHOP)
    assert order.created_at == at("2017-03-22T19:28:02")
    assert order.updated_at == at("2017-03-22T19:28:08")


def test_missing_date_modified_means_never_modified() -> None:
    src = copy.deepcopy(load("retrieve-a-customer"))
    src["date_modified"] = src["date_modified_gmt"] = None
    customer = customer_from_rest(src, shop=SHOP)
    assert customer.updated_at == customer.created_at


def test_garbage_date_is_rejected_with_its_path() -> None:
    assert rejected(order_with(date_paid_gmt="yesterday")).path == "date_paid_gmt"


def test_empty_money_string_is_zero() -> None:
    src = order_with(discount_total="", shipping_total="")
    src["line_items"][0]["subtotal"] = ""
    src["line_items"][0]["total"] = ""
    order = order_from_rest(src, shop=SHOP)
    assert order.total_discounts == usd("0") and order.total_shipping == usd("0")
    assert order.line_items[0].total == usd("0")


def test_empty_product_price_means_no_price() -> None:
    src = copy.deepcopy(load("list-all-products")[0])
    src["variations"] = [1]
    product = product_from_rest(
        src, shop=SHOP, variations=[{"id": 1, "regular_price": "", "price": ""}]
    )
    assert product.variants[0].price is None


@pytest.mark.parametrize("field", ["total", "shipping_total", "total_tax"])
def test_non_decimal_money_is_rejected(field: str) -> None:
    error = rejected(order_with(**{field: "abc"}))
    assert error.path == field


def test_null_objects_are_empty() -> None:
    src = order_with(billing=None, shipping=None, meta_data=None, coupon_lines=None, refunds=None)
    src["line_items"].append(None)
    order = order_from_rest(src, shop=SHOP)
    assert order.billing_address is None and order.shipping_address is None
    assert order.email is None
    assert len(order.line_items) == 2


@pytest.mark.parametrize(
    ("field", "value"), [("line_items", "oops"), ("billing", ["x"]), ("refunds", 3)]
)
def test_wrong_types_are_rejected(field: str, value: Any) -> None:
    assert rejected(order_with(**{field: value})).path == field


def test_line_of_a_deleted_product() -> None:
    src = order_with()
    src["line_items"][1]["product_id"] = 0
    src["line_items"][1]["variation_id"] = 0
    line = order_from_rest(src, shop=SHOP).line_items[1]
    assert line.product_id is None and line.variant_id is None
    assert line.title.startswith("Ship Your Idea") and line.total == usd("12.00")


def test_guest_is_none_never_customer_zero() -> None:
    assert order_from_rest(order_with(customer_id=0), shop=SHOP).customer_id is None
    assert order_from_rest(order_with(customer_id="0"), shop=SHOP).customer_id is None
    assert order_from_rest(order_with(customer_id=None), shop=SHOP).customer_id is None
    assert order_from_rest(order_with(customer_id=26), shop=SHOP).customer_id == "26"
    assert rejected(order_with(customer_id="abc")).path == "customer_id"
    assert rejected(order_with(customer_id=-1)).path == "customer_id"


def test_fractional_quantity_is_kept_exactly_with_the_money() -> None:
    src = order_with()
    src["line_items"][0].update(quantity=1.5, subtotal="6.00", total="6.00")
    line = order_from_rest(src, shop=SHOP).line_items[0]
    assert line.quantity == Decimal("1.5")
    assert line.unit_price == usd("4.00")
    assert line.unit_price.amount * line.quantity == Decimal("6.00")
    src["line_items"][0].update(quantity=2.0)
    assert order_from_rest(src, shop=SHOP).line_items[0].quantity == 2
    src["line_items"][0].update(quantity=-1)
    assert rejected(src).path == "line_items[0].quantity"
    src["line_items"][0].update(quantity="1.23456")  # more places than the store keeps
    assert rejected(src).path == "line_items[0].quantity"


def test_uneven_unit_price_is_kept_to_four_places() -> None:
    src = order_with()
    src["line_items"][0].update(quantity=3, subtotal="10.00", total="10.00")
    assert order_from_rest(src, shop=SHOP).line_items[0].unit_price == usd("3.3333")


def test_not_an_object_and_bad_ids() -> None:
    for payload in ([], "order", None):
        with pytest.raises(InvalidRecordError):
            order_from_rest(payload, shop=SHOP)  # type: ignore[arg-type]
    assert rejected(order_with(id=0)).path == "id"
    assert rejected(order_with(id=True)).path == "id"


def test_missing_currency_is_rejected() -> None:
    assert rejected(order_with(currency="")).path == "currency"
    assert rejected(order_with(currency="XXY")).path == "currency"


def test_invalid_email_is_rejected() -> None:
    src = copy.deepcopy(load("retrieve-a-customer"))
    src["email"] = "not an email"
    with pytest.raises(InvalidRecordError) as info:
        customer_from_rest(src, shop=SHOP)
    assert info.value.path == "email"


def test_an_amount_too_large_for_decimal_arithmetic_is_refused_with_a_reason() -> None:
    src = copy.deepcopy(load("list-all-orders")[1])
    src["line_items"][0]["subtotal"] = "1" + "0" * 40  # quantize cannot hold it
    src["line_items"][0]["quantity"] = 3
    with pytest.raises(InvalidRecordError, match=r"malformed record|amount"):
        order_from_rest(src, shop=SHOP)


_TRACKING_ITEM = {
    "tracking_provider": "",
    "custom_tracking_provider": "FedEx",
    "custom_tracking_link": "https://www.fedex.com/fedextrack/?trknbr=5081",
    "tracking_number": "5081",
    "date_shipped": "1702000043",
    "tracking_id": "40000016",
    "status": "success",
    "date_delivered": "1702192215",
    "line_items": [{"id": 20000016, "quantity": 1}, {"id": 20000017, "quantity": 3}],
}
_ODD_VALUES: list[Any] = [
    None, "", " 12", "-5", "1.5", "１２", "abc", 0, -1, 10**30, 1.0, 2.5, True, [], {},
]  # fmt: skip


def _shipments(read: Any, items: Any) -> Any:
    from shopsync_woocommerce._map_common import _Ctx

    try:
        return read(_Ctx({"id": 1}), items)
    except InvalidRecordError as exc:
        return ("refused", exc.path, str(exc))


@pytest.mark.parametrize("field", [*_TRACKING_ITEM, "line_items.id", "line_items.quantity"])
def test_plain_tracking_items_read_quickly_as_the_checked_reader_reads_them(field: str) -> None:
    """``_plain_fulfillments`` (the common shape, without building field paths) gives what
    the checked reader gives, or passes the items on to it: same shipments, same refusals."""
    from shopsync_woocommerce._map_orders import (
        _checked_fulfillments,
        _fulfillments,
        _plain_fulfillments,
    )

    base = [copy.deepcopy(_TRACKING_ITEM), {**copy.deepcopy(_TRACKING_ITEM), "tracking_id": ""}]
    assert _plain_fulfillments(copy.deepcopy(base)) is not None  # the plain shape is quick
    quick = 0
    for value in _ODD_VALUES:
        items = copy.deepcopy(base)
        if field.startswith("line_items."):
            items[0]["line_items"][1][field.split(".")[1]] = value
        else:
            items[0][field] = value
        quick += _plain_fulfillments(copy.deepcopy(items)) is not None
        got = _shipments(_fulfillments, items)
        assert got == _shipments(_checked_fulfillments, items), (field, value)
        for odd in (None, 7, "x"):  # an item or a line that is not an object
            assert _shipments(_fulfillments, [*items, odd]) == _shipments(
                _checked_fulfillments, [*items, odd]
            )
    assert _shipments(_fulfillments, []) == [] == _shipments(_checked_fulfillments, [])
    assert quick > 0 or field in ("date_shipped", "line_items.id")
