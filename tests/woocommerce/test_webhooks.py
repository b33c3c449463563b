"""Webhooks: the receiver helpers, and deliveries made as WC_Webhook::deliver() makes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import woocommerce
from shopsync_woocommerce import WooCommerceAdapter
from shopsync_woocommerce import _render as render
from shopsync_woocommerce.mapping import customer_from_rest, order_from_rest
from shopsync_woocommerce.webhooks import is_ping, parse_webhook, sign, verify

from shopsync.errors import SignatureError, WebhookError
from shopsync.testing import EmulatedShop, emulate

# --- receiver helpers -------------------------------------------------------------------------


def test_verify_matches_an_independent_hmac() -> None:
    body = b'{"id":727,"status":"processing"}'
    expected = base64.b64encode(hmac.new(b"wh-secret", body, hashlib.sha256).digest()).decode()
    assert sign("wh-secret", body) == expected
    assert verify("wh-secret", body, expected)
    assert verify(b"wh-secret", body, f"  {expected}\n")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        ("other", b"{}", None),  # header absent
        ("wh-secret", b"{}", ""),
        ("wh-secret", b"{ }", "sig"),  # one byte changed: re-serialised JSON fails
        ("", b"{}", "x"),
        ("wh-secret", b"{}", "sïg"),
    ],
)
def test_verify_refuses(secret: str, body: bytes, header: str | None) -> None:
    good = sign("wh-secret", b"{}")
    assert not verify(secret, body, header if header != "sig" else good)


def test_verify_refuses_the_right_signature_for_another_body() -> None:
    assert not verify("wh-secret", b'{"id":2}', sign("wh-secret", b'{"id":1}'))


@pytest.mark.parametrize(
    ("body", "headers", "ping"),
    [
        (b"webhook_id=12", None, True),
        (b"webhook_id=12\n", {"Content-Type": "application/x-www-form-urlencoded"}, True),
        (b"webhook_id=12", {"X-WC-Webhook-Topic": "order.created"}, False),
        (b'{"webhook_id": 12}', None, False),
        (b"webhook_id=abc", None, False),
        (b"webhook_id=1&id=5", None, False),
        (b'{"id":727}', None, False),
        (b"\xff\xfe", None, False),
    ],
)
def test_is_ping(body: bytes, headers: dict[str, str] | None, ping: bool) -> None:
    assert is_ping(body, headers) is ping


# --- deliveries from the emulator -------------------------------------------------------------


class Receiver:
    """A local endpoint that records every POST (header names lower-cased) and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.cond:
                    outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def shop() -> Iterator[EmulatedShop]:
    with emulate(
        "woocommerce", seed=2, customers=20, orders=60, products=8, webhook_backoff=0.01
    ) as shop:
        yield shop


TOPICS = ["order.created", "order.updated", "order.deleted", "customer.created", "customer.updated"]


def test_deliveries_are_signed_and_shaped_like_woocommerce(
    shop: EmulatedShop, receiver: Receiver
) -> None:
    shop.subscribe(receiver.url, TOPICS, secret="wh-secret")
    state = shop.state
    order_id = sorted(state.orders)[0]
    state.update_order(order_id, tags=("gift",))
    customer = state.add_customer(email="new.buyer@example.com", first_name="New")
    state.update_customer(customer.id, last_name="Buyer")
    state.delete_order(sorted(state.orders)[-1])
    assert shop.flush_webhooks(10)
    got = receiver.wait(4)
    by_topic = {h["x-wc-webhook-topic"]: (h, b) for h, b in got}
    assert set(by_topic) == {
        "order.updated",
        "customer.created",
        "customer.updated",
        "order.deleted",
    }
    for topic, (headers, body) in by_topic.items():
        resource, event = topic.split(".")
        assert headers["content-type"] == "application/json"
        assert headers["x-wc-webhook-resource"] == resource
        assert headers["x-wc-webhook-event"] == event
        assert headers["x-wc-webhook-source"] == f"http://{shop.state.shop}/"
        assert headers["x-wc-webhook-id"].isdigit()
        assert len(headers["x-wc-webhook-delivery-id"]) == 32
        assert "Hookshot (WordPress/" in headers["user-agent"]
        assert headers["user-agent"].startswith("WooCommerce/")
        assert verify("wh-secret", body, headers["x-wc-webhook-signature"])
        assert not is_ping(body, headers)
    order = order_from_rest(json.loads(by_topic["order.updated"][1]), shop=state.shop)
    assert order.id == order_id and order.tags == ("gift",)
    assert order == render.woocommerce_view(state.orders[order_id]).model_copy(
        update={"refunds": order.refunds}
    )  # refund dates need /refunds; the rest is exact
    created = customer_from_rest(json.loads(by_topic["customer.created"][1]), shop=state.shop)
    assert created.email == "new.buyer@example.com"
    deleted = json.loads(by_topic["order.deleted"][1])
    assert deleted == {"id": int(sorted(state.deleted)[-1][1])} or "id" in deleted


