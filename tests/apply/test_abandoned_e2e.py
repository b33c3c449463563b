"""Abandoned checkouts end to end against both emulators (issue 22): the emulator holds
checkouts at Baymard's rate, a sync with ``checkouts`` stores them, the plan reminds the
consented customer whose checkout is open, ``apply`` sends the email with the recovery link
to the local SMTP server, and a purchase made after planning cancels the next reminder at
delivery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import shopsync
from shopsync.checkouts import Checkout, CheckoutLine
from shopsync.models import Customer, FinancialStatus, LineItem, Money, Order, Product, Variant
from shopsync.outbox import apply, list_outbox
from shopsync.store.checkout_recovery import recovered
from shopsync.store.checkout_rows import read_checkouts
from shopsync.sync import RESOURCES
from shopsync.testing import EmulatedShop
from shopsync.testing._checkouts import add_checkouts
from tests.apply.helpers import smtp_server
from tests.apply.test_email import email_sink
from tests.sync.emulated import connect, emulated

UTC = dt.timezone.utc
H = dt.timedelta(hours=1)
END = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * H
POLICY = shopsync.Policy.from_dict(
    {
        "holdout": {"share": 0},
        "loyalty": {"enabled": False},
        "reviews": {"enabled": False},
        "winback": {"enabled": False},
        "replenishment": {"enabled": False},
        "warranty": {"enabled": False},
        "abandoned_checkout": {"code_percent": 10},
    }
)
WITH_CHECKOUTS = (*RESOURCES, "checkouts")


def _priced(shop: EmulatedShop) -> tuple[Product, Variant]:
    """The first product with a priced variant (a simple product has none)."""
    for product in sorted(shop.state.products.values(), key=lambda p: p.id):
        for variant in product.variants:
            if variant.price is not None:
                return product, variant
    raise AssertionError("no priced product")


def _key(shop: EmulatedShop, emulated: str | Checkout) -> str:
    """The id the store holds a checkout of the emulator (or its id) under: Shopify's is
    keyed by the cart token its recovery link names (``shopsync_shopify._checkouts``),
    WooCommerce's is its order id."""
    if isinstance(emulated, str):
        if shop.platform != "shopify":
            return emulated
        emulated = shop.state.checkouts[emulated]
    from shopsync_shopify._checkouts import checkout_key

    assert emulated.recovery_url is not None
    return checkout_key(emulated.recovery_url.split("/checkouts/ac/")[1].split("/recover")[0])


def _emulated(shop: EmulatedShop, key: str) -> Checkout:
    """The emulator's checkout the store holds under ``key``."""
    return next(c for c in shop.state.checkouts.values() if _key(shop, c) == key)


def _started(shop: EmulatedShop, customer: Customer, at: dt.datetime) -> str:
    """A checkout of one product for ``customer`` started at ``at``: a Checkout on
    Shopify, a pending order on WooCommerce. Returns the id the store holds it under."""
    state = shop.state
    product, variant = _priced(shop)
    price = variant.price
    assert price is not None
    if shop.platform == "shopify":
        checkout = Checkout(
            platform="shopify",
            shop=state.shop,
            id=state.new_id("checkouts"),
            customer_id=customer.id,
            email=customer.email,
            created_at=at,
            updated_at=at,
            recovery_url=f"https://{state.shop}/1234567/checkouts/ac/tok{customer.id}"
            f"{at:%H%M}/recover?key=k",
            currency=state.currency,
            subtotal=price,
            total=price,
            line_items=(
                CheckoutLine(
                    product_id=product.id,
                    variant_id=variant.id,
                    title=product.title,
                    quantity=Decimal(1),
                    unit_price=price,
                ),
            ),
        )
        return _key(shop, state.put_checkout(checkout).id)
    return _order(shop, customer, at, paid=False).id


