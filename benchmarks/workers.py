"""Workers on one PostgreSQL: the queue's own cost, and syncing many shops with 1, 2, 4 workers.

    SHOPSYNC_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/workers.py \
        [--shops 20] [--customers 40] [--orders 200] [--workers 1,2,4] [--jobs 1000]

1. Queue: ``--jobs`` no-op jobs enqueued, then drained by 2 processes that claim and finish
   them (:mod:`shopsync.store.jobs`): enqueue rate, drain throughput, claim and finish latency.
2. Sync: ``--shops`` emulated shops (half Shopify, half WooCommerce, served by two emulator
   processes) synced from scratch by N worker processes (``shopsync.worker.run``), for each N;
   wall time from the moment every worker is ready, the ratio to one worker, and the rows the
   store's tables took (``pg_stat_user_tables``), from which docs/scaling.md estimates what one
   PostgreSQL serves. Each run has a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from _pg_bench import schema, started
from sqlalchemy import create_engine, text

from shopsync.config import Config, ShopConfig, StoreConfig, WorkerConfig
from shopsync.store import Store, jobs


def _drain(url: str, worker: str, ready: Any, go: Any, out: Connection) -> None:
    store = Store(url, migrate=False)
    ready.release()
    go.wait()
    claims, finishes = [], []
    while True:
        t0 = time.perf_counter()
        job = jobs.claim(store, worker, ttl=60)
        t1 = time.perf_counter()
        if job is None:
            break
        jobs.finish(store, job)
        claims.append(t1 - t0)
        finishes.append(time.perf_counter() - t1)
    store.close()
    out.send((claims, finishes))


def queue_figures(base: str, count: int, processes: int = 2) -> None:
    with schema(base) as url:
        store = Store(url)
        t0 = time.perf_counter()
        for i in range(count):
            jobs.enqueue(store, "sync", f"shop{i}", "{}", f"sync:shop{i}")
        enqueued = time.perf_counter() - t0
        store.close()
        with started(_drain, [(url, f"w{n}") for n in range(processes)]) as draining:
            results, drained = draining.go()
    claims = [c for r in results for c in r[0]]
    finishes = [f for r in results for f in r[1]]
    print(
        f"queue: {count} jobs enqueued in {enqueued:.2f}s = {count / enqueued:,.0f}/s; drained by "
        f"{processes} processes in {drained:.2f}s = "
        f"{count / drained:,.0f} jobs/s; claim median {statistics.median(claims) * 1e3:.1f} ms "
        f"p95 {_p95(claims) * 1e3:.1f} ms; finish median {statistics.median(finishes) * 1e3:.1f} ms"
    )


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


def _serve(specs: list[tuple[str, int]], options: dict[str, Any], out: Connection) -> None:
    from tests.sync.emulated import emulated

    with contextlib.ExitStack() as stack:
        shops = [stack.enter_context(emulated(p, seed=s, **options)) for p, s in specs]
        out.send([(s.platform, dict(s.settings)) for s in shops])
        with contextlib.suppress(EOFError):
            out.recv()


def _work(config: Config, ready: Any, go: Any, out: Connection) -> None:
    from shopsync.worker import run

    store = Store(config.store_url(), migrate=False)
    ready.release()
    go.wait()
    t0 = time.perf_counter()
    report = run(config, store, until_idle=True, schedule=False, fence=False)
    out.send((time.perf_counter() - t0, report.done, report.failed))
    store.close()


def _written(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(
            text(
                "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                "FROM pg_stat_user_tables WHERE schemaname = current_schema()"
            )
        ).scalar()
    engine.dispose()
    return int(total or 0)


def sync_figures(base: str, shops: int, customers: int, orders: int, counts: list[int]) -> None:
    context = mp.get_context("spawn")
    half = [
        [("shopify", i + 1) for i in range(0, shops, 2)],
        [("woocommerce", i + 1) for i in range(1, shops, 2)],
    ]
    options = {"customers": customers, "orders": orders}
    servers, settings = [], []
    for specs in half:
        parent, child = context.Pipe()
        proc = context.Process(target=_serve, args=(specs, options, child), daemon=True)
        proc.start()
        servers.append((proc, parent))
    for _, parent in servers:
        settings += parent.recv()
    configured = [
        ShopConfig(
            name=f"s{i:02d}",
            platform=p,
            settings={k: v for k, v in s.items() if isinstance(v, (str, int, float, bool))},
        )
        for i, (p, s) in enumerate(settings)
    ]
    one = None
    try:
        for count in counts:
            with schema(base) as url:
                config = Config(
                    store=StoreConfig(url=url),
                    shops={s.name: s for s in configured},
                    worker=WorkerConfig(job_ttl=120),
                )
                store = Store(url)
                from shopsync.worker import enqueue

                for name in config.shops:
                    enqueue(store, "sync", name, config=config)
                store.close()
                with started(_work, [(config,)] * count) as working:
                    before = _written(url)
                    results, wall = working.go()
                time.sleep(1)  # the statistics collector reports with a small delay
                rows = _written(url) - before
                done = sum(r[1] for r in results)
                one = one or wall
                total_orders = shops * orders
                print(
                    f"sync {shops} shops ({total_orders:,} orders, {shops * customers:,} "
                    f"customers) with {count} worker(s): {wall:.1f}s, {done} jobs done, "
                    f"{sum(r[2] for r in results)} failed; speed-up x{one / wall:.2f}; "
                    f"{total_orders / wall:,.0f} orders/s; {rows:,} rows written = "
                    f"{rows / wall:,.0f} rows/s, {rows / total_orders:.1f} rows per order"
                )
    finally:
        for proc, parent in servers:
            with contextlib.suppress(OSError):
                parent.send("stop")
            proc.join(timeout=10)


def write_rate(base: str, rows: int = 50_000, batch: int = 1_000) -> None:
    """PostgreSQL's own ceiling on this machine: committed batches of order-sized rows."""
    with schema(base) as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE w (id bigint primary key, shop int, body text)"))
        body = "x" * 400  # about an order row with its columns
        t0 = time.perf_counter()
        for start in range(0, rows, batch):
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO w VALUES (:id, 1, :body)"),
                    [{"id": i, "body": body} for i in range(start, start + batch)],
                )
        took = time.perf_counter() - t0
        engine.dispose()
    print(
        f"postgresql: {rows:,} rows in batches of {batch:,} in {took:.1f}s "
        f"= {rows / took:,.0f} rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--only", default="queue,write,sync", help="parts to run")
    args = parser.parse_args()
    base = os.environ.get("SHOPSYNC_TEST_POSTGRES_URL")
    if not base:
        sys.exit("set SHOPSYNC_TEST_POSTGRES_URL to a PostgreSQL database this may write to")
    print(f"load: {os.getloadavg()}, cpus: {os.cpu_count()}")
    only = args.only.split(",")
    if "queue" in only:
        queue_figures(base, args.jobs)
    if "write" in only:
        write_rate(base)
    if "sync" in only:
        sync_figures(
            base, args.shops, args.customers, args.orders, [int(n) for n in args.workers.split(",")]
        )


if __name__ == "__main__":
    main()
