"""The alternative to shopsync's Shopify read: the official ShopifyAPI client, as its README
pages through a resource (REST ``PaginatedIterator``), against the same emulated shop.

    python benchmarks/alt_shopifyapi.py [--orders 2000] [--seconds 600]

The emulator enforces the REST Admin API's standard-plan bucket (40 calls, leaking 2 per
second) and serves ``Link``-header cursor pages as Shopify does, so the bound for a REST
read is 2 pages of 250 orders a second = 500 orders/s (the 40-call burst aside). The read
stops after ``--seconds`` if it has not finished by then, and says how far it got.
ShopifyAPI builds a pyactiveresource object for every nested JSON object of an order, which
is what decides its speed here.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

from shopsync.testing.process import emulate_in_process

PAGE = 250
REST_CALLS_PER_S = 2.0


def read_orders(settings: dict[str, Any], url: str, seconds: float) -> dict[str, Any]:
    import shopify
    from pyactiveresource.connection import ClientError

    session = shopify.Session(settings["shop"], settings["api_version"], settings["access_token"])
    shopify.ShopifyResource.activate_session(session)
    shopify.ShopifyResource.set_site(f"{url}/admin/api/{settings['api_version']}")
    read = pages = 0
    stopped = None
    finished = True
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        for page in shopify.PaginatedIterator(shopify.Order.find(limit=PAGE, status="any")):
            read += len(page)
            pages += 1
            if seconds and time.perf_counter() - wall > seconds:
                finished = not page.has_next_page()
                break
    except ClientError as exc:  # a 429 is not retried by the client
        stopped = f"{type(exc).__name__}: HTTP {getattr(exc.response, 'code', '?')}"
        finished = False
    finally:
        shopify.ShopifyResource.clear_session()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bound = REST_CALLS_PER_S * PAGE
    return {
        "read": read,
        "pages": pages,
        "finished": finished,
        "stopped_by": stopped,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "orders_per_s": round(read / wall, 2),
        "bound_orders_per_s": bound,
        "fraction_of_bound": round(read / wall / bound, 3),
    }


def measure(orders: int, seed: int, seconds: float) -> dict[str, Any]:
    options = {"seed": seed, "customers": max(10, orders // 4), "orders": orders, "products": 80}
    with emulate_in_process("shopify", **options) as shop:
        figures = read_orders(shop.settings, shop.url, seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"orders": orders, **figures, "peak_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=600.0, help="0 = read all")
    args = parser.parse_args()
    print(json.dumps(measure(args.orders, args.seed, args.seconds)))


if __name__ == "__main__":
    main()
