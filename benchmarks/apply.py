"""Delivery throughput of each sink through the outbox, in actions per second.

    python benchmarks/apply.py [--actions 300] [--postgres URL]

Every run records the actions in a fresh store (SQLite by default) and delivers them with
:func:`shopsync.apply`; the figure is actions delivered per second of ``apply`` (recording
included). Sinks:

- platform write-back against the emulators over loopback HTTP: Shopify on the standard
  plan's limits (2000-point bucket, 100 points/s; every mutation costs 10, so after the
  burst Shopify allows about 10 mutations a second) and WooCommerce; two workloads: a tag per
  action (one mutation) and a reward code (look-up, create, loyalty metafield);
- email to a real SMTP server on loopback (aiosmtpd), one kept-alive connection;
- a signed webhook to a local HTTP receiver;
- JSON Lines and CSV files (one fsync per line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import shopsync
from shopsync.core.actions import Action, RewardCode
from shopsync.models import Customer, Money
from shopsync.outbox import apply
from shopsync.sinks import Brand, Csv, Email, JsonLines, Webhook
from shopsync.testing import emulate

NOW = dt.datetime.now(dt.timezone.utc)


class Tagged(Action):
    kind: str = "bench_tag"
    marketing: bool = False


def actions(customers: list[Customer], n: int, kind: str) -> list[Action]:
    out: list[Action] = []
    for i in range(n):
        c = customers[i % len(customers)]
        base: dict[str, Any] = {
            "platform": c.platform,
            "shop": c.shop,
            "customer_id": c.id,
            "due_at": NOW,
            "reason": "benchmark",
            "facts": {"n": i},
        }
        if kind == "reward":
            out.append(
                RewardCode(
                    **base,
                    idempotency_key=f"reward:{c.shop}:{i}",
                    code=f"BENCH-{i:06d}",
                    value=Money.of("5.00", "USD"),
                    points=500,
                )
            )
        else:
            out.append(Tagged(**base, idempotency_key=f"tag:{c.shop}:{i}"))
    return out


def timed(label: str, run: Callable[[], Any], n: int) -> dict[str, Any]:
    start = time.perf_counter()
    report = run()
    took = time.perf_counter() - start
    print(
        f"{label:42} {report.delivered:>6} delivered in {took:6.2f}s = "
        f"{report.delivered / took:8.1f} actions/s  (parked {report.parked}, "
        f"failed {report.failed}, cancelled {report.cancelled})",
        file=sys.stderr,
    )
    if report.delivered != n:
        raise RuntimeError(f"{label}: {report.delivered} of {n} delivered ({report})")
    return {"actions": n, "seconds": round(took, 2), "actions_per_s": round(n / took, 1)}


def platform_figures(platform: str, n: int, url: str, tmp: Path) -> dict[str, Any]:
    figures = {}
    with emulate(platform, seed=9, customers=200, orders=50, products=20) as shop:
        adapter = shopsync.connect(platform, **shop.settings)
        for kind in ("tag", "reward"):
            store = shopsync.Store(url or f"sqlite:///{tmp}/{platform}-{kind}.db")
            # the customers as a sync would store them, without spending the API budget on it
            assert shop.emulator is not None
            store.upsert([shop.emulator.view(c) for c in shop.state.customers.values()])
            # balances are written back only from a current ledger (issue 17.1)
            shopsync.loyalty.update_ledger(store, platform, adapter.shop, as_of=NOW)
            people = [c for c in store.iter(Customer, platform, adapter.shop) if c.email]
            plan = actions(people, n, kind)
            label = f"platform {platform} ({kind})"
            figures[label] = timed(
                label,
                lambda plan=plan, store=store: apply(plan, store, [adapter]),
                n,
            )
            if platform == "shopify":
                print(
                    f"{'':42} throttle waits {adapter.http.stats.throttle_waits}, "
                    f"paced {adapter.counters['paced_seconds']:.1f}s, "
                    f"actual cost {adapter.counters['actual_cost']}",
                    file=sys.stderr,
                )
            store.close()
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def local_figures(n: int, url: str, tmp: Path) -> dict[str, Any]:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    store = shopsync.Store(url or f"sqlite:///{tmp}/local.db")
    people = [
        Customer(
            platform="shopify",
            shop="bench.myshopify.com",
            id=str(i),
            email=f"c{i}@example.com",
            first_name="Ada",
            created_at=NOW,
            updated_at=NOW,
            consent={"email": {"state": "subscribed"}},
        )
        for i in range(1, 201)
    ]
    store.upsert(people)
    port = _free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    figures = {}
    try:
        sinks: list[tuple[str, Any]] = [
            (
                "email (SMTP on loopback)",
                Email(
                    "127.0.0.1",
                    port,
                    sender="shop@bench.example",
                    security="none",
                    brand=Brand(name="Bench", address="1 Main St"),
                ),
            ),
            ("webhook (loopback HTTP)", Webhook(hook_url, "bench-secret-0123456789")),
            ("JSON Lines file", JsonLines("bench.jsonl", root=tmp)),
            ("CSV file", Csv("bench.csv", root=tmp)),
        ]
        for i, (label, sink) in enumerate(sinks):
            plan = [
                a.model_copy(update={"idempotency_key": f"{a.idempotency_key}:{i}"})
                for a in actions(people, n, "tag")
            ]
            figures[label] = timed(
                label, lambda plan=plan, sink=sink: apply(plan, store, [sink]), n
            )
            sink.close()
    finally:
        controller.stop()
        server.shutdown()
        store.close()
    return figures


def measure(n: int, url: str = "") -> dict[str, Any]:
    """Actions/s per sink, for ``run.py``."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for platform in ("shopify", "woocommerce"):
            figures.update(platform_figures(platform, n, url, Path(tmp)))
        figures.update(local_figures(n, url, Path(tmp)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sinks": figures, "peak_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--postgres", default="", help="store URL instead of SQLite")
    args = parser.parse_args()
    measure(args.actions, args.postgres)


if __name__ == "__main__":
    main()
