"""Sync throughput against the emulators at the platforms' real limits, and webhook intake latency.

    python benchmarks/sync_and_webhooks.py [--orders 100000] [--customers 10000] [--deliveries 500]

For each platform: a first sync of the whole shop into a fresh SQLite store, then an
incremental sync after 1% of the orders changed. Shopify runs on the standard plan's
limits (GraphQL 2000 points / 100 per second; a first sync of a large shop goes through a
bulk operation), WooCommerce at 100 records per page. Then webhook intake: signed order
deliveries POSTed over loopback HTTP to ``shopsync.webhooks.wsgi_app``, timed from request
to stored answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
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


def webhook_latency(deliveries: int) -> None:
    from shopsync_shopify.webhooks import sign

    secret = "bench-secret"
    with emulate("shopify", seed=7, customers=200, orders=max(deliveries, 200)) as shop:
        emulator = shop.emulator
        assert emulator is not None
        payloads = []
        for order in list(shop.state.orders.values())[:deliveries]:
            body = json.dumps(emulator.webhook_payload("orders/updated", _event(order))).encode()
            payloads.append((order.id, body))
    with tempfile.TemporaryDirectory() as tmp:
        store = shopsync.Store(f"sqlite:///{tmp}/hooks.db")
        app = wsgi_app(store, {"shopify": secret}, shops={shop.state.shop})
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
        session = requests.Session()
        timings = []
        for n, (order_id, body) in enumerate(payloads):
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/updated",
                "X-Shopify-Hmac-Sha256": sign(secret, body),
                "X-Shopify-Shop-Domain": shop.state.shop,
                "X-Shopify-Webhook-Id": f"bench-{n}-{order_id}",
            }
            start = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=10)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
        server.shutdown()
        store.close()
    timings.sort()
    p99 = timings[max(0, int(len(timings) * 0.99) - 1)]
    print(
        f"webhook intake over HTTP, {len(timings)} order deliveries: "
        f"p50 {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms, max {timings[-1]:.1f} ms"
    )


def _event(order: shopsync.Order) -> object:
    from shopsync.testing import Event

    return Event("order.updated", "orders", order.id, order, order.updated_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--platform", choices=["shopify", "woocommerce", "both"], default="both")
    args = parser.parse_args()
    for platform in ("shopify", "woocommerce"):
        if args.platform in (platform, "both"):
            sync_figures(platform, args.customers, args.orders)
    webhook_latency(args.deliveries)


if __name__ == "__main__":
    main()
