"""Forged, truncated, replayed, oversized, wrong-shop and unsigned deliveries, over real HTTP.

The receiver is :func:`shopsync.webhooks.wsgi_app` served on 127.0.0.1, holding one synced
customer and order per platform. After every refused delivery the whole store (every row of
every table) must be as it was; the GDPR topics must answer 401 to a bad signature, as
Shopify requires of a public app.
"""

from __future__ import annotations

import datetime as dt
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
SHOPIFY_SHOP = "jsmith.myshopify.com"  # the shop the fixture order's status URL names
WOO_SHOP = "example.com"  # the host the fixtures' _links name, as a real store's do
SECOND = {"shopify": "second.myshopify.com", "woocommerce": "second.example"}
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
    store.shop_id("shopify", SECOND["shopify"])  # a second shop of the same app and secret
    store.shop_id("woocommerce", SECOND["woocommerce"])
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
    # Deliveries are logged and the customer is queued for re-planning (changed_customers, a
    # work queue, and note_counter, the notes' sequence on SQLite); no record changes.
    queues = ("webhook_deliveries", "changed_customers", "note_counter")
    assert {k: v for k, v in rows.items() if k not in queues} == {
        k: v for k, v in after_first.items() if k not in queues
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
        "User-Agent": f"WooCommerce/9.0 Hookshot (WordPress/6.5); https://{WOO_SHOP}",
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


# --------------------------------------------------------------------------- replays that rebind
# Both platforms sign the body only: topic, shop and trigger time travel beside it, unsigned,
# and every shop of one Shopify app (or every WooCommerce site sharing a secret) signs alike.


def _shopify_compliance(topic: str, shop: str = SHOPIFY_SHOP) -> bytes:
    """Genuine bodies of the compliance topics, shaped as shopify.dev's samples (2026-07)."""
    base: dict[str, Any] = {"shop_id": 548380009, "shop_domain": shop}
    who = {"id": 207119551, "email": "bob.norman@mail.example.com", "phone": "+16136120707"}
    if topic == "shop/redact":
        return json.dumps(base).encode()
    if topic == "customers/redact":
        return json.dumps({**base, "customer": who, "orders_to_redact": [450789469]}).encode()
    doc = {**base, "customer": who, "orders_requested": [450789469], "data_request": {"id": 9}}
    return json.dumps(doc).encode()


def _rebound(platform: str) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    """(name, body, headers): a captured, correctly signed body sent again with a new
    delivery id under another topic or shop."""
    other = SECOND[platform]
    order, customer = order_body(platform), customer_body(platform)
    if platform == "shopify":
        request = _shopify_compliance("customers/data_request")
        redact = _shopify_compliance("customers/redact")
        wipe = _shopify_compliance("shop/redact")
        gone = json.dumps({"id": 450789469}).encode()
        cases = [
            ("data request replayed as customers/redact", request, "customers/redact", None),
            ("customers/redact replayed as shop/redact", redact, "shop/redact", None),
            ("data request replayed as shop/redact", request, "shop/redact", None),
            ("shop/redact replayed for another shop", wipe, "shop/redact", other),
            ("customers/redact replayed for another shop", redact, "customers/redact", other),
            ("data request replayed for another shop", request, "customers/data_request", other),
            ("customer body replayed as customers/delete", customer, "customers/delete", None),
            ("order body replayed as orders/delete", order, "orders/delete", None),
            ("order body replayed as customers/update", order, "customers/update", None),
            ("customer body replayed as orders/updated", customer, "orders/updated", None),
            ("orders/delete body replayed as customers/update", gone, "customers/update", None),
            ("compliance body replayed as orders/updated", redact, "orders/updated", None),
            ("order body replayed for another shop", order, "orders/updated", other),
        ]
    else:
        gone = json.dumps({"id": 723}).encode()
        cases = [
            ("order body replayed as customer.updated", order, "customer.updated", None),
            ("customer body replayed as order.updated", customer, "order.updated", None),
            ("order body replayed as order.deleted", order, "order.deleted", None),
            ("customer body replayed as customer.deleted", customer, "customer.deleted", None),
            ("order body replayed as product.updated", order, "product.updated", None),
            ("deletion body replayed as order.updated", gone, "order.updated", None),
            ("order body replayed for another site", order, "order.updated", other),
            ("customer body replayed for another site", customer, "customer.updated", other),
        ]
    for n, (name, body, topic, shop) in enumerate(cases):
        yield name, body, headers(platform, topic, body, f"fresh-{n}", shop=shop)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_signed_body_replayed_under_another_topic_or_shop_is_refused(
    receiver: Receiver, platform: str
) -> None:
    _seeded(receiver, platform)
    cases = list(_rebound(platform))
    for name, body, hdrs in cases:
        refused(receiver, name, 400, platform, body, hdrs)
    # Nothing was wiped or erased: both shops and the seeded customer are still there.
    shops = receiver.store.shops()
    assert (platform, SECOND[platform]) in shops
    shop = SHOPIFY_SHOP if platform == "shopify" else WOO_SHOP
    assert (platform, shop) in shops
    customer_id = "207119551" if platform == "shopify" else "25"
    assert receiver.store.get(Customer, platform, shop, customer_id) is not None


def test_genuine_compliance_bodies_still_apply(receiver: Receiver) -> None:
    _seeded(receiver, "shopify")
    request = _shopify_compliance("customers/data_request")
    got = receiver.post(
        "shopify", request, headers("shopify", "customers/data_request", request, "r1")
    )
    assert got == (200, {"status": "applied"})
    redact = _shopify_compliance("customers/redact")
    got = receiver.post("shopify", redact, headers("shopify", "customers/redact", redact, "r2"))
    assert got == (200, {"status": "applied"})
    assert receiver.store.get(Customer, "shopify", SHOPIFY_SHOP, "207119551") is None


def test_a_replayed_shop_redact_does_not_wipe_a_shop_that_is_still_installed(
    receiver: Receiver,
) -> None:
    """Shopify sends shop/redact 48 hours after the uninstall; a shop synced or delivering
    webhooks within the last day is installed, so a shop/redact for it is a replay."""
    _seeded(receiver, "shopify")  # the shop is active: deliveries just arrived
    wipe = _shopify_compliance("shop/redact")
    before = snapshot(receiver.store)
    status, answer = receiver.post(
        "shopify", wipe, headers("shopify", "shop/redact", wipe, "replayed-wipe")
    )
    assert status == 400 and "active" in answer["error"], answer
    assert snapshot(receiver.store) == before
    REFUSED["shopify shop/redact replayed while the shop is active"] += 1
    # The genuine one, two days after the last sign of life, removes the shop.
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    hdrs = {k.lower(): v for k, v in headers("shopify", "shop/redact", wipe, "w2").items()}
    result = webhooks.handle("shopify", hdrs, wipe, receiver.store, SECRET, now=later)
    assert result.status == "applied"
    assert ("shopify", SHOPIFY_SHOP) not in receiver.store.shops()


def test_a_far_future_trigger_time_is_capped_to_receipt(receiver: Receiver) -> None:
    _seeded(receiver, "shopify")
    gone = json.dumps({"id": 450789469}).encode()
    hdrs = headers("shopify", "orders/delete", gone, "future-delete")
    hdrs["X-Shopify-Triggered-At"] = "2999-01-01T00:00:00Z"
    sent = dt.datetime.now(dt.timezone.utc)
    assert receiver.post("shopify", gone, hdrs) == (200, {"status": "applied"})
    (mark,) = receiver.store.tombstones("shopify", SHOPIFY_SHOP)
    assert mark.at <= dt.datetime.now(dt.timezone.utc) and mark.at >= sent - dt.timedelta(seconds=5)
    # An honest version updated after the (real) deletion comes back at the next sync.
    order = Order.model_validate_json(_order_of(order_body("shopify")))
    restored = order.model_copy(update={"updated_at": mark.at + dt.timedelta(minutes=1)})
    assert receiver.store.upsert([restored]).inserted == 1
    REFUSED["shopify trigger time in 2999 capped to receipt"] += 1


def _order_of(body: bytes) -> str:
    from shopsync_shopify.mapping import order_from_webhook

    return order_from_webhook(json.loads(body), shop=SHOPIFY_SHOP).model_dump_json()


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_deletion_replayed_for_another_resource_can_be_lifted_with_the_cli(
    receiver: Receiver, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion body is only an id on both platforms, so ``{"id": N}`` of a deleted order
    replayed as a customer deletion cannot be told from a genuine one: it deletes customer
    N. The tombstone then keeps every unchanged version of N out, until lifted."""
    from typer.testing import CliRunner

    from shopsync.cli import app

    _seeded(receiver, platform)
    shop = SHOPIFY_SHOP if platform == "shopify" else WOO_SHOP
    customer_id = "207119551" if platform == "shopify" else "25"
    kept = receiver.store.get(Customer, platform, shop, customer_id)
    assert kept is not None
    topic = "customers/delete" if platform == "shopify" else "customer.deleted"
    gone = json.dumps({"id": int(customer_id)}).encode()
    assert receiver.post(platform, gone, headers(platform, topic, gone, "swap-1")) == (
        200,
        {"status": "applied"},
    )
    assert receiver.store.upsert([kept]).stale == 1  # a full re-sync alone cannot repair it
    monkeypatch.setenv(
        "SHOPSYNC_TEST_STORE", receiver.store.engine.url.render_as_string(hide_password=False)
    )
    db = ["--db", "env:SHOPSYNC_TEST_STORE"]
    listed = CliRunner().invoke(app, ["tombstones", "list", shop, *db])
    assert listed.exit_code == 0, listed.output
    assert customer_id in listed.output and "deleted" in listed.output
    lifted = CliRunner().invoke(app, ["tombstones", "lift", shop, "--customer", customer_id, *db])
    assert lifted.exit_code == 0, lifted.output
    assert "lifted 1" in lifted.output
    assert receiver.store.upsert([kept]).inserted == 1  # the next full sync brings it back
    assert receiver.store.tombstones(platform, shop) == []
    none_left = CliRunner().invoke(app, ["tombstones", "lift", shop, "--all", *db])
    assert none_left.exit_code == 0 and "lifted 0" in none_left.output
