"""The WooCommerce fast path's row mapper against the model mapper, value by value (issue 20).

Every field of real order records (and of their refund records) is replaced in turn by
hostile values; for each record the row mapper either refuses it (the row path then takes it)
or returns exactly the rows the model would have become, and only for a record the model
accepts too."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest
from shopsync_woocommerce import _reads
from shopsync_woocommerce._fast_orders import order_tables
from shopsync_woocommerce.mapping import order_from_rest

import shopsync
from shopsync.errors import InvalidRecordError
from shopsync.store._rows import order_rows
from tests.payload_edits import paths, set_at
from tests.sync.emulated import FAST_RETRIES, emulated
from tests.woocommerce._fixtures import SHOP, load

HOSTILE: list[Any] = [
    None,
    "",
    "\u0000",
    "\ud800",
    -1,
    0,
    1.5,
    2**40,
    True,
    {},
    [],
    " 1.00",
    "-3",
    "1e3",
    "0.00001",
    "100000000000000",
    "2026-02-30T00:00:00",
    "2026-03-01T10:00:00+02:00",
    "a&amp;b",
    "EUR",
    "cancelled",
    " ",
]


def _rows_of_model(raw: Any, refunds: list[Any] | None) -> dict[str, list[dict[str, Any]]] | None:
    try:
        order = order_from_rest(raw, shop=SHOP, refunds=refunds)
    except InvalidRecordError:
        return None
    tables = order_rows(0, order)
    for rows in tables.values():
        for row in rows:
            row.pop("shop_id", None)
    return tables


def _check(raw: Any, refunds: list[Any] | None) -> str:
    fast = order_tables(raw, refunds)
    model = _rows_of_model(raw, refunds)
    if fast is None:
        return "refused"
    assert model is not None, "the fast path accepted what the model refuses"
    assert fast.tables == model
    return "mapped"


def _emulated_records() -> list[tuple[dict[str, Any], list[Any] | None]]:
    """Records of an emulated store as the adapter reads them, one of each kind the fast
    path reads with the mapper's helpers: refunds, shipments, coupons, fees, weights."""
    seen: list[tuple[Any, Any]] = []
    real = _reads.order_tables

    def spy(raw: Any, refunds: Any) -> Any:
        seen.append((raw, refunds))
        return real(raw, refunds)

    with emulated("woocommerce", seed=4, customers=40, orders=300) as shop:
        adapter = shopsync.connect("woocommerce", **shop.settings, retry_policy=FAST_RETRIES)
        adapter.takes_rows = True  # type: ignore[attr-defined]
        with pytest.MonkeyPatch.context() as patch, closing(adapter):
            patch.setattr(_reads, "order_tables", spy)
            for _ in adapter.read_orders():
                pass
    kinds = {
        "refunds": lambda raw, refunds: bool(refunds),
        "coupons": lambda raw, refunds: bool(raw.get("coupon_lines")),
        "fees": lambda raw, refunds: bool(raw.get("fee_lines")),
        "weight": lambda raw, refunds: any(
            type(li.get("quantity")) is float for li in raw["line_items"]
        ),
    }
    return [next((r, f) for r, f in seen if test(r, f)) for test in kinds.values()]


def _fixture_record() -> tuple[dict[str, Any], list[Any]]:
    """Order 723 of the docs: a registered customer's order with two refunds."""
    order = next(o for o in load("list-all-orders") if o["refunds"])
    return order, load("list-all-refunds")


def test_the_fixture_and_emulated_records_map_exactly() -> None:
    for raw, refunds in [_fixture_record(), *_emulated_records()]:
        assert _check(raw, refunds) == "mapped"