def _order(
    shop: EmulatedShop,
    customer: Customer,
    at: dt.datetime,
    *,
    paid: bool,
    from_checkout: str | None = None,
) -> Order:
    state = shop.state
    product, variant = _priced(shop)
    price = variant.price
    assert price is not None
    zero = Money.zero(state.currency)
    return state.add_order(
        from_checkout=from_checkout,
        customer_id=customer.id,
        email=customer.email,
        created_at=at,
        updated_at=at,
        paid_at=at if paid else None,
        processed_at=at,
        financial_status=FinancialStatus.PAID if paid else FinancialStatus.PENDING,
        currency=state.currency,
        subtotal=price,
        total_discounts=zero,
        total_shipping=zero,
        total_tax=zero,
        total=price,
        total_refunded=zero,
        line_items=(
            LineItem(
                id=state.new_id("line_items"),
                product_id=product.id,
                variant_id=variant.id,
                title=product.title,
                quantity=Decimal(1),
                unit_price=price,
                total=price,
            ),
        ),
    )


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_consented_customer_is_reminded_by_email_and_a_purchase_stops_the_next_step(
    platform: str, tmp_path: Path
) -> None:
    with (
        emulated(platform, seed=22, customers=40, orders=150, products=6, end=END) as shop,
        smtp_server() as smtp,
    ):
        made = add_checkouts(shop.state, seed=22, now=END - 6 * H, days=30)
        since = END - 6 * H - 30 * 24 * H
        recent = [o for o in shop.state.orders.values() if since <= o.created_at <= END - 6 * H]
        if platform == "shopify":  # Baymard's ~70 %: about 2.3 abandoned per order
            assert len(made) == round(len([o for o in recent if o.source != "checkout"]) * 7 / 3)
        adapter = connect(shop)
        store = shopsync.Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        people = sorted(store.iter(Customer, platform, adapter.shop), key=lambda c: c.id)
        cy, ann, bob = [c for c in people if c.email and c.consent.email.allows_marketing][-3:]
        # ann's and bob's checkouts, five hours before END: step 1 (4 h) is due at END
        mine = _started(shop, ann, END - 5 * H + dt.timedelta(minutes=30))
        his = _started(shop, bob, END - 5 * H + dt.timedelta(minutes=31))
        _order(shop, bob, END - 2 * H, paid=True)  # bob bought meanwhile
        hers = _started(shop, cy, END - 72 * H - dt.timedelta(minutes=30))  # step 3 is due
        report = shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
        assert report.resources["checkouts"].seen >= 2
        held = {c.id: c for c in read_checkouts(store, platform, adapter.shop)}
        assert held[mine].recovery_url and held[mine].customer_id == ann.id

        planned = [
            a for a in shopsync.plan(store, POLICY, as_of=END) if a.kind == "abandoned_checkout"
        ]
        ours = [a for a in planned if getattr(a, "checkout_id", None) == mine]
        assert len(ours) == 1 and ours[0].idempotency_key.endswith(f":{mine}:stage1")
        assert not [a for a in planned if getattr(a, "checkout_id", None) == his]
        assert all(a.customer_id in {c.id for c in people} for a in planned)

        sink = email_sink(smtp.port)
        done = apply(ours, store, [sink], now=END, policy=POLICY)
        assert [d.status for d in done.deliveries] == ["done"]
        (message,) = smtp.messages
        assert message["To"].addresses[0].addr_spec == ann.email
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert held[mine].recovery_url in text  # type: ignore[operator]
        assert message["List-Unsubscribe"]

        # step 2 is planned at 24 h; ann buys before it goes: delivery cancels it
        later = END + 20 * H
        second = [
            a
            for a in shopsync.plan(store, POLICY, as_of=later)
            if getattr(a, "checkout_id", None) == mine
        ]
        assert len(second) == 1 and second[0].idempotency_key.endswith("stage2")
        _order(shop, ann, END + 21 * H, paid=True)
        shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
        last = apply(second, store, [sink], now=END + 21 * H + H, policy=POLICY)
        assert [d.status for d in last.deliveries] == ["cancelled"]
        assert "placed order" in (last.deliveries[0].reason or "")
        assert len(smtp.messages) == 1
        keys = {e.idempotency_key: e.status for e in list_outbox(store)}
        assert keys == {ours[0].idempotency_key: "done", second[0].idempotency_key: "cancelled"}

        # cy's last step carries the single-use code: created on the platform, then quoted
        (coded,) = [a for a in planned if getattr(a, "checkout_id", None) == hers]
        assert coded.idempotency_key.endswith("stage3") and coded.discount_percent == 10  # type: ignore[attr-defined]
        sent = apply([coded], store, [adapter, sink], now=END, policy=POLICY)
        assert sorted(d.status for d in sent.deliveries) == ["done", "done"]
        made = next(d.result for d in sent.deliveries if d.sink != sink.name)
        code = made["discount"]["code"]  # type: ignore[index]
        assert made["discount"]["created"] is True  # type: ignore[index]
        text = smtp.messages[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert code.upper() in text.upper()  # WooCommerce keeps coupon codes lower-cased
        assert smtp.messages[-1]["To"].addresses[0].addr_spec == cy.email


def test_shopify_checkout_webhooks_keep_the_store_in_step(tmp_path: Path) -> None:
    """``checkouts/create`` and ``checkouts/update`` over real HTTP to the WSGI app: the
    store holds the checkout, then its completion; a checkout body replayed under an order
    topic is refused (the signature covers the body only)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync_shopify.webhooks import sign

    from shopsync.errors import WebhookError
    from shopsync.webhooks import WebhookResult, handle, wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = shopsync.Store(f"sqlite:///{tmp_path / 'hooks.db'}")
    results: list[WebhookResult] = []
    app = wsgi_app(store, {"shopify": "whsec"}, on_result=results.append)
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with emulated("shopify", seed=3, customers=10, orders=20, products=4, end=END) as shop:
            shopsync.sync(connect(shop), store)
            url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
            shop.subscribe(url, ["checkouts/create", "checkouts/update"], secret="whsec")
            customer = sorted(shop.state.customers.values(), key=lambda c: c.id)[0]
            kid = _started(shop, customer, END - H)
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "shopify", shop.state.shop)
            assert held.id == kid and held.customer_id == customer.id and held.recovery_url
            done = _emulated(shop, kid).model_copy(update={"completed_at": END, "updated_at": END})
            shop.state.put_checkout(done)
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "shopify", shop.state.shop)
            assert held.completed_at == END
            assert [r.topic for r in results] == ["checkouts/create", "checkouts/update"]
            from shopsync_shopify._checkouts import checkout_rest

            body = json.dumps(checkout_rest(done)).encode()
            headers = {
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Shop-Domain": shop.state.shop,
                "X-Shopify-Hmac-Sha256": sign("whsec", body),
                "X-Shopify-Webhook-Id": "replayed",
            }
            with pytest.raises(WebhookError, match="abandoned_checkout_url"):
                handle("shopify", headers, body, store, "whsec")
    finally:
        server.shutdown()
        server.server_close()


def test_shopify_checkout_is_one_row_by_token_and_its_order_completes_it(tmp_path: Path) -> None:
    """Today's shapes (API 2026-04+): ``checkouts/create``/``update`` carry ``token`` and no
    ``id``, an order carries ``checkout_token`` and no ``checkout_id``
    (https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks).
    The webhooks and the GraphQL sync of one checkout land on one row; the order placed from
    it, by its ``checkout_token`` alone, completes it, so the planned reminder is cancelled."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync_shopify._checkouts import checkout_rest
    from shopsync_shopify._render_rest import order_rest

    from shopsync.webhooks import wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = shopsync.Store(f"sqlite:///{tmp_path / 'hooks.db'}")
    server = make_server("127.0.0.1", 0, wsgi_app(store, {"shopify": "whsec"}), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with emulated("shopify", seed=5, customers=10, orders=20, products=4, end=END) as shop:
            adapter = connect(shop)
            shopsync.sync(adapter, store)
            url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
            topics = ["checkouts/create", "checkouts/update", "orders/create"]
            shop.subscribe(url, topics, secret="whsec")
            people = sorted(shop.state.customers.values(), key=lambda c: c.id)
            ann = next(c for c in people if c.email and c.consent.email.allows_marketing)
            kid = _started(shop, ann, END - 5 * H)
            mine = _emulated(shop, kid)
            assert "id" not in checkout_rest(mine) and checkout_rest(mine)["token"]
            assert shop.flush_webhooks(15)
            assert [c.id for c in read_checkouts(store, "shopify", shop.state.shop)] == [kid]

            # the sync reads the same checkout through GraphQL (an id, no token): same row
            report = shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
            assert report.resources["checkouts"].seen == 1
            assert [c.id for c in read_checkouts(store, "shopify", shop.state.shop)] == [kid]

            # a checkouts/update without id (today's shape) updates that row
            changed = mine.model_copy(update={"updated_at": END - 4 * H, "email": "new@x.test"})
            shop.state.put_checkout(changed)
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "shopify", shop.state.shop)
            assert held.id == kid and held.updated_at == END - 4 * H
            assert held.email == "new@x.test" and held.completed_at is None

            planned = [
                a
                for a in shopsync.plan(store, POLICY, as_of=END)
                if getattr(a, "checkout_id", None) == kid
            ]
            assert len(planned) == 1

            # the order placed from it: its body names the checkout by checkout_token only
            bought = _order(shop, ann, END - H, paid=False, from_checkout=mine.id)
            body = order_rest(shop.state.orders[bought.id], shop.state)
            assert (
                "checkout_id" not in body and body["checkout_token"] == checkout_rest(mine)["token"]
            )
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "shopify", shop.state.shop)
            assert held.completed_at == END - H
            assert recovered(store, "shopify", shop.state.shop, ann.id, kid) == (
                f"checkout {kid} was completed"
            )
            sink = shopsync.sinks.JsonLines("out.jsonl", root=tmp_path)
            done = apply(planned, store, [sink], now=END, policy=POLICY)
            assert [d.status for d in done.deliveries] == ["cancelled"]
            # a later sync page without completedAt does not reopen it
            shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
            (held,) = read_checkouts(store, "shopify", shop.state.shop)
            assert held.completed_at == END - H
    finally:
        server.shutdown()
        server.server_close()


