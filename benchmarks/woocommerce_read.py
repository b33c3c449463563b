"""Read every order of an emulated WooCommerce store and report the throughput.

    python benchmarks/woocommerce_read.py                 # 100,000 orders
    python benchmarks/woocommerce_read.py --orders 20000  # a quicker run
    python benchmarks/woocommerce_read.py --store         # store every page too, as a sync does
    python benchmarks/woocommerce_read.py --store --rows-off  # ... by the models only
    python benchmarks/woocommerce_read.py --store --profile 25  # where this process's time goes

Reports orders/s and the requests made against the floor ``ceil(orders / 100)`` (one request
per page of 100, the most WooCommerce serves). The adapter also asks ``/orders/<id>/refunds``
for each order that lists refunds, since only that carries refund dates and lines; those
requests are counted separately. The store is served by a child process, so the reader's
figures and peak RSS are its own (the two still share the machine's two cores); the child's
CPU seconds during the read are reported beside them (``emulator_cpu_seconds``, Linux).
``--profile N`` reads the store a second time under cProfile and prints the top N by own time
(the figures above are taken without it). The columnar path asks for pages on threads of
their own (``_windows.in_windows``: two requests at once, each over a window of modification
time), which cProfile does not see: their requests and JSON parsing are the difference
between the CPU seconds and the profile's functions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import math
import multiprocessing
import os
import pstats
import resource
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import shopsync
from shopsync.testing.process import RemoteShop, emulate_in_process

REMOTE = "SHOPSYNC_BENCH_WOO_SHOP"
"""The environment variable naming a store served by another process (:func:`remote_shop`):
JSON of its :class:`RemoteShop` and the serving process's id. In the environment, as the
store's keys are in it, so they are neither in a command line nor in ``run.py``'s log."""


def emulator_cpu() -> float:
    """CPU seconds the emulator's processes have run, all threads (0.0 off Linux): beside
    the reader's own, it says whether the store or the reader held the read up. The
    emulator is this process's child, or the process :data:`REMOTE` names."""
    pids = [child.pid for child in multiprocessing.active_children()]
    if REMOTE in os.environ:
        pids.append(json.loads(os.environ[REMOTE])["pid"])
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def remote_shop(orders: int, seed: int) -> Iterator[dict[str, str]]:
    """An emulated store in a child process, for readers in other processes to take turns
    on (``run.py``'s WooCommerce pairs): the environment that points them at it."""
    with emulate_in_process("woocommerce", **shop_options(orders, seed)) as shop:
        (served,) = multiprocessing.active_children()
        yield {REMOTE: json.dumps({**dataclasses.asdict(shop), "pid": served.pid})}


@contextlib.contextmanager
def store_for(orders: int, seed: int) -> Iterator[RemoteShop]:
    """The store :data:`REMOTE` names when it is set (of ``orders`` orders: it must be),
    else a fresh one served by a child process."""
    if REMOTE not in os.environ:
        with emulate_in_process("woocommerce", **shop_options(orders, seed)) as shop:
            yield shop
        return
    fields = json.loads(os.environ[REMOTE])
    fields.pop("pid")
    shop = RemoteShop(**fields)
    if shop.orders != orders:
        raise SystemExit(f"the store in {REMOTE} has {shop.orders} orders, not {orders}")
    yield shop


def shop_options(orders: int, seed: int) -> dict[str, Any]:
    return {"seed": seed, "customers": max(50, orders // 5), "orders": orders, "products": 60}


def read(
    shop: RemoteShop, per_page: int = 100, store: bool = False, fast: bool = True
) -> dict[str, Any]:
    """Every order through the adapter (and into a fresh SQLite store when ``store``, page by
    page as the sync writes them: ``fast`` through the columnar ingest path, issue 20)."""
    from shopsync.ingest_columns import store_page

    adapter = shopsync.connect("woocommerce", **shop.settings, per_page=per_page)
    adapter.takes_rows = store and fast  # type: ignore[attr-defined]
    got = rejected = pages = 0
    with tempfile.TemporaryDirectory() as tmp:
        target = shopsync.Store(f"sqlite:///{tmp}/woo.db") if store else None
        served = emulator_cpu()
        wall, cpu = time.perf_counter(), time.process_time()
        for page in adapter.read_orders():
            got += len(page.records) + len(getattr(page, "rows", ()))
            rejected += len(page.rejected)
            pages += 1
            if target is not None:
                with target.transaction() as tx:
                    target.upsert(page.records, conn=tx)
                    store_page(target, "woocommerce", shop.shop, page, tx)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        served = emulator_cpu() - served
        if target is not None:
            target.close()
    stats = adapter.http.stats  # type: ignore[attr-defined]
    adapter.close()
    floor = math.ceil(shop.orders / 100)
    return {
        "orders": shop.orders,
        "read": got,
        "rejected": rejected,
        "stored": store,
        "fast": store and fast,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "emulator_cpu_seconds": round(served, 2),
        "orders_per_s": round(got / wall, 1) if wall else None,
        "requests": stats.requests,
        "page_requests": pages,
        "refund_requests": stats.requests - pages - stats.retries,
        "retries": stats.retries,
        "requests_over_floor": round(stats.requests / floor, 3),
    }


def measure(orders: int, seed: int, store: bool = True, fast: bool = True) -> dict[str, Any]:
    with store_for(orders, seed) as shop:
        figures = read(shop, store=store, fast=fast)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**figures, "peak_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--store", action="store_true", help="store every page in SQLite")
    parser.add_argument(
        "--rows-off", action="store_true", help="store by the models (no columnar ingest)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", type=int, default=0, help="cProfile top N (0: none)")
    args = parser.parse_args()
    started = time.perf_counter()
    with emulate_in_process("woocommerce", **shop_options(args.orders, args.seed)) as shop:
        generated = time.perf_counter() - started
        f = read(shop, args.per_page, args.store, not args.rows_off)
        shown = profiled(shop, args, args.profile) if args.profile else ""
    if args.json:
        print(json.dumps({**f, "generate_seconds": round(generated, 2)}))
        return
    print(
        f"read {f['read']:,} orders ({f['rejected']} rejected) in {f['seconds']} s: "
        f"{f['orders_per_s']:,} orders/s ({f['cpu_seconds']} s of this process's CPU, "
        f"{f['emulator_cpu_seconds']} s of the emulator's)"
    )
    print(
        f"requests {f['requests']:,} = {f['page_requests']:,} pages + "
        f"{f['refund_requests']:,} refund requests + {f['retries']} retries; "
        f"{f['requests_over_floor']}x the floor ceil(orders/100)"
    )
    print(f"(generating the store took {generated:.1f} s)")
    if shown:
        print(f"profile of a second read, top {args.profile} by own time:")
        print(shown)


def profiled(shop: RemoteShop, args: argparse.Namespace, top: int) -> str:
    """The cProfile top ``top`` (by own time) of a second read, as the first was made."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        read(shop, args.per_page, args.store, not args.rows_off)
    finally:
        profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start : start + top + 1])


if __name__ == "__main__":
    main()
