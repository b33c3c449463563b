"""Three job engines on one PostgreSQL, measured the same way: shopsync's jobs table,
procrastinate and pgqueuer (issue 21: "choose the engine by measuring, and say why").

    SHOPSYNC_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/job_engines.py \
        [--jobs 1000] [--consumers 1,2,4] [--engines jobs,procrastinate,pgqueuer] \
        [--history 0]

For each engine and each consumer count, in a fresh schema (dropped afterwards):

1. **enqueue** ``--jobs`` jobs one at a time, each in its own transaction, as ``shopsync
   enqueue`` and the webhook app do (one shop per job, deduplicated per shop while queued);
2. ``ANALYZE`` the schema's tables (the statistics autovacuum keeps for a table in use);
3. **drain** them with N processes (spawned, connected, then started together), each
   claiming one job at a time and marking it finished, as a worker whose jobs are long does:
   claim+finish throughput over the drain, and each claim's latency (p50, p99); for
   shopsync's table also the claim's SELECT alone (``query p50``: without the wait for the
   claim lock and the other round trips, the part an index changes).

``--history N`` first writes N finished jobs in bulk (a week of history stays in shopsync's
table, and procrastinate keeps finished jobs too; pgqueuer moves them to a log table).
``jobs@REV`` is shopsync's jobs table at migration REV. What each engine does per claim is
not identical, and docs/scaling.md says how: shopsync's claim also enforces one running job
per shop; procrastinate's ``lock`` does the same; pgqueuer has no per-key lock (its dedupe
key only joins queued jobs).
Requires the ``bench`` extra (``pip install -e '.[bench]'``) for procrastinate and pgqueuer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from typing import Any

from _pg_bench import schema, started
from sqlalchemy import create_engine, text

ENGINES = ("jobs", "procrastinate", "pgqueuer")


# -- shopsync's jobs table ---------------------------------------------------------------


def _store(url: str, engine: str, migrate: bool) -> Any:
    from shopsync.store import Store

    store = Store(url, migrate=False)
    if migrate:
        store.migrate(engine.partition("@")[2] or "head")
    return store


def jobs_install(url: str, conninfo: str, engine: str, history: int) -> None:
    from sqlalchemy import insert

    from shopsync.store.schema import jobs as table

    store = _store(url, engine, migrate=True)
    if history:
        now = int(time.time() * 1e6)
        rows = [
            {
                "kind": "sync",
                "shop": f"old{i}",
                "payload": "{}",
                "status": "done",
                "lock_key": f"sync:old{i}",
                "attempts": 1,
                "max_attempts": 5,
                "run_after": now - 1000 * i,
                "created_at": now - 1000 * i,
                "finished_at": now - 1000 * i,
            }
            for i in range(history)
        ]
        with store.engine.begin() as conn:
            conn.execute(insert(table), rows)
    store.close()


def jobs_enqueue(url: str, conninfo: str, engine: str, count: int) -> float:
    from shopsync.store import jobs

    store = _store(url, engine, migrate=False)
    t0 = time.perf_counter()
    for i in range(count):
        jobs.enqueue(store, "sync", f"shop{i}", "{}", f"sync:shop{i}")
    took = time.perf_counter() - t0
    store.close()
    return took


def jobs_consume(url: str, conninfo: str, engine: str, worker: str, ready: Any, go: Any) -> Any:
    from sqlalchemy import event

    from shopsync.store import jobs

    store = _store(url, engine, migrate=False)
    jobs.counts(store)  # connected before the start
    queries: list[float] = []  # the claim's SELECT alone: no lock wait, one round trip
    started: list[float] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def before(*args: Any) -> None:
        started.append(time.perf_counter())

    @event.listens_for(store.engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT") and "FROM jobs" in statement and "count" not in statement:
            queries.append(time.perf_counter() - started[-1])

    ready.release()
    go.wait()
    claims, finishes, ids = [], [], []
    while True:
        t0 = time.perf_counter()
        job = jobs.claim(store, worker, ttl=60)
        t1 = time.perf_counter()
        if job is None:
            break
        jobs.finish(store, job)
        claims.append(t1 - t0)
        finishes.append(time.perf_counter() - t1)
        ids.append(job.id)
    store.close()
    return claims, finishes, ids, queries


# -- procrastinate -----------------------------------------------------------------------


def _procrastinate(conninfo: str) -> Any:
    import logging

    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # "App in the main module"

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=2)
    )

    @app.task(name="sync")
    def sync(shop: str) -> None:
        """Never run here: the benchmark claims and finishes jobs itself."""

    return app


def procrastinate_install(url: str, conninfo: str, engine: str, history: int) -> None:
    async def main() -> None:
        app = _procrastinate(conninfo)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
        if history:  # finished jobs stay in procrastinate_jobs, as in shopsync's table
            import psycopg

            async with await psycopg.AsyncConnection.connect(conninfo) as conn:
                await conn.execute(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
                    " SELECT 'default', 'sync', 'sync:old' || i, '{}', 'succeeded'"
                    " FROM generate_series(1, %s) AS i",
                    (history,),
                )

    asyncio.run(main())


async def _procrastinate_defer(app: Any, prefix: str, count: int) -> None:
    task = app.tasks["sync"]
    for i in range(count):
        key = f"sync:{prefix}{i}"
        await task.configure(lock=key, queueing_lock=key).defer_async(shop=f"{prefix}{i}")


async def _procrastinate_finish(app: Any, job: Any) -> None:
    from procrastinate.jobs import Status

    await app.job_manager.finish_job(job, status=Status.SUCCEEDED, delete_job=False)


def procrastinate_enqueue(url: str, conninfo: str, engine: str, count: int) -> float:
    async def main() -> float:
        app = _procrastinate(conninfo)
        async with app.open_async():
            t0 = time.perf_counter()
            await _procrastinate_defer(app, "shop", count)
            return time.perf_counter() - t0

    return asyncio.run(main())


def procrastinate_consume(
    url: str, conninfo: str, engine: str, worker: str, ready: Any, go: Any
) -> Any:
    async def main() -> Any:
        app = _procrastinate(conninfo)
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            ready.release()
            await asyncio.to_thread(go.wait)
            claims, finishes, ids = [], [], []
            while True:
                t0 = time.perf_counter()
                job = await app.job_manager.fetch_job(None, worker_id)
                t1 = time.perf_counter()
                if job is None:
                    break
                await _procrastinate_finish(app, job)
                claims.append(t1 - t0)
                finishes.append(time.perf_counter() - t1)
                ids.append(job.id)
            return claims, finishes, ids

    return asyncio.run(main())


# -- pgqueuer ----------------------------------------------------------------------------


async def _pgqueuer(conninfo: str) -> tuple[Any, Any]:
    import psycopg
    from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
    from pgqueuer.queries import Queries

    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    return conn, Queries(PsycopgDriver(conn))


async def _pgqueuer_claim(queries: Any, manager: Any) -> Any:
    from pgqueuer.ports.repository import EntrypointExecutionParameter

    got = await queries.dequeue(
        batch_size=1,
        entrypoints={"sync": EntrypointExecutionParameter(concurrency_limit=0)},
        queue_manager_id=manager,
        global_concurrency_limit=None,
        heartbeat_timeout=dt.timedelta(seconds=60),
    )
    return got[0] if got else None


def pgqueuer_install(url: str, conninfo: str, engine: str, history: int) -> None:
    # pgqueuer moves a finished job to its log table: history does not touch its queue.
    async def main() -> None:
        conn, queries = await _pgqueuer(conninfo)
        await queries.install()
        await conn.close()

    asyncio.run(main())


def pgqueuer_enqueue(url: str, conninfo: str, engine: str, count: int) -> float:
    async def main() -> float:
        conn, queries = await _pgqueuer(conninfo)
        t0 = time.perf_counter()
        for i in range(count):
            await queries.enqueue("sync", b"{}", dedupe_key=f"sync:shop{i}")
        took = time.perf_counter() - t0
        await conn.close()
        return took

    return asyncio.run(main())


def pgqueuer_consume(url: str, conninfo: str, engine: str, worker: str, ready: Any, go: Any) -> Any:
    async def main() -> Any:
        conn, queries = await _pgqueuer(conninfo)
        manager = uuid.uuid4()
        ready.release()
        await asyncio.to_thread(go.wait)
        claims, finishes, ids = [], [], []
        while True:
            t0 = time.perf_counter()
            job = await _pgqueuer_claim(queries, manager)
            t1 = time.perf_counter()
            if job is None:
                break
            await queries.log_jobs([(job, "successful", None)])
            claims.append(t1 - t0)
            finishes.append(time.perf_counter() - t1)
            ids.append(job.id)
        await conn.close()
        return claims, finishes, ids

    return asyncio.run(main())


# -- the runs ----------------------------------------------------------------------------


def _family(engine: str) -> str:
    return engine.split("@")[0]


def _consume(
    family: str, url: str, conninfo: str, engine: str, worker: str, ready: Any, go: Any, out: Any
) -> None:
    consume = globals()[f"{family}_consume"]
    out.send(consume(url, conninfo, engine, worker, ready, go))


def _analyze(url: str) -> None:
    """Planner statistics, as autovacuum keeps them for a table that has lived a while
    (right after a bulk write there are none, and every engine's plan is a guess)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        for name in list(names):
            conn.execute(text(f'ANALYZE "{name}"'))
    engine.dispose()


def run_one(base: str, engine: str, count: int, consumers: int, history: int) -> dict[str, float]:
    family = _family(engine)
    with schema(base) as url:
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)  # libpq's form
        globals()[f"{family}_install"](url, conninfo, engine, history)
        enqueued = globals()[f"{family}_enqueue"](url, conninfo, engine, count)
        _analyze(url)
        arglists = [(family, url, conninfo, engine, f"w{n}") for n in range(consumers)]
        with started(_consume, arglists) as consuming:
            results, drained = consuming.go()
    claims = sorted(c for r in results for c in r[0])
    finishes = [f for r in results for f in r[1]]
    ids = [i for r in results for i in r[2]]
    queries = sorted(q for r in results for q in (r[3] if len(r) > 3 else []))
    if len(ids) != count or len(set(ids)) != count:
        raise SystemExit(f"{engine}: {len(ids)} claims of {len(set(ids))} jobs, {count} queued")
    return {
        "enqueue_per_s": count / enqueued,
        "drain_per_s": count / drained,
        "claim_p50_ms": statistics.median(claims) * 1e3,
        "claim_p99_ms": claims[min(len(claims) - 1, int(len(claims) * 0.99))] * 1e3,
        "finish_p50_ms": statistics.median(finishes) * 1e3,
        "query_p50_ms": statistics.median(queries) * 1e3 if queries else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--consumers", default="1,2,4")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--history", type=int, default=0)
    args = parser.parse_args(argv)
    base = os.environ.get("SHOPSYNC_TEST_POSTGRES_URL")
    if not base:
        print(
            "set SHOPSYNC_TEST_POSTGRES_URL to a PostgreSQL the benchmark may use", file=sys.stderr
        )
        return 2
    counts = [int(n) for n in args.consumers.split(",")]
    print(f"{args.jobs} jobs, {args.history} finished jobs of history; load {_load()}")
    print(
        f"{'engine':<14} {'consumers':>9} {'enqueue/s':>10} {'claim+finish/s':>15} "
        f"{'claim p50 ms':>13} {'claim p99 ms':>13} {'finish p50 ms':>14} {'query p50 ms':>13}"
        "  load"
    )
    for engine in args.engines.split(","):
        for consumers in counts:
            got = run_one(base, engine, args.jobs, consumers, args.history)
            print(
                f"{engine:<14} {consumers:>9} {got['enqueue_per_s']:>10,.0f} "
                f"{got['drain_per_s']:>15,.0f} {got['claim_p50_ms']:>13.1f} "
                f"{got['claim_p99_ms']:>13.1f} {got['finish_p50_ms']:>14.1f} "
                f"{got['query_p50_ms']:>13.2f}  {_load()}",
                flush=True,
            )
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