def test_shopify_checkouts_delete_ends_the_reminders_and_keeps_the_checkout_out(
    tmp_path: Path,
) -> None:
    """``checkouts/delete`` over real HTTP: the store drops the checkout, a reminder planned
    before is cancelled at delivery, nothing is planned for it after; a late
    ``checkouts/update`` from before the deletion does not bring it back; a deletion body
    under another topic, and another topic's body under ``checkouts/delete``, are refused."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync_shopify._checkouts import checkout_rest
    from shopsync_shopify.emulator import ShopifyEmulator
    from shopsync_shopify.webhooks import sign

    from shopsync.errors import WebhookError
    from shopsync.testing._events import Event
    from shopsync.webhooks import handle, wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = shopsync.Store(f"sqlite:///{tmp_path / 'hooks.db'}")
    server = make_server("127.0.0.1", 0, wsgi_app(store, {"shopify": "whsec"}), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def deliver(topic: str, body: dict[str, Any], delivery: str) -> object:
        raw = json.dumps(body).encode()
        headers = {
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop.state.shop,
            "X-Shopify-Hmac-Sha256": sign("whsec", raw),
            "X-Shopify-Webhook-Id": delivery,
        }
        return handle("shopify", headers, raw, store, "whsec")

    try:
        with emulated("shopify", seed=3, customers=10, orders=20, products=4, end=END) as shop:
            shopsync.sync(connect(shop), store)
            url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
            topics = ["checkouts/create", "checkouts/update", "checkouts/delete"]
            shop.subscribe(url, topics, secret="whsec")
            people = sorted(shop.state.customers.values(), key=lambda c: c.id)
            ann = next(c for c in people if c.email and c.consent.email.allows_marketing)
            kid = _started(shop, ann, END - 5 * H)
            assert shop.flush_webhooks(15)
            planned = [
                a
                for a in shopsync.plan(store, POLICY, as_of=END)
                if getattr(a, "checkout_id", None) == kid
            ]
            assert len(planned) == 1
            before = checkout_rest(_emulated(shop, kid))

            deleted = shop.state.delete_checkout(_emulated(shop, kid).id)
            assert _key(shop, deleted) == kid and deleted.id not in shop.state.checkouts
            assert shop.flush_webhooks(15)
            assert read_checkouts(store, "shopify", shop.state.shop) == []
            gone = recovered(store, "shopify", shop.state.shop, ann.id, kid)
            assert gone == f"checkout {kid} is no longer in the store"
            sink = shopsync.sinks.JsonLines("out.jsonl", root=tmp_path)
            done = apply(planned, store, [sink], now=END, policy=POLICY)
            assert [d.status for d in done.deliveries] == ["cancelled"]
            assert not [
                a
                for a in shopsync.plan(store, POLICY, as_of=END + H)
                if getattr(a, "checkout_id", None) == kid
            ]

            # a checkouts/update from before the deletion, delivered late: stays out
            deliver("checkouts/update", before, "late-update")
            assert read_checkouts(store, "shopify", shop.state.shop) == []

            # the deletion body as Shopify sends it, and replays of bodies across topics
            emulator = shop.emulator
            assert isinstance(emulator, ShopifyEmulator)
            event = Event("checkout.deleted", "checkouts", deleted.id, deleted, END)
            body = emulator.webhook_payload("checkouts/delete", event)
            assert body is not None and set(body) == {"id", "token"}
            for topic in ("products/delete", "orders/delete", "customers/delete"):
                with pytest.raises(WebhookError, match="deletion carries only"):
                    deliver(topic, body, f"replay-{topic}")
            with pytest.raises(WebhookError, match="carries only an id"):
                deliver("checkouts/update", body, "replay-as-update")
            order_id = sorted(shop.state.orders)[0]
            others: list[dict[str, Any]] = [
                {"id": int(order_id)},
                {"id": 1, "admin_graphql_api_id": "gid://shopify/Order/1"},
                before,
            ]
            for other in others:
                with pytest.raises(WebhookError, match="checkouts/delete body"):
                    deliver("checkouts/delete", other, "foreign")
    finally:
        server.shutdown()
        server.server_close()


def test_shopify_checkouts_delete_reaches_a_checkout_held_only_from_sync(
    tmp_path: Path,
) -> None:
    """A checkout the store read only through GraphQL (no token: no create webhook came) is
    deleted on the platform: the ``checkouts/delete`` body, over real HTTP, names it by its
    ``id``, the gid's number the sync kept. The row goes, the reminder planned for it is
    cancelled at delivery, and a sync page read before the deletion stays out."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync_shopify._checkouts import checkout_from_graphql, checkout_graphql

    from shopsync.store.checkout_rows import upsert_checkouts
    from shopsync.webhooks import wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = shopsync.Store(f"sqlite:///{tmp_path / 'synced.db'}")
    server = make_server("127.0.0.1", 0, wsgi_app(store, {"shopify": "whsec"}), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with emulated("shopify", seed=3, customers=10, orders=20, products=4, end=END) as shop:
            adapter = connect(shop)
            url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
            shop.subscribe(url, ["checkouts/delete"], secret="whsec")
            people = sorted(shop.state.customers.values(), key=lambda c: c.id)
            ann = next(c for c in people if c.email and c.consent.email.allows_marketing)
            kid = _started(shop, ann, END - 5 * H)
            shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
            (held,) = [c for c in read_checkouts(store, "shopify", shop.state.shop) if c.id == kid]
            synced = _emulated(shop, kid)
            assert held.token_key is None and held.number == synced.id  # the sync's copy only
            planned = [
                a
                for a in shopsync.plan(store, POLICY, as_of=END)
                if getattr(a, "checkout_id", None) == kid
            ]
            assert len(planned) == 1
            node = checkout_graphql(synced, shop.state)
            page = {**node, "lineItems": {"nodes": node["lineItems"]}}

            shop.state.delete_checkout(synced.id)
            assert shop.flush_webhooks(15)
            assert kid not in {c.id for c in read_checkouts(store, "shopify", shop.state.shop)}
            gone = recovered(store, "shopify", shop.state.shop, ann.id, kid)
            assert gone == f"checkout {kid} is no longer in the store"
            sink = shopsync.sinks.JsonLines("out.jsonl", root=tmp_path)
            done = apply(planned, store, [sink], now=END, policy=POLICY)
            assert [d.status for d in done.deliveries] == ["cancelled"]

            # a sync page read before the deletion, written after it: stays out
            late = upsert_checkouts(store, [checkout_from_graphql(page, shop=shop.state.shop)])
            assert late.stale == 1
            assert kid not in {c.id for c in read_checkouts(store, "shopify", shop.state.shop)}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_browse_events_over_http_become_a_reminder_email(platform: str, tmp_path: Path) -> None:
    """Signed product views posted to the event endpoint over real HTTP, for a consented
    customer of an emulated shop and for an anonymous visitor: the customer is emailed the
    products 2 h later; nobody else is."""
    import threading
    import urllib.request
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync.events import events_app, sign

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with (
        emulated(platform, seed=23, customers=20, orders=40, products=6, end=END) as shop,
        smtp_server() as smtp,
    ):
        adapter = connect(shop)
        store = shopsync.Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(adapter, store)
        people = sorted(store.iter(Customer, platform, adapter.shop), key=lambda c: c.id)
        lately = {  # the program skips customers who ordered in the last 10 days
            o.customer_id for o in shop.state.orders.values() if o.created_at > END - 12 * 24 * H
        }
        dee = next(
            c for c in people if c.email and c.consent.email.allows_marketing and c.id not in lately
        )
        product, _ = _priced(shop)
        clock = END - 3 * H
        app = events_app(store, {adapter.shop: "evt"}, platform=platform, clock=lambda: clock)
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            for customer, visitor in ((dee.id, "v-dee"), (None, "v-anon")):
                body = json.dumps(
                    {
                        "shop": adapter.shop,
                        "customer_id": customer,
                        "events": [
                            {
                                "id": f"{visitor}-1",
                                "name": "product_viewed",
                                "timestamp": clock.isoformat(),
                                "clientId": visitor,
                                "data": {"productVariant": {"product": {"id": product.id}}},
                            }
                        ],
                    }
                ).encode()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{server.server_port}/events",
                    data=body,
                    headers={"X-Shopsync-Signature": sign("evt", body)},
                )
                with urllib.request.urlopen(request, timeout=10) as answer:
                    assert json.loads(answer.read())["stored"] == 1
        finally:
            server.shutdown()
            server.server_close()
        planned = [
            a for a in shopsync.plan(store, POLICY, as_of=END) if a.kind == "browse_abandonment"
        ]
        assert [a.customer_id for a in planned] == [dee.id]
        assert planned[0].product_ids == (product.id,)  # type: ignore[attr-defined]
        done = apply(planned, store, [email_sink(smtp.port)], now=END, policy=POLICY)
        assert [d.status for d in done.deliveries] == ["done"]
        (message,) = smtp.messages
        assert message["To"].addresses[0].addr_spec == dee.email
        assert product.title in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_woocommerce_order_webhooks_of_a_pending_order_store_its_checkout(tmp_path: Path) -> None:
    """A pending order's ``order.created`` delivery stores the order and its checkout (with
    the payment link); once paid, its ``order.updated`` stores the paid order and completes
    the checkout's row, which ends the reminders."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync.webhooks import wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = shopsync.Store(f"sqlite:///{tmp_path / 'hooks.db'}")
    server = make_server(
        "127.0.0.1", 0, wsgi_app(store, {"woocommerce": "whsec"}), handler_class=Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with emulated("woocommerce", seed=3, customers=10, orders=20, products=4, end=END) as shop:
            adapter = connect(shop)
            shopsync.sync(adapter, store)
            url = f"http://127.0.0.1:{server.server_port}/webhooks/woocommerce"
            shop.subscribe(url, ["order.created", "order.updated"], secret="whsec")
            customer = sorted(shop.state.customers.values(), key=lambda c: c.id)[0]
            pending = _order(shop, customer, END - H, paid=False)
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "woocommerce", adapter.shop)
            assert held.id == pending.id and held.customer_id == customer.id
            assert held.recovery_url and "order-pay" in held.recovery_url
            assert recovered(store, "woocommerce", adapter.shop, customer.id, pending.id) is None
            paid = shop.state.pay_order(pending.id)
            assert shop.flush_webhooks(15)
            (held,) = read_checkouts(store, "woocommerce", adapter.shop)
            assert paid.paid_at and held.completed_at == paid.paid_at.replace(microsecond=0)
            ended = recovered(store, "woocommerce", adapter.shop, customer.id, pending.id)
            assert ended == f"checkout {pending.id} was completed"
    finally:
        server.shutdown()
        server.server_close()


def test_woocommerce_paid_checkouts_are_completed_by_sync_and_counted_recovered(
    tmp_path: Path,
) -> None:
    """Pending orders read as checkouts, then paid on the shop (``processing``): the next
    sync's orders complete their rows, a guest's too (nobody to match by customer), and the
    report's recovery rate counts both from the rows; one left unpaid stays open."""
    from shopsync.core._data import paid_orders
    from shopsync.core.abandoned import checkout_recovery
    from shopsync.frames import load

    with emulated("woocommerce", seed=4, customers=10, orders=20, products=4, end=END) as shop:
        adapter = connect(shop)
        store = shopsync.Store(f"sqlite:///{tmp_path / 'store.db'}")
        # started a week before the payments (stamped with the emulator's clock, now), so
        # each is in the rate's cohort and paid within its 7-day window
        start = (
            dt.datetime.now(UTC).replace(microsecond=0) - 7 * 24 * H + 10 * dt.timedelta(minutes=1)
        )
        people = sorted(shop.state.customers.values(), key=lambda c: c.id)
        mine = _order(shop, people[0], start, paid=False)
        left = _order(shop, people[1], start + dt.timedelta(minutes=1), paid=False)
        guest = _order(shop, people[2], start + dt.timedelta(minutes=2), paid=False)
        guest = shop.state.update_order(guest.id, customer_id=None)
        shopsync.sync(adapter, store, resources=WITH_CHECKOUTS)
        held = {c.id: c for c in read_checkouts(store, "woocommerce", adapter.shop)}
        assert {mine.id, left.id, guest.id} <= set(held)
        assert held[guest.id].customer_id is None and held[guest.id].completed_at is None
        shop.state.pay_order(mine.id)
        shop.state.pay_order(guest.id)
        shopsync.sync(adapter, store)  # the orders alone: the checkouts no longer list them
        held = {c.id: c for c in read_checkouts(store, "woocommerce", adapter.shop)}
        for oid in (mine.id, guest.id):  # WooCommerce dates are whole seconds
            stored = store.get(Order, "woocommerce", adapter.shop, oid)
            assert isinstance(stored, Order) and stored.paid_at is not None
            assert held[oid].completed_at == stored.paid_at
        assert held[left.id].completed_at is None
        later = dt.datetime.now(UTC) + H  # the emulator stamps the payments with its clock
        frames = load(store, "woocommerce", adapter.shop, later)
        rate = checkout_recovery(frames, paid_orders(frames))
        ours = {mine.id, left.id, guest.id}
        cohort = frames.checkouts.filter(pl.col("id").is_in(sorted(ours)))
        assert cohort["completed_at"].is_not_null().sum() == 2
        assert rate.recovered >= 2 and rate.checkouts >= 3
        # the same without the completions: the guest's payment was not counted at all
        unpaid = frames.checkouts.with_columns(
            pl.when(pl.col("id") == guest.id)
            .then(None)
            .otherwise(pl.col("completed_at"))
            .alias("completed_at")
        )
        before = checkout_recovery(
            dataclasses.replace(frames, checkouts=unpaid), paid_orders(frames)
        )
        assert before.recovered == rate.recovered - 1
