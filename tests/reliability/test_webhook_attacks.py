"""Forged, truncated, replayed, oversized, wrong-shop and unsigned deliveries, over real HTTP.

The receiver is :func:`shopsync.webhooks.wsgi_app` served on 127.0.0.1, holding one synced
customer and order per platform. After every refused delivery the whole store (every row of
every table) must be as it was; the GDPR topics must answer 401 to a bad signature, as
Shopify requires of a public app.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from shopsync_shopify.webhooks import sign as shopify_sign
from shopsync_woocommerce.webhooks import sign as woo_sign
from sqlalchemy import select

from shopsync import webhooks
from shopsync.models import Customer, Order
from shopsync.store import Store
from shopsync.store.schema import metadata
from tests.reliability.test_hostile_input import _fixture

SECRET = "whsec_attack_test_secret"
SHOPIFY_SHOP = "victim.myshopify.com"
WOO_SHOP = "victim.example"
REFUSED: Counter[str] = Counter()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Receiver:
    store: Store
    port: int

    def post(
        self, platform: str, body: bytes, headers: dict[str, str], method: str = "POST"
    ) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, f"/webhooks/{platform}", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def raw(self, request: bytes, *, shut: bool = True) -> int:
        """Send raw bytes (a head and part of a body), then read the status line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            if shut:
                sock.shutdown(socket.SHUT_WR)
            status_line = sock.makefile("rb").readline()
        return int(status_line.split()[1])


@pytest.fixture
def receiver(store: Store) -> Iterator[Receiver]:
    store.shop_id("shopify", SHOPIFY_SHOP)  # as a first sync would
    store.shop_id("woocommerce", WOO_SHOP)
    app = webhooks.wsgi_app(store, {"shopify": SECRET, "woocommerce": SECRET})
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(store, server.server_port)
    server.shutdown()
    server.server_close()


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: repr(r)
            )
            for table in metadata.sorted_tables
        }


# --------------------------------------------------------------------------- deliveries


def order_body(platform: str, **changes: Any) -> bytes:
    if platform == "shopify":
        doc = _fixture("shopify", "ruby-2026-07-order.json")["order"]
    else:
        doc = _fixture("woocommerce", "list-all-orders.json")[1]
    return json.dumps({**doc, **changes}).encode()


def customer_body(platform: str) -> bytes:
    if platform == "shopify":
        return json.dumps(_fixture("shopify", "ruby-2026-07-customer.json")["customer"]).encode()
    return json.dumps(_fixture("woocommerce", "retrieve-a-customer.json")).encode()


def headers(
    platform: str,
    topic: str,
    body: bytes,
    delivery: str,
    *,
    secret: str = SECRET,
    shop: str | None = None,
) -> dict[str, str]:
    if platform == "shopify":
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop or SHOPIFY_SHOP,
            "X-Shopify-Webhook-Id": delivery,
            "X-Shopify-Hmac-Sha256": shopify_sign(secret, body),
        }
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Source": f"https://{shop or WOO_SHOP}/",
        "X-WC-Webhook-Delivery-ID": delivery,
        "X-WC-Webhook-Signature": woo_sign(secret, body),
    }


SIGNATURE = {"shopify": "X-Shopify-Hmac-Sha256", "woocommerce": "X-WC-Webhook-Signature"}
ORDER_TOPIC = {"shopify": "orders/updated", "woocommerce": "order.updated"}
CUSTOMER_TOPIC = {"shopify": "customers/update", "woocommerce": "customer.updated"}


def _seeded(receiver: Receiver, platform: str) -> None:
    for topic, body in ((ORDER_TOPIC, order_body), (CUSTOMER_TOPIC, customer_body)):
        raw = body(platform)
        status, answer = receiver.post(
            platform, raw, headers(platform, topic[platform], raw, f"seed-{topic[platform]}")
        )
        assert (status, answer) == (200, {"status": "applied"})