@pytest.mark.parametrize("source", ["fixture", "emulated"])
def test_every_field_set_to_hostile_values_is_refused_or_mapped_exactly(source: str) -> None:
    cases = [_fixture_record()] if source == "fixture" else _emulated_records()
    outcomes = {"refused": 0, "mapped": 0}
    for raw, refunds in cases:
        for path in paths(raw):
            for value in HOSTILE:
                outcomes[_check(set_at(raw, path, value), refunds)] += 1
        for path in paths(refunds or []):
            for value in HOSTILE:
                outcomes[_check(raw, set_at(refunds, path, value))] += 1
        outcomes[_check(raw, None)] += 1  # the refund summary alone: refused
    assert outcomes["refused"] and outcomes["mapped"]


@pytest.mark.parametrize(
    "field", ["date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"]
)
def test_a_gmt_date_of_nineteen_characters_with_its_own_offset_is_not_read_as_utc(
    field: str,
) -> None:
    """``2017-03-21T19:16+01`` is as long as ``2017-03-21T19:16:00``: its offset applies."""
    raw, refunds = _fixture_record()
    assert _check({**raw, field: "2017-03-21T19:16+01"}, refunds) == "mapped"


def test_tax_lines_with_their_rates_are_refused_or_mapped_exactly() -> None:
    """WooCommerce 3.7+ writes ``rate_percent`` (the fixtures predate it), and a tax line may
    be null or lack its label: the row mapper reads them as the model's mapper does."""
    raw, refunds = _fixture_record()
    line = {"id": 1, "rate_code": "US-CA-STATE TAX", "label": "State &amp; tax"}
    line |= {"tax_total": "1.20", "shipping_tax_total": "0.30"}
    outcomes = {"refused": 0, "mapped": 0}
    for percent in [*HOSTILE, 20, 7.25, "7.25", "0", "-5", " 19 ", "12.3456789"]:
        outcomes[_check({**raw, "tax_lines": [{**line, "rate_percent": percent}]}, refunds)] += 1
    for field in ("label", "rate_code", "tax_total", "shipping_tax_total"):
        for value in HOSTILE:
            taxed = {**raw, "tax_lines": [{**line, field: value, "rate_percent": "10"}]}
            outcomes[_check(taxed, refunds)] += 1
    for odd in (None, {}, [line, line], [None], [7]):
        outcomes[_check({**raw, "tax_lines": odd}, refunds)] += 1
    assert outcomes["refused"] and outcomes["mapped"] > 30


def test_line_amounts_of_any_spelling_are_refused_or_mapped_exactly() -> None:
    """A line of whole units and plain amounts is read without ``Decimal`` when its unit
    price is exact (``_fast_orders._lines``); the others by the model's rules: both give
    the model's rows."""
    raw, refunds = _fixture_record()
    outcomes = {"refused": 0, "mapped": 0}
    subtotals = ["10.00", "0.01", "9.99", "10", "10.0001", "10.00001", "1.5", "0", "", None]
    subtotals += ["99999999999999.9999", "100000000000000", "7.", ".5", "1e1", 3, 2.5]
    for quantity in (0, 1, 2, 3, 7, 1.5):
        for subtotal in subtotals:
            for total in ("10.00", "0", "12.00", "9.9999", subtotal):
                line = {**raw["line_items"][0], "quantity": quantity}
                line |= {"subtotal": subtotal, "total": total}
                outcomes[_check({**raw, "line_items": [line]}, refunds)] += 1
    assert outcomes["refused"] and outcomes["mapped"] > 100


_SPELLINGS: list[Any] = ["12", "12.5", "12.50", "-0.00", "1e3", "1E-2", " 12", "12\n", "12."]
_SPELLINGS += [".5", "+12", "0012.5", "1_000", "\uff11\uff12", "\u0661\u0662", "12,50", "0x10"]
_SPELLINGS += ["1." + "0" * 40, "0." + "0" * 40 + "1", "12.34567", "12.3400000", "nan", "-inf"]
_SPELLINGS += ["9" * 14 + ".9999", "1" + "0" * 14, "0" * 20 + "7.25", "9" * 14 + "." + "9" * 5]
_SPELLINGS += [None, "", 12, 12.5, 0.1, 1e20, 10**30, True]


