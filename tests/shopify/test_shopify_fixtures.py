"""Real Shopify payloads (tests/fixtures/shopify, see PROVENANCE.md) map without error, and
the mapped values match the source JSON field by field."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from shopsync_shopify.mapping import (
    customer_from_graphql,
    customer_from_webhook,
    order_from_graphql,
    order_from_webhook,
)

from shopsync.errors import InvalidRecordError
from shopsync.models import ConsentState, FinancialStatus, FulfillmentStatus, OptInLevel

from .conftest import FIXTURES, SHOP, load

ORDER_FILES = sorted(p.name for p in FIXTURES.glob("*.json") if "order" in p.name)
CUSTOMER_FILES = sorted(p.name for p in FIXTURES.glob("*.json") if "customer" in p.name)


def _records(name: str, key: str) -> list[dict[str, Any]]:
    data = load(name)
    found = data.get(key) or data.get(key + "s")
    return found if isinstance(found, list) else [found]


def _when(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


@pytest.mark.parametrize("name", ORDER_FILES)
def test_every_copied_order_maps_and_matches_its_source(name: str) -> None:
    for raw in _records(name, "order"):
        order = order_from_webhook(raw, shop=SHOP)
        assert order.id == str(raw["id"])
        assert order.currency == raw["currency"]
        assert order.email == raw["email"]
        assert order.total.amount == Decimal(raw["total_price"])
        assert order.subtotal.amount == Decimal(raw["subtotal_price"])
        assert order.total_tax.amount == Decimal(raw["total_tax"])
        assert order.total_discounts.amount == Decimal(raw["total_discounts"])
        assert order.created_at == _when(raw["created_at"])
        assert order.updated_at == _when(raw["updated_at"])
        assert order.financial_status.value == raw["financial_status"]
        assert order.customer_id == (str(raw["customer"]["id"]) if raw.get("customer") else None)
        assert order.discount_codes == tuple(d["code"] for d in raw.get("discount_codes", []))
        assert len(order.line_items) == len(raw.get("line_items", []))
        for line, src in zip(order.line_items, raw.get("line_items", []), strict=False):
            assert line.id == str(src["id"]) and line.quantity == src["quantity"]
            assert line.unit_price.amount == Decimal(src["price"])
            assert line.sku == src["sku"] and line.title == src["title"]
            assert line.product_id == str(src["product_id"]) and line.variant_id == str(
                src["variant_id"]
            )
            discount = sum(
                (Decimal(a["amount"]) for a in src.get("discount_allocations", [])), Decimal(0)
            )
            if not src.get("discount_allocations"):
                discount = Decimal(src.get("total_discount", "0"))
            assert line.total_discount is not None and line.total_discount.amount == discount
            assert line.total.amount == Decimal(src["price"]) * src["quantity"] - discount
        assert len(order.refunds) == len(raw.get("refunds", []))
        for refund, src in zip(order.refunds, raw.get("refunds", []), strict=False):
            assert refund.id == str(src["id"]) and refund.note == src["note"]
            assert refund.created_at == _when(src["created_at"])
            assert refund.amount.amount == sum(
                (
                    Decimal(t["amount"])
                    for t in src["transactions"]
                    if t["kind"] == "refund" and t["status"] == "success"
                ),
                Decimal(0),
            )
            for rl, srl in zip(refund.lines, src["refund_line_items"], strict=False):
                assert (
                    rl.line_item_id == str(srl["line_item_id"]) and rl.quantity == srl["quantity"]
                )
                assert rl.subtotal is not None and rl.subtotal.amount == Decimal(
                    str(srl["subtotal"])
                )
        assert order.total_refunded == sum(
            (r.amount for r in order.refunds), order.total_refunded - order.total_refunded
        )
        assert len(order.fulfillments) == len(raw.get("fulfillments", []))
        for f, src in zip(order.fulfillments, raw.get("fulfillments", []), strict=False):
            assert f.id == str(src["id"]) and f.status == src["status"]
            assert f.tracking_numbers == tuple(src["tracking_numbers"])
            assert f.tracking_urls == tuple(src["tracking_urls"])
            assert f.tracking_company == src["tracking_company"]
            assert f.created_at == _when(src["created_at"])
            assert [(fl.line_item_id, fl.quantity) for fl in f.lines] == [
                (str(li["id"]), li["quantity"]) for li in src["line_items"]
            ]


def test_newest_order_in_detail() -> None:
    order = order_from_webhook(load("ruby-2026-07-order.json"), shop=SHOP)
    assert order.financial_status is FinancialStatus.PARTIALLY_REFUNDED
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED
    assert order.total.amount == Decimal("598.94") and order.total_refunded.amount == Decimal(
        "209.00"
    )
    assert (
        order.paid_at == order.processed_at == dt.datetime(2008, 1, 10, 16, tzinfo=dt.timezone.utc)
    )
    assert {li.id: li.refunded_quantity for li in order.line_items} == {
        "466157049": 1,
        "518995019": 0,
        "703073504": 1,
    }
    assert order.line_items[0].total_discount.amount == Decimal("3.34")
    assert order.refunds[0].lines[0].subtotal.amount == Decimal("195.66")
    assert order.billing_address is not None and order.billing_address.country_code == "US"
    assert order.billing_address.address2 is None  # "" reads as None
    assert order.source == "web" and order.name == "#1001"


@pytest.mark.parametrize("name", CUSTOMER_FILES)
def test_every_copied_customer_maps_and_matches_its_source(name: str) -> None:
    for raw in _records(name, "customer"):
        customer = customer_from_webhook(raw, shop=SHOP)
        assert customer.id == str(raw["id"]) and customer.email == raw["email"]
        assert customer.first_name == raw["first_name"] and customer.last_name == raw["last_name"]
        assert customer.created_at == _when(raw["created_at"])
        assert customer.updated_at == _when(raw["updated_at"])
        assert customer.tags == tuple(t.strip() for t in raw["tags"].split(",") if t.strip())
        consent = raw.get("email_marketing_consent")
        if consent:
            assert customer.consent.email.state.value == consent["state"]
            assert customer.consent.email.updated_at == _when(consent["consent_updated_at"])
        else:
            assert customer.consent.email.state is (
                ConsentState.SUBSCRIBED
                if raw.get("accepts_marketing")
                else ConsentState.NOT_SUBSCRIBED
            )
        sms = raw.get("sms_marketing_consent")
        if sms:
            assert customer.consent.sms.state.value == sms["state"]
            assert customer.consent.sms.opt_in_level.value == (sms["opt_in_level"] or "unknown")
        if raw.get("currency") and raw.get("total_spent") is not None:
            assert customer.total_spent is not None
            assert customer.total_spent.amount == Decimal(raw["total_spent"])
        if raw.get("default_address"):
            assert customer.default_address is not None
            assert customer.default_address.city == raw["default_address"]["city"]
            assert customer.default_address.zip == raw["default_address"]["zip"]


def test_newest_customer_consent() -> None:
    customer = customer_from_webhook(load("ruby-2026-07-customer.json"), shop=SHOP)
    assert customer.consent.email.state is ConsentState.NOT_SUBSCRIBED
    assert customer.consent.email.opt_in_level is OptInLevel.UNKNOWN
    assert customer.consent.sms.opt_in_level is OptInLevel.SINGLE_OPT_IN
    assert customer.tags == ("Léon", "Noël")
    assert customer.orders_count == 1 and customer.total_spent is not None


# ---------------------------------------------------------------------------- the rules


def _order() -> dict[str, Any]:
    return json.loads(json.dumps(load("ruby-2026-07-order.json")["order"]))


def test_guest_order_and_no_email() -> None:
    raw = _order()
    raw["customer"] = None
    raw["email"] = raw["contact_email"] = None
    order = order_from_webhook(raw, shop=SHOP)
    assert order.customer_id is None and order.is_guest and order.email is None


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r.update(total_price="abc", total_price_set=None), "total_price"),
        (lambda r: r["line_items"][1].update(price="1,5", price_set=None), "line_items[1].price"),
        (lambda r: r.update(created_at="yesterday"), "created_at"),
        (lambda r: r.update(processed_at="2024-01-01T00:00:00"), "processed_at"),  # no offset
        (lambda r: r.update(financial_status="teleported"), "financial_status"),
        (lambda r: r["refunds"][0].update(created_at=None), "refunds[0].created_at"),
    ],
)
def test_bad_orders_are_rejected_with_the_field_path(mutate: Any, path: str) -> None:
    raw = _order()
    mutate(raw)
    with pytest.raises(InvalidRecordError) as info:
        order_from_webhook(raw, shop=SHOP)
    assert info.value.path == path
    assert info.value.raw is raw


def test_unknown_enums_that_do_not_reject() -> None:
    raw = _order()
    raw["fulfillment_status"] = "beamed"
    raw["financial_status"] = "expired"
    raw["customer"]["email_marketing_consent"] = {"state": "mystery", "opt_in_level": "maybe"}
    order = order_from_webhook(raw, shop=SHOP)
    assert order.fulfillment_status is FulfillmentStatus.UNFULFILLED
    assert order.financial_status is FinancialStatus.VOIDED
    customer = customer_from_webhook(raw["customer"], shop=SHOP)
    assert customer.consent.email.state is ConsentState.UNKNOWN
    assert customer.consent.email.opt_in_level is OptInLevel.UNKNOWN
    assert not customer.consent.email.allows_marketing


def test_graphql_rules() -> None:
    node = {
        "id": "gid://shopify/Customer/5",
        "email": None,
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-02T00:00:00Z",
        "tags": ["vip"],
        "emailMarketingConsent": {
            "marketingState": "SUBSCRIBED",
            "marketingOptInLevel": "CONFIRMED_OPT_IN",
            "consentUpdatedAt": "2024-01-01T00:00:00Z",
        },
        "smsMarketingConsent": None,
        "numberOfOrders": "3",
        "amountSpent": {"amount": "12.50", "currencyCode": "EUR"},
        "metafield": {"value": "1990-05-17"},
    }
    customer = customer_from_graphql(node, shop=SHOP)
    assert customer.id == "5" and customer.email is None and customer.orders_count == 3
    assert customer.consent.email.allows_marketing and customer.birthday == dt.date(1990, 5, 17)
    assert customer.total_spent is not None and customer.total_spent.currency == "EUR"
    with pytest.raises(InvalidRecordError) as info:
        customer_from_graphql(
            {**node, "amountSpent": {"amount": "1.2.3", "currencyCode": "EUR"}}, shop=SHOP
        )
    assert info.value.path == "amountSpent.amount"
    with pytest.raises(InvalidRecordError) as info:
        order_from_graphql({"id": "gid://shopify/Order/1"}, shop=SHOP)
    assert info.value.path == "currencyCode"
