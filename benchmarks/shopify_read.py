"""Read an emulated Shopify shop at the standard plan's limits, by paging and by bulk.

    python benchmarks/shopify_read.py            # 100,000 orders (paging capped by time)
    python benchmarks/shopify_read.py --orders 5000 --paging-seconds 120

Paging throughput is bounded by the GraphQL cost bucket: ``restoreRate / actual cost per
order`` orders per second once the initial burst (the full bucket) is spent. The script
reports the measured rate, that bound, and the fraction of it reached (the burst is
excluded by measuring from the first paced request on), plus THROTTLED answers seen and
records that failed to map (which must be 0).

Bulk (what ``shopsync.sync`` does when paging would wait longer than a bulk operation's fixed
overhead: past about 225 orders on the standard plan under the 2025-07 cost model, see
docs/adapters/shopify.md) is not charged per record: its rate is the emulator's and the
adapter's own speed. The backfill here streams the JSONL result, validates each order and
upserts every page into a fresh SQLite store; ``orders_per_cpu_second`` is that work per
second of this process's CPU, i.e. per core.

The shop is served by a child process (:func:`~shopsync.testing.process.emulate_in_process`),
so the figures and the peak RSS are the reader's alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from typing import Any

from shopsync_shopify.emulator import PLANS

import shopsync
from shopsync.testing.process import RemoteShop, emulate_in_process


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shop_options(orders: int, seed: int, plan: str = "standard") -> dict[str, Any]:
    return {
        "seed": seed,
        "customers": max(10, orders // 4),
        "orders": orders,
        "products": 80,
        "plan": plan,
    }


def paging(shop: RemoteShop, plan: str, seconds: float) -> dict[str, Any]:
    """Page through the orders with GraphQL until done or ``seconds`` (0: no limit)."""
    restore = PLANS[plan][1]
    adapter = shopsync.connect("shopify", **shop.settings, bulk_threshold=None)
    read = failed = 0
    t0 = time.perf_counter()
    steady_from: tuple[float, int] | None = None
    finished = True
    for page in adapter.read_orders():  # type: ignore[attr-defined]
        read += len(page.records)
        failed += len(page.rejected)
        if steady_from is None and adapter.counters["paced_seconds"] > 0:  # type: ignore[attr-defined]
            steady_from = (time.perf_counter(), read)
        if seconds and time.perf_counter() - t0 > seconds:
            finished = read + failed >= shop.orders
            break
    elapsed = time.perf_counter() - t0
    counters = dict(adapter.counters)  # type: ignore[attr-defined]
    page_size = adapter._size("orders")  # type: ignore[attr-defined]
    adapter.close()
    per_order = counters["actual_cost"] / max(read, 1)
    bound = restore / per_order
    if steady_from is not None and read > steady_from[1]:
        steady = (read - steady_from[1]) / (time.perf_counter() - steady_from[0])
    else:
        steady = read / elapsed
    return {
        "orders": shop.orders,
        "read": read,
        "failed": failed,
        "finished": finished,
        "seconds": round(elapsed, 2),
        "orders_per_s": round(read / elapsed, 2),
        "steady_orders_per_s": round(steady, 2),
        "cost_per_order": round(per_order, 1),
        "bound_orders_per_s": round(bound, 2),
        "fraction_of_bound": round(steady / bound, 3),
        "page_size": page_size,
        "throttled": counters["throttled"],
    }


def backfill(shop: RemoteShop, fast: bool = False) -> dict[str, Any]:
    """Every order through one bulk operation, validated and upserted page by page, as the
    sync does: ``fast`` through the columnar ingest path (store rows without a model per
    order, issue 20), else through the models (the row path)."""
    from shopsync.ingest_columns import store_page

    adapter = shopsync.connect("shopify", **shop.settings, bulk_poll_interval=0.2)
    adapter.takes_rows = fast  # type: ignore[attr-defined]
    read = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = shopsync.Store(f"sqlite:///{tmp}/backfill.db")
        wall, cpu = time.perf_counter(), time.process_time()
        for page in adapter.backfill_orders():  # type: ignore[attr-defined]
            read += len(page.records) + len(getattr(page, "rows", ()))
            failed += len(page.rejected)
            with store.transaction() as tx:
                store.upsert(page.records, conn=tx)
                store_page(store, "shopify", shop.shop, page, tx)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stored = store.count(shopsync.Order, "shopify", shop.shop)
        store.close()
    adapter.close()
    return {
        "orders": shop.orders,
        "read": read,
        "stored": stored,
        "failed": failed,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "orders_per_s": round(read / wall, 1),
        "orders_per_cpu_second": round(read / cpu, 1) if cpu else None,
    }


def measure_paging(orders: int, seed: int, plan: str, seconds: float) -> dict[str, Any]:
    with emulate_in_process("shopify", **shop_options(orders, seed, plan)) as shop:
        figures = paging(shop, plan, seconds)
    return {**figures, "plan": plan, "peak_mb": round(_peak_mb())}


def measure_backfill(orders: int, seed: int, fast: bool = False) -> dict[str, Any]:
    with emulate_in_process("shopify", **shop_options(orders, seed)) as shop:
        figures = backfill(shop, fast)
    return {**figures, "peak_mb": round(_peak_mb())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plan", default="standard", choices=sorted(PLANS))
    parser.add_argument(
        "--paging-seconds",
        type=float,
        default=300.0,
        help="stop the paged read after this long (0 = read all)",
    )
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args(argv)
    with emulate_in_process("shopify", **shop_options(args.orders, args.seed, args.plan)) as shop:
        p = paging(shop, args.plan, args.paging_seconds)
        print(
            f"paging: {p['read']:,} orders in {p['seconds']}s = {p['orders_per_s']} orders/s "
            f"overall, {p['steady_orders_per_s']} after the initial burst; actual cost "
            f"{p['cost_per_order']} points/order, bound {p['bound_orders_per_s']} orders/s, "
            f"reached {p['fraction_of_bound']:.0%}; page size {p['page_size']}; "
            f"THROTTLED {p['throttled']}; failed records {p['failed']}"
        )
        if not args.skip_bulk:
            b = backfill(shop)
            print(f"bulk:   {json.dumps(b)}")
    return 1 if p["failed"] or (not args.skip_bulk and b["failed"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