def test_unsubscribed_topics_are_not_delivered(shop: EmulatedShop, receiver: Receiver) -> None:
    shop.subscribe(receiver.url, ["customer.updated"], secret="s")
    shop.state.update_order(sorted(shop.state.orders)[0], tags=("x",))
    assert shop.flush_webhooks(10)
    assert receiver.received == []


def test_webhook_created_through_the_api_pings_then_delivers(
    shop: EmulatedShop, receiver: Receiver
) -> None:
    api = woocommerce.API(
        url=shop.url,
        consumer_key=shop.settings["consumer_key"],
        consumer_secret=shop.settings["consumer_secret"],
        timeout=30,
    )
    response = api.post(
        "webhooks",
        {
            "name": "Orders",
            "topic": "order.created",
            "delivery_url": receiver.url,
            "secret": "api-secret",
        },
    )
    assert response.status_code == 201
    hook = response.json()
    assert (hook["topic"], hook["resource"], hook["event"]) == ("order.created", "order", "created")
    assert "secret" not in hook
    ping_headers, ping_body = receiver.wait(1)[0]
    assert ping_body == f"webhook_id={hook['id']}".encode()
    assert is_ping(ping_body, ping_headers)
    assert "x-wc-webhook-signature" not in ping_headers
    listed = api.get("webhooks").json()
    assert [h["id"] for h in listed] == [hook["id"]]
    template = next(iter(shop.state.orders.values()))
    shop.state.add_order(template.model_copy(update={"id": "99999999"}))
    assert shop.flush_webhooks(10)
    headers, body = receiver.wait(2)[1]
    assert headers["x-wc-webhook-topic"] == "order.created"
    assert verify("api-secret", body, headers["x-wc-webhook-signature"])
    assert json.loads(body)["id"] == 99999999
    assert api.delete(f"webhooks/{hook['id']}", params={"force": "true"}).status_code == 200
    assert api.get("webhooks").json() == []


def test_invalid_webhook_requests(shop: EmulatedShop) -> None:
    api = woocommerce.API(
        url=shop.url,
        consumer_key=shop.settings["consumer_key"],
        consumer_secret=shop.settings["consumer_secret"],
        timeout=30,
    )
    bad_topic = api.post("webhooks", {"topic": "order.exploded", "delivery_url": "http://x/"})
    assert bad_topic.status_code == 400
    assert bad_topic.json()["code"] == "woocommerce_rest_webhook_invalid_topic"
    bad_url = api.post("webhooks", {"topic": "order.created", "delivery_url": "ftp://x"})
    assert bad_url.status_code == 400
    assert api.get("webhooks/424242").status_code == 404


# --- parse_webhook: what shopsync.webhooks.handle applies ---------------------------------------


def delivery(topic: str, payload: Any, secret: str = "wh-secret") -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    resource, _, event = topic.partition(".")
    headers = {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Source": "https://example.com/",  # the site the fixtures' _links name
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-Delivery-ID": "d" * 32,
    }
    return headers, body


def test_parse_webhook_maps_a_signed_order() -> None:
    from ._fixtures import load

    headers, body = delivery("order.updated", load("retrieve-an-order"))
    event = parse_webhook(headers, body, "wh-secret")
    assert (event.topic, event.shop, event.delivery_id) == (
        "order.updated",
        "example.com",
        "d" * 32,
    )
    (order,) = event.records
    assert order == order_from_rest(load("retrieve-an-order"), shop="example.com")
    assert WooCommerceAdapter.parse_webhook(headers, body, "wh-secret") == event


def test_parse_webhook_refuses_a_bad_signature() -> None:
    headers, body = delivery("order.updated", {"id": 1}, secret="other")
    with pytest.raises(SignatureError):
        parse_webhook(headers, body, "wh-secret")
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(SignatureError):
        parse_webhook(headers, body, "wh-secret")


def test_parse_webhook_deletions_pings_others_and_bad_records() -> None:
    headers, body = delivery("order.deleted", {"id": 727})
    (gone,) = parse_webhook(headers, body, "wh-secret").deleted
    assert (gone.resource, gone.record_id) == ("orders", "727")
    ping = parse_webhook(
        {"User-Agent": "WordPress/6.7.1; https://shop.example"}, b"webhook_id=5", "wh-secret"
    )
    assert ping.ping and ping.shop == "shop.example"
    coupon = parse_webhook(*delivery("coupon.updated", {"id": 3}), "wh-secret")
    assert coupon.records == () and coupon.deleted == ()
    bad = parse_webhook(
        *delivery("customer.created", {"id": 9, "date_created_gmt": "x"}), "wh-secret"
    )
    assert [(r.resource, r.record_id) for r in bad.rejected] == [("customers", "9")]
    headers, _ = delivery("order.updated", {})
    with pytest.raises(WebhookError):
        parse_webhook(headers, b"not json", "wh-secret")
