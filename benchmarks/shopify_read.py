"""Read an emulated Shopify shop at the standard plan's limits, by paging and by bulk.

    python benchmarks/shopify_read.py            # 100,000 orders (paging capped by time)
    python benchmarks/shopify_read.py --orders 5000 --paging-seconds 120

Paging throughput is bounded by the GraphQL cost bucket: ``restoreRate / actual cost per
order`` orders per second once the initial burst (the full bucket) is spent. The script
reports the measured rate, that bound, and the fraction of it reached (the burst is
excluded by measuring from the first paced request on), plus THROTTLED answers seen and
records that failed to map (which must be 0). Bulk is not charged per record: its rate is
the emulator's and the adapter's own speed.
"""

from __future__ import annotations

import argparse
import sys
import time

import shopsync
from shopsync.testing import emulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=None, help="default: orders / 4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--plan", default="standard", help="standard (2000/100), advanced, plus, legacy"
    )
    parser.add_argument(
        "--paging-seconds",
        type=float,
        default=300.0,
        help="stop the paged read after this long (0 = read all)",
    )
    args = parser.parse_args(argv)
    customers = args.customers or max(10, args.orders // 4)

    started = time.perf_counter()
    with emulate(
        "shopify",
        seed=args.seed,
        customers=customers,
        orders=args.orders,
        products=80,
        plan=args.plan,
    ) as shop:
        print(
            f"generated {len(shop.state.orders):,} orders, {len(shop.state.customers):,} customers "
            f"in {time.perf_counter() - started:.1f}s; plan {args.plan}"
        )
        emulator = shop.emulator
        restore = emulator.gql_bucket.rate  # type: ignore[union-attr]

        # --- paging
        adapter = shopsync.connect("shopify", **shop.settings, bulk_threshold=None)
        read = failed = 0
        t0 = time.perf_counter()
        steady_from: tuple[float, int, int] | None = None
        for page in adapter.read_orders():  # type: ignore[attr-defined]
            read += len(page.records)
            failed += len(page.rejected)
            if steady_from is None and adapter.counters["paced_seconds"] > 0:  # type: ignore[attr-defined]
                steady_from = (time.perf_counter(), read, adapter.counters["actual_cost"])  # type: ignore[attr-defined]
            if args.paging_seconds and time.perf_counter() - t0 > args.paging_seconds:
                break
        elapsed = time.perf_counter() - t0
        cost = adapter.counters["actual_cost"]  # type: ignore[attr-defined]
        per_order = cost / max(read, 1)
        bound = restore / per_order
        if steady_from is not None and read > steady_from[1]:
            steady_rate = (read - steady_from[1]) / (time.perf_counter() - steady_from[0])
        else:
            steady_rate = read / elapsed
        throttled = emulator.stats["throttled"]  # type: ignore[union-attr]
        print(
            f"paging: {read:,} orders in {elapsed:.1f}s = {read / elapsed:.2f} orders/s overall, "
            f"{steady_rate:.2f} orders/s after the initial burst"
        )
        print(
            f"        actual cost {per_order:.1f} points/order; "
            f"throttle bound {restore:.0f}/{per_order:.1f} = "
            f"{bound:.2f} orders/s; reached {steady_rate / bound:.0%} of it"
        )
        print(
            f"        page size {adapter._size('orders')} orders; THROTTLED answers: {throttled}; "  # type: ignore[attr-defined]
            f"failed records: {failed}"
        )
        adapter.close()

        # --- bulk
        adapter = shopsync.connect("shopify", **shop.settings, bulk_poll_interval=0.5)
        t0 = time.perf_counter()
        bulk_read = bulk_failed = 0
        for page in adapter.backfill_orders():  # type: ignore[attr-defined]
            bulk_read += len(page.records)
            bulk_failed += len(page.rejected)
        elapsed = time.perf_counter() - t0
        print(
            f"bulk:   {bulk_read:,} orders in {elapsed:.1f}s = "
            f"{bulk_read / elapsed:,.0f} orders/s; "
            f"failed records: {bulk_failed}"
        )
        print(f"bulk/paging speed-up: {bulk_read / elapsed / steady_rate:,.0f}x")
        adapter.close()
        errors = shop.server.errors
    if failed or bulk_failed or errors or bulk_read != args.orders:
        print(f"FAILED: rejected={failed + bulk_failed} emulator errors={errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