def test_amounts_of_every_spelling_are_refused_or_mapped_exactly() -> None:
    """Plain amounts are read to units without ``Decimal`` and kept in a cache
    (``_fast_fields.plain_units``): each spelling, read fresh and then from the cache, in
    currencies of 0, 2 and 3 decimals, gives the model's rows or is refused."""
    raw, refunds = _fixture_record()
    outcomes = {"refused": 0, "mapped": 0}
    for _ in range(2):
        for value in _SPELLINGS:
            for currency in ("USD", "JPY", "BHD"):
                for field in ("total", "discount_total", "shipping_total", "total_tax"):
                    edited = {**raw, "currency": currency, field: value}
                    outcomes[_check(edited, refunds)] += 1
            for field in ("subtotal", "total"):
                line = {**raw["line_items"][0], field: value}
                outcomes[_check({**raw, "line_items": [line]}, refunds)] += 1
            outcomes[_check(raw, [{**refunds[0], "amount": value}, refunds[1]])] += 1
    assert outcomes["refused"] and outcomes["mapped"] > 300


@pytest.mark.parametrize("digits", [255, 256])
@pytest.mark.parametrize("items", [1, 2])
def test_a_shipped_line_id_longer_than_an_id_is_refused(digits: int, items: int) -> None:
    """A tracking item's line id is an ``Id`` (at most 255 characters) as the model reads
    it, with one tracking item (``_one_shipment``) or more (``plain_shipments``)."""
    raw, refunds = _fixture_record()
    item = {"tracking_number": "1Z9", "date_shipped": "1490123000"}
    shipped = [{**item, "line_items": [{"id": 10 ** (digits - 1), "quantity": 1}]}]
    shipped += [{**item, "tracking_id": str(n)} for n in range(2, items + 1)]
    tracked = {**raw, "meta_data": [{"key": "_wc_shipment_tracking_items", "value": shipped}]}
    assert _check(tracked, refunds) == ("mapped" if digits == 255 else "refused")


_ADDRESS_FIELDS = "first_name last_name company address_1 address_2 city state postcode country"
_ADDRESS_FIELDS += " email phone"


@pytest.mark.parametrize(
    ("address", "mapped"),
    [
        ({}, True),
        ({"country": "de"}, True),
        ({"country": "\u00df"}, True),  # "ß".upper() is "SS", as the model path reads it
        ({"phone": "+49 30 1234"}, True),
        ({"first_name": "\u00dcnal", "country": "TR", "phone": ""}, True),
        ({"first_name": "A", "postcode": 80395, "country": "DE"}, True),
        ({"first_name": None, "last_name": "Lee", "country": None}, True),
        ({"first_name": "A\ud800", "country": "DE"}, False),
        ({"city": "Zug\x00", "country": "CH"}, False),
        ({"first_name": "A", "country": "DEU"}, False),
        ({"first_name": "A", "country": "de\n"}, False),  # "$" matches before a newline
        ({"country": "DE\n"}, False),
        ({"first_name": "A", "country": 7}, False),
    ],
    ids=repr,
)
def test_addresses_are_refused_or_mapped_exactly(address: dict[str, Any], mapped: bool) -> None:
    """An address of strings is checked in one go (``_fast_fields.address_row``), any other
    field by field: both give the model's rows, or refuse what the model refuses."""
    raw, refunds = _fixture_record()
    expected = "mapped" if mapped else "refused"
    blank = dict.fromkeys(_ADDRESS_FIELDS.split(), "")
    for written in (address, {**blank, **address}):  # as given, and every field text
        for field in ("billing", "shipping"):
            assert _check({**raw, field: written}, refunds) == expected
        assert _check({**raw, "billing": written, "shipping": written}, refunds) == expected
