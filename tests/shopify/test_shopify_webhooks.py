"""Webhook signature verification (official vector) and emulator deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr
from shopsync_shopify._render import expressible
from shopsync_shopify.mapping import customer_from_webhook, order_from_webhook
from shopsync_shopify.webhooks import parse, sign, verify

from shopsync.errors import SignatureError

VECTOR_SECRET = "test_secret_key"
VECTOR_BODY = b'{"foo": "bar"}'
VECTOR_HMAC = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="


def test_official_vector() -> None:
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HMAC)
    assert verify(SecretStr(VECTOR_SECRET), VECTOR_BODY, VECTOR_HMAC)
    assert sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_HMAC


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "not base64 !!",
        "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g",  # padding missing
        base64.b64encode(b"short").decode(),
        base64.b64encode(hashlib.sha256(b"other").digest()).decode(),
        VECTOR_HMAC.lower(),
        "é" * 44,
    ],
)
def test_rejects_missing_malformed_or_wrong(header: str | None) -> None:
    assert verify(VECTOR_SECRET, VECTOR_BODY, header) is False


def test_body_and_secret_must_match_exactly() -> None:
    assert not verify(VECTOR_SECRET, VECTOR_BODY + b" ", VECTOR_HMAC)
    assert not verify("test_secret_keY", VECTOR_BODY, VECTOR_HMAC)
    assert not verify("", VECTOR_BODY, VECTOR_HMAC)


def test_parse_refuses_bad_signature() -> None:
    with pytest.raises(SignatureError):
        parse(
            "orders/create",
            b"{}",
            {"X-Shopify-Hmac-Sha256": "AAAA"},
            secret="s",
            shop="a.myshopify.com",
        )


class _Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def by_topic(self, topic: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.got if h["x-shopify-topic"] == topic]


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


TOPICS = [
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "fulfillments/create",
    "customers/create",
    "customers/update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
]
HEADERS = [
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-webhook-id",
    "x-shopify-api-version",
    "x-shopify-triggered-at",
    "x-shopify-event-id",
]


def test_emulator_webhooks_are_signed_rest_payloads(shopify_shop: Any, receiver: _Receiver) -> None:
    shop = shopify_shop(customers=5, orders=10)
    shop.subscribe(receiver.url, TOPICS, secret="hook-secret")
    state = shop.state
    customer = state.add_customer(email="new.buyer@example.com", first_name="New")
    state.update_customer(customer.id, last_name="Buyer")
    order = state.add_order(
        customer_id=customer.id,
        email="new.buyer@example.com",
        financial_status="pending",
        subtotal={"amount": "10.00", "currency": "USD"},
        total_discounts={"amount": "0", "currency": "USD"},
        total_shipping={"amount": "0", "currency": "USD"},
        total_tax={"amount": "0", "currency": "USD"},
        total={"amount": "10.00", "currency": "USD"},
        total_refunded={"amount": "0", "currency": "USD"},
        line_items=[
            {
                "id": "999001",
                "title": "Mug",
                "quantity": 2,
                "unit_price": {"amount": "5.00", "currency": "USD"},
                "total": {"amount": "10.00", "currency": "USD"},
            }
        ],
        processed_at=state.clock(),
    )
    state.pay_order(order.id)
    state.fulfill_order(
        order.id,
        tracking_company="UPS",
        tracking_numbers=["1Z"],
        tracking_urls=["https://ups.example/1Z"],
    )
    state.refund_order(order.id, lines={"999001": 1})
    paid_unfulfilled = next(
        o
        for o in state.orders.values()
        if o.cancelled_at is None and o.id != order.id and o.financial_status.value == "paid"
    )
    state.cancel_order(paid_unfulfilled.id)
    state.request_customer_data(customer.id)
    state.redact_customer(customer.id)
    state.redact_shop()
    assert shop.flush_webhooks(10)
    for topic in TOPICS:
        assert receiver.by_topic(topic), f"no {topic} delivery"
    for headers, body in receiver.got:
        for name in HEADERS:
            assert headers.get(name), name
        assert headers["x-shopify-shop-domain"] == state.shop
        assert verify("hook-secret", body, headers["x-shopify-hmac-sha256"])
        expected = base64.b64encode(
            hmac.new(b"hook-secret", body, hashlib.sha256).digest()
        ).decode()
        assert headers["x-shopify-hmac-sha256"] == expected
    # the last orders/updated of our order maps to the state's order (as Shopify can express it)
    latest = [
        json.loads(b)
        for _, b in receiver.by_topic("orders/updated")
        if json.loads(b)["id"] == int(order.id)
    ]
    mapped = order_from_webhook(latest[-1], shop=state.shop)
    assert mapped == expressible(state.orders[order.id])  # the redacted order, the last change
    created = [json.loads(b) for _, b in receiver.by_topic("customers/create")]
    assert customer_from_webhook(created[-1], shop=state.shop).email == "new.buyer@example.com"
    redact = json.loads(receiver.by_topic("customers/redact")[-1][1])
    assert (
        redact["customer"]["id"] == int(customer.id) and int(order.id) in redact["orders_to_redact"]
    )
    refunds = [json.loads(b) for _, b in receiver.by_topic("refunds/create")]
    ours = [r for r in refunds if r["order_id"] == int(order.id)]
    assert len(ours) == 1 and ours[0]["refund_line_items"][0]["quantity"] == 1
    assert any(r["order_id"] == int(paid_unfulfilled.id) for r in refunds)  # cancel refunds
