"""Sync throughput against the emulators at the platforms' real limits, and webhook intake latency.

    python benchmarks/sync_and_webhooks.py [--orders 100000] [--customers 10000] [--deliveries 500]
    python benchmarks/sync_and_webhooks.py --store COPY.db [--deliveries 500]

For each platform: a first sync of the whole shop into a fresh SQLite store, then an
incremental sync after 1% of the orders changed. Shopify runs on the standard plan's
limits (GraphQL 2000 points / 100 per second; a first sync of a large shop goes through a
bulk operation), WooCommerce at 100 records per page. Then webhook intake: signed order
deliveries POSTed over loopback HTTP to ``shopsync.webhooks.wsgi_app``, timed from request
to stored answer, alone and with the customer re-planned (``plan_customer``) before the
answer, as an app hooked on ``on_result`` would.

``--store`` times the same webhook-to-plan path on a store that exists, such as
``benchmarks/plan.py``'s 1M-customer / 10M-order fixture (issue 19: p99 under 100 ms). The
deliveries write to it (the orders change, the loyalty ledger goes stale), so give it a copy.
Each delivery is an ``orders/updated`` body, rendered by the Shopify emulator, of the newest
order of a distinct random customer, re-tagged and updated (each at a moment of its own,
in the second before the plan's ``as_of``); the app re-plans that customer before it answers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import tempfile
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import requests

import shopsync
from shopsync.sync import sync
from shopsync.testing import emulate
from shopsync.webhooks import wsgi_app


def sync_figures(platform: str, customers: int, orders: int) -> None:
    with emulate(platform, seed=42, customers=customers, orders=orders, products=200) as shop:
        adapter = shopsync.connect(platform, **shop.settings)
        with tempfile.TemporaryDirectory() as tmp:
            store = shopsync.Store(f"sqlite:///{tmp}/bench.db")
            first = sync(adapter, store)
            changed = sorted(shop.state.orders)[:: max(1, 100)]
            for order_id in changed:
                shop.state.update_order(order_id, tags=("bench-edit",))
            again = sync(adapter, store)
            store.close()
        for label, report in (("first sync", first), (f"after {len(changed):,} changes", again)):
            r = report.resources["orders"]
            rate = r.seen / r.duration if r.duration else float("nan")
            print(
                f"{platform:12} {label:22} orders {r.seen:>8,} in {r.duration:7.1f}s"
                f" = {rate:8,.0f}/s  requests {r.requests:>6,}  retries {r.retries}"
                f"  throttle waits {r.throttle_waits}  quarantined {r.quarantined}"
                f"  (all resources {report.duration:.1f}s)"
            )


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def webhook_latency(deliveries: int, replan: bool = False) -> dict[str, Any]:
    """p50/p99 of signed ``orders/updated`` deliveries POSTed over loopback HTTP to
    :func:`shopsync.webhooks.wsgi_app` (on a store a sync filled first), timed from request to
    answer; with ``replan`` the app re-plans each touched customer before it answers."""

    from shopsync.planning import plan_customer

    secret = "bench-secret"
    customers = max(200, deliveries // 4)
    tmp = tempfile.TemporaryDirectory()
    store = shopsync.Store(f"sqlite:///{tmp.name}/hooks.db")
    with emulate("shopify", seed=7, customers=customers, orders=max(deliveries, 200)) as shop:
        emulator = shop.emulator
        assert emulator is not None
        # the shop as a first sync leaves it, without spending the API budget on it
        for records in (shop.state.customers, shop.state.products, shop.state.orders):
            store.upsert([emulator.view(r) for r in records.values()])
        payloads = []
        for order in list(shop.state.orders.values())[:deliveries]:
            body = json.dumps(emulator.webhook_payload("orders/updated", _event(order))).encode()
            payloads.append((order.id, body))
        name = shop.state.shop
    as_of = dt.datetime.now(dt.timezone.utc)
    planned = [0]

    def on_result(result: Any) -> None:
        for customer_id in result.customer_ids:
            planned[0] += len(plan_customer(store, None, as_of, "shopify", name, customer_id))

    app = wsgi_app(
        store, {"shopify": secret}, shops={name}, on_result=on_result if replan else None
    )
    named = [(f"bench-{n}-{order_id}", body) for n, (order_id, body) in enumerate(payloads)]
    try:
        timings = _time_deliveries(app, secret, name, named)
    finally:
        store.close()
        tmp.cleanup()
    timings.sort()
    return {
        "deliveries": len(timings),
        "replan": replan,
        "actions_planned": planned[0],
        "p50_ms": round(statistics.median(timings), 1),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1),
        "max_ms": round(timings[-1], 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def webhook_latency_on(path: str, deliveries: int, profile: int = 0) -> dict[str, Any]:
    """:func:`webhook_latency` with ``replan`` on the store at ``path`` (see the module doc).

    ``profile`` N > 0 calls the app in-process instead of over HTTP: CPU milliseconds per
    delivery (``time.process_time``), under cProfile, whose top N functions it prints."""
    import sqlite3

    from features import AS_OF, PLATFORM, SHOP  # benchmarks/plan.py's fixture
    from plan import POLICY
    from shopsync_shopify.emulator import ShopifyEmulator

    from shopsync.planning import plan_customer
    from shopsync.testing import generate_shop

    secret = "bench-secret"
    # the fixture's policy, loyalty on: its stored models and ledger serve it
    policy = shopsync.Policy.from_dict({**POLICY, "loyalty": {"enabled": True}})
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT customer_id, max(id) FROM orders WHERE customer_id IS NOT NULL"
        " AND created_at < ? GROUP BY customer_id ORDER BY random() LIMIT ?",
        (int(AS_OF.timestamp() * 1_000_000) - 86_400_000_000, deliveries),
    ).fetchall()
    con.close()
    store = shopsync.Store(f"sqlite:///{path}")
    state = generate_shop(platform=PLATFORM, shop=SHOP, seed=1, customers=1, orders=1)
    emulator = ShopifyEmulator(state)
    moment = AS_OF - dt.timedelta(seconds=1)
    run = int(time.time())
    payloads = []
    for n, (_, order_id) in enumerate(rows):
        stored = store.get(shopsync.Order, PLATFORM, SHOP, str(order_id))
        assert stored is not None, order_id
        # each a moment of its own, as real deliveries (each moves the shop's newest update)
        when = moment - dt.timedelta(microseconds=len(rows) - n)
        order = stored.model_copy(update={"updated_at": when, "tags": ("bench-hook",)})
        state.orders[order.id] = order
        body = json.dumps(emulator.webhook_payload("orders/updated", _event(order))).encode()
        payloads.append((f"bench-{run}-{n}-{order.id}", body))  # new ids: none a duplicate
    planned = [0]

    def on_result(result: Any) -> None:
        for customer_id in result.customer_ids:
            planned[0] += len(plan_customer(store, policy, AS_OF, PLATFORM, SHOP, customer_id))

    app = wsgi_app(store, {PLATFORM: secret}, shops={SHOP}, on_result=on_result)
    try:
        if profile:
            timings = _cpu_deliveries(app, secret, SHOP, payloads, profile)
        else:
            timings = _time_deliveries(app, secret, SHOP, payloads)
    finally:
        store.close()
    first, rest = timings[0], sorted(timings[1:])
    return {
        "deliveries": len(timings),
        "measure": "CPU in-process, cProfile on" if profile else "wall over HTTP",
        "actions_planned": planned[0],
        "first_ms": round(first, 1),
        "p50_ms": round(statistics.median(rest), 1),
        "p99_ms": round(rest[min(len(rest) - 1, int(len(rest) * 0.99))], 1),
        "max_ms": round(rest[-1], 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _headers(secret: str, shop: str, webhook_id: str, body: bytes) -> dict[str, str]:
    from shopsync_shopify.webhooks import sign

    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id,
    }


def _cpu_deliveries(
    app: Any, secret: str, shop: str, payloads: list[tuple[str, bytes]], top: int
) -> list[float]:
    """CPU milliseconds of each delivery, the WSGI app called in-process under cProfile (the
    first delivery, which warms the caches, is left out of the profile printed)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    timings = []
    for n, (webhook_id, body) in enumerate(payloads):
        headers = _headers(secret, shop, webhook_id, body)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/webhooks/shopify",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(body),
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }
        status: list[str] = []
        answer = status.append
        start = time.process_time()
        if n:
            profiler.enable()
        b"".join(app(environ, lambda s, h, answer=answer: answer(s)))
        if n:
            profiler.disable()
        timings.append((time.process_time() - start) * 1000)
        if not status[0].startswith("200"):
            raise RuntimeError(f"delivery refused: {status[0]}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    dump = os.path.join(tempfile.gettempdir(), "sync_and_webhooks.prof")
    profiler.dump_stats(dump)
    print(out.getvalue(), f"(the whole profile: {dump})", sep="\n")
    return timings


def _time_deliveries(
    app: Any, secret: str, shop: str, payloads: list[tuple[str, bytes]]
) -> list[float]:
    """Milliseconds from request to answer of each signed Shopify ``orders/updated`` body
    (``(webhook id, body)``), POSTed over loopback HTTP to ``app`` one after another."""
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
    session = requests.Session()
    timings = []
    try:
        for webhook_id, body in payloads:
            headers = _headers(secret, shop, webhook_id, body)
            start = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=60)
            timings.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"delivery refused: {response.status_code} {response.text}")
    finally:
        server.shutdown()
    return timings


