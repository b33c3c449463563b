"""The alternative to shopsync's WooCommerce read: a plain loop over the ``woocommerce``
client, page after page of ``GET orders`` until ``X-WP-TotalPages``, against the same
emulated store.

    python benchmarks/alt_woocommerce.py [--orders 2000]

It decodes each page's JSON into dicts and keeps nothing else: no validation, no refund
look-ups, no store. It is the floor a hand-written script starts from, so the ratio to it says
what shopsync's mapping, refunds and checkpoints cost.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

from woocommerce_read import emulator_cpu, store_for


def read_orders(settings: dict[str, Any], per_page: int = 100) -> dict[str, Any]:
    import woocommerce

    api = woocommerce.API(
        url=settings["url"],
        consumer_key=settings["consumer_key"],
        consumer_secret=settings["consumer_secret"],
        version="wc/v3",
        timeout=60,
    )
    read = pages = 0
    served = emulator_cpu()
    wall, cpu = time.perf_counter(), time.process_time()
    page, total_pages = 1, 1
    while page <= total_pages:
        response = api.get("orders", params={"per_page": per_page, "page": page})
        response.raise_for_status()
        read += len(response.json())
        total_pages = int(response.headers.get("X-WP-TotalPages", 0))
        pages += 1
        page += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    served = emulator_cpu() - served
    return {
        "read": read,
        "pages": pages,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "emulator_cpu_seconds": round(served, 2),
        "orders_per_s": round(read / wall, 1),
    }


def measure(orders: int, seed: int) -> dict[str, Any]:
    with store_for(orders, seed) as shop:
        figures = read_orders(shop.settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"orders": orders, **figures, "peak_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(measure(args.orders, args.seed)))


if __name__ == "__main__":
    main()
