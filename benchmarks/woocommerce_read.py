"""Read every order of an emulated WooCommerce store and report the throughput.

    python benchmarks/woocommerce_read.py                 # 100,000 orders
    python benchmarks/woocommerce_read.py --orders 20000  # a quicker run

Reports orders/s and the requests made against the floor ``ceil(orders / 100)`` (one request
per page of 100, the most WooCommerce serves). The adapter also asks ``/orders/<id>/refunds``
for each order that lists refunds, since only that carries refund dates and lines; those
requests are counted separately. The emulator runs in this process (its server thread shares
the GIL with the reader), so the figures are a floor for what the adapter itself costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time

import shopsync
from shopsync.testing import emulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=None, help="default: orders / 5")
    parser.add_argument("--products", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    customers = args.customers or max(50, args.orders // 5)

    started = time.perf_counter()
    with emulate(
        "woocommerce",
        seed=args.seed,
        customers=customers,
        orders=args.orders,
        products=args.products,
    ) as shop:
        generated = time.perf_counter() - started
        # The store's millions of objects live in this process only because it is emulated;
        # keep them out of the cyclic collector, which would otherwise rescan them all.
        gc.collect()
        gc.freeze()
        refunded = sum(1 for o in shop.state.orders.values() if o.refunds)
        adapter = shopsync.connect("woocommerce", **shop.settings, per_page=args.per_page)
        read = rejected = pages = 0
        t0 = time.perf_counter()
        for page in adapter.read_orders():
            read += len(page.records)
            rejected += len(page.rejected)
            pages += 1
        elapsed = time.perf_counter() - t0
        stats = adapter.http.stats  # type: ignore[attr-defined]
        adapter.close()
        errors = len(shop.server.errors)

    floor = math.ceil(args.orders / 100)
    figures = {
        "orders": args.orders,
        "read": read,
        "rejected": rejected,
        "seconds": round(elapsed, 2),
        "orders_per_second": round(read / elapsed, 1) if elapsed else None,
        "requests": stats.requests,
        "page_requests": pages,
        "refund_requests": stats.requests - pages - stats.retries,
        "orders_with_refunds": refunded,
        "retries": stats.retries,
        "floor": floor,
        "requests_over_floor": round(stats.requests / floor, 3),
        "generate_seconds": round(generated, 2),
        "emulator_errors": errors,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"read {read:,} orders ({rejected} rejected) in {elapsed:.1f} s: "
        f"{figures['orders_per_second']:,} orders/s"
    )
    print(
        f"requests {stats.requests:,} = {pages:,} pages + {figures['refund_requests']:,} "
        f"refund requests (/refunds pages, per-order look-ups) + {stats.retries} retries; "
        f"floor ceil({args.orders:,}/100) = "
        f"{floor:,} ({figures['requests_over_floor']}x; pages alone "
        f"{pages / floor:.3f}x)"
    )
    print(f"(generating the store took {generated:.1f} s; emulator errors: {errors})")


if __name__ == "__main__":
    main()
