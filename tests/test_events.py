"""The signed browse-event endpoint (issue 22): a bad signature, an unknown shop, a flood
from one visitor and malformed bodies are refused and store nothing; a replay stores nothing
twice; an unidentified visitor's events are kept but never reach the programs' frame; a
customer's erasure and export cover them."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from shopsync.events import events_app, sign
from shopsync.models import Customer
from shopsync.store import Store
from shopsync.store.event_rows import browse_frame

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 1, 12, tzinfo=UTC)
DAY = dt.timedelta(days=1)
SHOP = "acme.myshopify.com"
SECRET = "evt-secret-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'events.db'}")
    s.upsert(
        [
            Customer(
                platform="shopify",
                shop=SHOP,
                id="c1",
                email="ann@example.com",
                created_at=NOW - dt.timedelta(days=9),
                updated_at=NOW - dt.timedelta(days=9),
            )
        ]
    )
    return s


def viewed(n: int, visitor: str = "v1", product: str = "gid://shopify/Product/7") -> dict[str, Any]:
    return {
        "id": f"e{visitor}{n}",
        "name": "product_viewed",
        "timestamp": (NOW - dt.timedelta(minutes=n)).isoformat(),
        "clientId": visitor,
        "data": {"productVariant": {"product": {"id": product}}},
    }


def post(
    store: Store, body: dict[str, Any], *, secret: str = SECRET, shop: str = SHOP, **options: Any
) -> tuple[str, dict[str, Any]]:
    raw = json.dumps(body).encode()
    app = events_app(store, {shop: SECRET}, platform="shopify", clock=lambda: NOW, **options)
    seen: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "HTTP_X_SHOPSYNC_SIGNATURE": sign(secret, raw),
    }
    out = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], json.loads(out)


def stored(store: Store) -> int:
    return len(store.export_customer("shopify", SHOP, "c1")["browse_events"])


def test_identified_events_reach_the_frame_and_a_replay_stores_nothing_twice(store: Store) -> None:
    body = {"shop": SHOP, "customer_id": "c1", "events": [viewed(1), viewed(2)]}
    assert post(store, body) == ("200 OK", {"stored": 2, "duplicates": 0, "capped": 0})
    assert post(store, body) == ("200 OK", {"stored": 0, "duplicates": 2, "capped": 0})
    shop_id = store.shop_id("shopify", SHOP)
    frame = browse_frame(store, shop_id, int(NOW.timestamp() * 1_000_000))
    assert frame["product_id"].to_list() == ["7", "7"] and set(frame["customer_id"]) == {"c1"}


def test_an_unidentified_visitor_is_kept_but_never_in_the_frame(store: Store) -> None:
    status, counts = post(store, {"shop": SHOP, "events": [viewed(1, "anon")]})
    assert status == "200 OK" and counts["stored"] == 1
    shop_id = store.shop_id("shopify", SHOP)
    assert browse_frame(store, shop_id, int(NOW.timestamp() * 1_000_000)).height == 0


def test_a_bad_signature_or_an_unknown_shop_is_refused(store: Store) -> None:
    body = {"shop": SHOP, "customer_id": "c1", "events": [viewed(1)]}
    assert post(store, body, secret="wrong")[0] == "401 Unauthorized"
    assert post(store, {**body, "shop": "other.myshopify.com"})[0] == "404 Not Found"
    # a shop with a secret but unknown to the store: refused too
    raw = {**body, "shop": "ghost.myshopify.com"}
    app_secrets = {SHOP: SECRET, "ghost.myshopify.com": SECRET}
    data = json.dumps(raw).encode()
    seen: list[str] = []
    app = events_app(store, app_secrets, platform="shopify", clock=lambda: NOW)
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "HTTP_X_SHOPSYNC_SIGNATURE": sign(SECRET, data),
    }
    b"".join(app(environ, lambda status, headers: seen.append(status)))
    assert seen == ["404 Not Found"] and stored(store) == 0


def test_a_flood_from_one_visitor_is_capped(store: Store) -> None:
    first = {"shop": SHOP, "customer_id": "c1", "events": [viewed(n) for n in range(5)]}
    assert post(store, first, per_visitor=3)[1] == {"stored": 3, "duplicates": 0, "capped": 2}
    more = {"shop": SHOP, "customer_id": "c1", "events": [viewed(n) for n in range(5, 9)]}
    assert post(store, more, per_visitor=3)[0] == "429 Too Many Requests"
    other = {"shop": SHOP, "events": [viewed(1, "v2")]}
    assert post(store, other, per_visitor=3)[1]["stored"] == 1  # another visitor is not held
    assert stored(store) == 3


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"name": "page_viewed", "id": "x", "clientId": "v", "timestamp": NOW.isoformat()}],
        [{"name": "product_viewed", "id": "x", "clientId": "v", "timestamp": "yesterday"}],
        [{"name": "product_viewed", "clientId": "v", "timestamp": NOW.isoformat()}],
        ["not an object"],
    ],
)
def test_malformed_bodies_are_refused(store: Store, events: list[Any]) -> None:
    status, _ = post(store, {"shop": SHOP, "customer_id": "c1", "events": events})
    assert status == "400 Bad Request" and stored(store) == 0


def test_erasure_deletes_a_customers_events(store: Store) -> None:
    post(store, {"shop": SHOP, "customer_id": "c1", "events": [viewed(1)]})
    assert stored(store) == 1
    store.redact_customer("shopify", SHOP, "c1")
    shop_id = store.shop_id("shopify", SHOP)
    assert browse_frame(store, shop_id, int(NOW.timestamp() * 1_000_000)).height == 0


def test_an_emulated_shops_carts_come_at_baymards_rate_and_are_stored(tmp_path: Path) -> None:
    from shopsync.sync import sync
    from shopsync.testing._browsing import browse_bodies
    from tests.sync.emulated import connect, emulated

    with emulated("shopify", seed=5, customers=30, orders=80, products=5, end=NOW) as shop:
        store = Store(f"sqlite:///{tmp_path / 'b.db'}")
        sync(connect(shop), store)
        bodies = browse_bodies(shop.state, seed=5, now=NOW, days=30)
        recent = [o for o in shop.state.orders.values() if o.created_at >= NOW - 30 * DAY]
        assert len(bodies) == round(len(recent) / 0.3) > 0  # 1 / (1 - 70 %) carts per order
        status = {post(store, b, shop=shop.state.shop)[0] for b in bodies}
        assert status == {"200 OK"}
        anonymous = sum(b["customer_id"] is None for b in bodies)
        shop_id = store.shop_id("shopify", shop.state.shop)
        frame = browse_frame(store, shop_id, int(NOW.timestamp() * 1_000_000))
        assert frame.height == 2 * (len(bodies) - anonymous)  # a view and an add each


@pytest.mark.postgres
def test_two_simultaneous_posts_of_one_visitor_do_not_pass_the_cap(postgres_url: str) -> None:
    """Count and insert are one step per visitor: two requests that both counted before
    either inserted stored twice the cap (PostgreSQL, READ COMMITTED). The hook holds the
    first request after its count until the second has counted too, or for a second when the
    second cannot count yet (it waits for the first: the fix)."""
    import threading

    from sqlalchemy import event

    from shopsync.events import parse_events
    from shopsync.store.event_rows import record_events

    s = Store(postgres_url)
    try:
        s.upsert(
            [
                Customer(
                    platform="shopify",
                    shop=SHOP,
                    id="c1",
                    email="ann@example.com",
                    created_at=NOW - 9 * DAY,
                    updated_at=NOW - 9 * DAY,
                )
            ]
        )
        both_counted = threading.Barrier(2, timeout=1)

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT COUNT("):
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_counted.wait()

        event.listen(s.engine, "after_cursor_execute", after)
        results: list[Any] = []

        def one(batch: int) -> None:
            body = {"shop": SHOP, "customer_id": "c1"}
            body["events"] = [viewed(10 * batch + n) for n in range(3)]  # type: ignore[assignment]
            _, rows = parse_events(body, NOW)
            results.append(
                record_events(s, "shopify", SHOP, rows, received_at=NOW, cap=3, window=DAY)
            )

        threads = [threading.Thread(target=one, args=(b,)) for b in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        event.remove(s.engine, "after_cursor_execute", after)
        assert sorted(r.stored for r in results) == [0, 3]
        assert sorted(r.capped for r in results) == [0, 3]
        assert stored(s) == 3
    finally:
        s.close()


def test_a_simulated_shop_posts_its_browse_events_to_the_endpoint_over_http(
    tmp_path: Path,
) -> None:
    """What the demo runs: a shop served and simulated in a child process posts its week's
    carts, signed, to the event endpoint on 127.0.0.1 as a pixel relay would; the
    identified visitors' views and adds reach the programs' frame, the anonymous ones do not;
    the same week posted again stores nothing twice; a relay with the wrong secret is
    refused and stores nothing."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from shopsync.adapter import connect
    from shopsync.sync import sync
    from shopsync.testing.behaviour import CDNOW
    from shopsync.testing.remote_simulation import simulate_in_processes

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    store = Store(f"sqlite:///{tmp_path / 'sim.db'}")
    secrets: dict[str, str] = {}
    shop = {"customers": 60, "products": 6, "years": 1.0, "buying": CDNOW}
    with simulate_in_processes({"shopify": shop}, uplift={}) as sims:
        sim = sims["shopify"]
        adapter = connect("shopify", **sim.shop.settings)
        sync(adapter, store)
        adapter.close()
        now = sim.now
        secrets[sim.shop.shop] = SECRET
        app = events_app(store, secrets, platform="shopify", clock=lambda: now)
        server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/events"
        try:
            wrong = sim.browse(url, "not-the-secret", days=60)
            assert wrong.bodies > 0 and wrong.refused == wrong.bodies and wrong.stored == 0
            posted = sim.browse(url, SECRET, days=60)
            again = sim.browse(url, SECRET, days=60)
        finally:
            server.shutdown()
            server.server_close()
    assert posted.bodies == wrong.bodies and posted.refused == 0
    assert posted.stored == 2 * posted.bodies  # a view and an add to cart per cart
    assert again.stored == 0 and again.duplicates == posted.stored
    shop_id = store.shop_id("shopify", sim.shop.shop)
    frame = browse_frame(store, shop_id, int(now.timestamp() * 1_000_000))
    assert 0 < frame.height == 2 * posted.identified <= posted.stored
    assert set(frame["kind"]) == {"product_viewed", "product_added_to_cart"}