def _event(order: shopsync.Order) -> object:
    from shopsync.testing import Event

    return Event("order.updated", "orders", order.id, order, order.updated_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--platform", choices=["shopify", "woocommerce", "both"], default="both")
    parser.add_argument("--store", help="time webhook + plan_customer on this store (a copy)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="with --store: CPU per delivery in-process under cProfile, its top N printed",
    )
    args = parser.parse_args()
    if args.store:
        w = webhook_latency_on(args.store, args.deliveries, args.profile)
        print(
            f"webhook intake + plan_customer ({w['measure']}) on {args.store},"
            f" {w['deliveries']} order deliveries: first {w['first_ms']} ms,"
            f" then p50 {w['p50_ms']} ms,"
            f" p99 {w['p99_ms']} ms, max {w['max_ms']} ms; {w['actions_planned']} actions;"
            f" peak {w['peak_mb']} MB"
        )
        return
    for platform in ("shopify", "woocommerce"):
        if args.platform in (platform, "both"):
            sync_figures(platform, args.customers, args.orders)
    for replan in (False, True):
        w = webhook_latency(args.deliveries, replan)
        label = "intake + plan_customer" if replan else "intake"
        print(
            f"webhook {label} over HTTP, {w['deliveries']} order deliveries: "
            f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms"
        )


if __name__ == "__main__":
    main()