def refused(
    receiver: Receiver, name: str, status: int, platform: str, body: bytes, hdrs: dict[str, str]
) -> None:
    before = snapshot(receiver.store)
    got, answer = receiver.post(platform, body, hdrs)
    assert got == status, f"{name}: answered {got} {answer}"
    assert snapshot(receiver.store) == before, f"{name}: the store changed"
    REFUSED[f"{platform} {name}"] += 1


# --------------------------------------------------------------------------- attacks


def _attacks(platform: str) -> Iterator[tuple[str, int, bytes, dict[str, str]]]:
    topic = ORDER_TOPIC[platform]
    body = order_body(platform, note="forged")
    good = headers(platform, topic, body, "attack-1")
    sig = SIGNATURE[platform]
    yield "wrong secret", 401, body, headers(platform, topic, body, "a1", secret="guess")
    yield "body changed after signing", 401, body.replace(b"forged", b"f0rged"), good
    yield "signature missing", 401, body, {k: v for k, v in good.items() if k != sig}
    yield "signature empty", 401, body, {**good, sig: ""}
    yield "signature not base64", 401, body, {**good, sig: "!!not-base64!!"}
    yield (
        "signature of another body",
        401,
        body,
        {**good, sig: headers(platform, topic, b"{}", "x")[sig]},
    )
    yield "signature too long", 401, body, {**good, sig: good[sig] * 50}
    truncated = body[: len(body) // 2]
    yield "truncated, original signature", 401, truncated, {**good}
    yield "truncated, signed", 400, truncated, headers(platform, topic, truncated, "a2")
    yield "empty body, signed", 400, b"", headers(platform, topic, b"", "a3")
    yield "JSON array, signed", 400, b"[1, 2]", headers(platform, topic, b"[1, 2]", "a4")
    nested = b"[" * 100_000 + b"]" * 100_000
    yield "nested 100,000 deep, signed", 400, nested, headers(platform, topic, nested, "a5")
    latin = '{"note": "caf\xe9"}'.encode("latin-1")
    yield "not UTF-8, signed", 400, latin, headers(platform, topic, latin, "a6")
    other = "evil.myshopify.com" if platform == "shopify" else "evil.example"
    yield "wrong shop, signed", 400, body, headers(platform, topic, body, "a7", shop=other)
    if platform == "shopify":
        yield "unknown topic, signed", 400, body, headers(platform, "orders/exploded", body, "a8")
        no_shop = {k: v for k, v in good.items() if k != "X-Shopify-Shop-Domain"}
        yield "no shop header", 400, body, no_shop
        for gdpr in ("customers/redact", "customers/data_request", "shop/redact"):
            doc = json.dumps({"shop_domain": SHOPIFY_SHOP, "customer": {"id": 207119551}}).encode()
            forged = headers(platform, gdpr, doc, f"g-{gdpr}", secret="guess")
            yield f"{gdpr} forged", 401, doc, forged
            yield f"{gdpr} unsigned", 401, doc, {k: v for k, v in forged.items() if k != sig}
    else:
        no_source = {k: v for k, v in good.items() if k != "X-WC-Webhook-Source"}
        yield "no source header", 400, body, no_source


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_forged_and_broken_deliveries_are_refused_and_change_nothing(
    receiver: Receiver, platform: str
) -> None:
    _seeded(receiver, platform)
    cases = list(_attacks(platform))
    for name, status, body, hdrs in cases:
        refused(receiver, name, status, platform, body, hdrs)
    # The customer the GDPR forgeries named is still there.
    if platform == "shopify":
        assert receiver.store.get(Customer, platform, SHOPIFY_SHOP, "207119551") is not None
    print(f"\n{platform}: {len(cases)} forged or broken deliveries refused, store unchanged")


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_replayed_delivery_is_applied_once(receiver: Receiver, platform: str) -> None:
    _seeded(receiver, platform)
    shop = SHOPIFY_SHOP if platform == "shopify" else WOO_SHOP
    if platform == "shopify":
        newer = order_body(platform, note="newer", updated_at="2030-01-01T00:00:00Z")
    else:
        newer = order_body(platform, date_modified_gmt="2030-01-01T00:00:00")
    hdrs = headers(platform, ORDER_TOPIC[platform], newer, "replayed-1")
    assert receiver.post(platform, newer, hdrs) == (200, {"status": "applied"})
    after_first = snapshot(receiver.store)
    for _ in range(3):
        assert receiver.post(platform, newer, hdrs) == (200, {"status": "duplicate"})
        REFUSED[f"{platform} replay, same delivery id"] += 1
    assert snapshot(receiver.store) == after_first
    # An old delivery replayed under a new id is applied as a delivery but is stale: the
    # newer order stays.
    old = order_body(platform)
    stale = headers(platform, ORDER_TOPIC[platform], old, "replayed-2-new-id")
    assert receiver.post(platform, old, stale) == (200, {"status": "applied"})
    REFUSED[f"{platform} replay of an older version, new id"] += 1
    stored = receiver.store.get(
        Order, platform, shop, "450789469" if platform == "shopify" else "723"
    )
    assert stored is not None and stored.updated_at.year == 2030
    rows = snapshot(receiver.store)
    assert {k: v for k, v in rows.items() if k != "webhook_deliveries"} == {
        k: v for k, v in after_first.items() if k != "webhook_deliveries"
    }


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_oversized_and_truncated_transfers(receiver: Receiver, platform: str) -> None:
    _seeded(receiver, platform)
    before = snapshot(receiver.store)
    body = order_body(platform)
    hdrs = headers(platform, ORDER_TOPIC[platform], body, "big-1")
    head = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    # Announces 50 MB and sends 1 KB: answered 413 at once, without waiting for the rest.
    oversized = (
        f"POST /webhooks/{platform} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode() + b"x" * 1024
    assert receiver.raw(oversized, shut=False) == 413
    # One byte over the limit.
    over = (
        f"POST /webhooks/{platform} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {webhooks.MAX_BODY + 1}\r\n\r\n"
    ).encode() + body
    assert receiver.raw(over, shut=False) == 413
    # The connection drops half-way through a correctly signed body.
    cut = (
        f"POST /webhooks/{platform} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body[: len(body) // 2]
    assert receiver.raw(cut) == 401
    assert receiver.raw(b"POST /webhooks/shopify HTTP/1.1\r\nContent-Length: abc\r\n\r\n") == 400
    assert receiver.post(platform, body, hdrs, method="GET")[0] == 405
    assert receiver.post("magento", body, hdrs)[0] == 404
    assert snapshot(receiver.store) == before
    REFUSED[f"{platform} oversized, cut, malformed or misrouted transfer"] += 6


def test_woocommerce_ping_and_unknown_topics_store_no_record(receiver: Receiver) -> None:
    _seeded(receiver, "woocommerce")
    before = snapshot(receiver.store)
    ping = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "WooCommerce/9.0 Hookshot (WordPress/6.5); https://victim.example",
    }
    assert receiver.post("woocommerce", b"webhook_id=12", ping) == (200, {"status": "ping"})
    coupon = json.dumps(_fixture("woocommerce", "retrieve-a-coupon.json")).encode()
    hdrs = headers("woocommerce", "coupon.created", coupon, "c-1")
    assert receiver.post("woocommerce", coupon, hdrs) == (200, {"status": "applied"})
    rows = snapshot(receiver.store)
    assert {k: v for k, v in rows.items() if k != "webhook_deliveries"} == {
        k: v for k, v in before.items() if k != "webhook_deliveries"
    }


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    print(f"\nwebhook attacks refused or neutralised: {sum(REFUSED.values())}")
    for name, count in sorted(REFUSED.items()):
        print(f"  {name}: {count}")
