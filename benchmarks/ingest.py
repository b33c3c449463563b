"""Ingest speed, side by side in one run (issue 20): where a first sync of a large shop spends
its time in shopsync.

    python benchmarks/ingest.py                       # quick: 2,000 bulk orders, 5,000 upserts
    python benchmarks/ingest.py --orders 50000 --bulk-orders 0 --modes rows,copy,ingest \
        --passes insert
    SHOPSYNC_TEST_POSTGRES_URL=postgresql+psycopg://... python benchmarks/ingest.py

Two workloads, each figure beside the row path's from the same run, with the load average
(``uptime``) read just before each one, since other work on a shared machine moves them:

- **Shopify bulk backfill → SQLite**: an emulated shop (served from a child process) runs a
  bulk operation; its JSONL is reassembled, every order mapped and validated, and stored page
  by page, first through the models (the row path), then as rows without a model per order
  (the columnar ingest path the sync takes, :mod:`shopsync.ingest_columns`). Figure: orders
  per CPU-second of this process (the reader's work, per core). ``--memory N`` adds the peak
  RSS of fast-path backfills of N and 4N orders, each in a fresh process.
- **Upserts of orders with 3 lines each**, one transaction per 250-order page written as a
  sync writes it (``page_commit.lazy_commit``), into a fresh store: PostgreSQL by rows
  (``_copy.COPY_MIN_ROWS`` set out of reach: executemany), by COPY (the default), and the
  columnar ingest path's rows by COPY (``--modes ingest``: ``upsert_order_rows``, the rows
  built before the clock starts), and SQLite for scale. Three passes each: first insert, the
  same pages again (unchanged), every order newer (replaced with its lines). Figure: orders/s, wall;
  for PostgreSQL on this machine also the insert's orders per CPU-second of this process and
  its server backend together, which a loaded machine moves far less, with the microseconds
  an order of each side. Pages are written as a sync writes them, by a
  ``page_commit.PageWriter``: in turn on this thread (``--overlap``: on a thread of its own).
  ``--modes mapped`` shows what that overlap gives a sync: each page's rows are built on this
  thread as the reader would map them (from the models, with ``store._rows.order_rows``)
  while the writer thread stores the page before, beside the same in turn.
  PostgreSQL's statistics are taken (``ANALYZE``) after the first page and between passes,
  as autovacuum would within a minute of a long first sync: without them the figure
  depended on whether autovacuum had reached that run's tables yet.

``--stages`` replays one bulk result file through the fast path's first stages (reassembly,
then rows; the rows from parsed lines and from typed structs, ``_bulk_structs``): CPU
microseconds an order of each, the same bytes each time.
``--profile N`` prints the cProfile top N (by own time) of the bulk backfill and of the COPY
and ingest insert passes (those by this thread's CPU time, not their waits): where the
remaining time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import io
import multiprocessing
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import shopify_read  # noqa: E402
import store_upsert  # noqa: E402
from _pg_bench import schema  # noqa: E402
from sqlalchemy import event  # noqa: E402

import shopsync  # noqa: E402
from shopsync._instants import to_micros  # noqa: E402
from shopsync.ingest_columns import OrderRows, store_page  # noqa: E402
from shopsync.store import _copy  # noqa: E402
from shopsync.store._rows import order_rows  # noqa: E402
from shopsync.store.fast_rows import upsert_order_rows  # noqa: E402
from shopsync.store.page_commit import PageWriter, lazy_commit  # noqa: E402
from shopsync.testing.process import emulate_in_process  # noqa: E402

SEED = 20240601


def load() -> str:
    """The load average as ``uptime`` shows it."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _top(profile: cProfile.Profile, n: int) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start : start + n + 1])


@contextlib.contextmanager
def profiled(enabled: bool, cpu: bool = False) -> Iterator[cProfile.Profile | None]:
    """cProfile by wall time, or (``cpu``) by this thread's CPU time: a PostgreSQL pass's
    wall profile is mostly its waits on the server (on a loaded machine, for a core)."""
    if not enabled:
        yield None
        return
    profile = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
    profile.enable()
    try:
        yield profile
    finally:
        profile.disable()


def _on_cpu(pid: int) -> float:
    """Seconds process ``pid`` has run on a CPU, to the nanosecond (0.0 where not known)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


@contextlib.contextmanager
def statements(store: shopsync.Store) -> Iterator[dict[str, list[float]]]:
    """Per kind of statement (its first words; COPY by its target): seconds waited on it,
    count, and the seconds its PostgreSQL backend ran for it (``/proc/<pid>/schedstat``, on
    this machine). Under ``"(between statements)"``: the backends' time outside them (BEGIN
    rides on a page's first statement; COMMIT, and ANALYZE if any, fall here)."""
    spent: dict[str, list[float]] = {}
    pids: set[int] = set()

    def add(key: str, seconds: float, served: float) -> None:
        entry = spent.setdefault(key, [0.0, 0, 0.0])
        entry[0] += seconds
        entry[1] += 1
        entry[2] += served

    def pid_of(conn: Any) -> int:
        pid = int(conn.connection.driver_connection.info.backend_pid)
        pids.add(pid)
        return pid

    def before(conn: Any, *_: Any) -> None:
        conn.info["bench_t0"] = (time.perf_counter(), _on_cpu(pid_of(conn)))

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        t0, s0 = conn.info["bench_t0"]
        served = _on_cpu(pid_of(conn)) - s0
        add(" ".join(statement.split()[:3])[:48], time.perf_counter() - t0, served)

    real = _copy._stream

    def stream(conn: Any, into: str, *args: Any) -> None:
        t0, s0 = time.perf_counter(), _on_cpu(pid_of(conn))
        real(conn, into, *args)
        add(f"COPY {into}", time.perf_counter() - t0, _on_cpu(pid_of(conn)) - s0)

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)
    _copy._stream = stream  # type: ignore[assignment]
    with store.engine.connect() as conn:  # the pooled connection(s) the pass will use
        pid_of(conn)
    start = {pid: _on_cpu(pid) for pid in pids}
    try:
        yield spent
    finally:
        _copy._stream = real
        event.remove(store.engine, "before_cursor_execute", before)
        event.remove(store.engine, "after_cursor_execute", after)
        total = sum(_on_cpu(pid) - start.get(pid, 0.0) for pid in pids)
        inside = sum(entry[2] for entry in spent.values())
        spent["(between statements)"] = [0.0, 0, total - inside]


def backfill(orders: int, profile: int, staged: bool = False) -> dict[str, Any]:
    """The Shopify bulk backfill into SQLite, row path then fast path on the same shop:
    orders per CPU-second, each with the load average read just before it (``staged``:
    and the fast path's :func:`stages`)."""
    out: dict[str, Any] = {}
    with emulate_in_process("shopify", **shopify_read.shop_options(orders, SEED)) as shop:
        if staged:
            out["stages"] = {"load": load(), **stages(shop)}
        for label, fast in (("rows", False), ("fast", True)):
            at = load()
            figures = shopify_read.backfill(shop, fast)  # measured without the profiler's cost
            figures["load"] = at
            if profile:
                adapter = shopsync.connect("shopify", **shop.settings, bulk_poll_interval=0.2)
                adapter.takes_rows = fast  # type: ignore[attr-defined]
                with tempfile.TemporaryDirectory() as tmp, profiled(True) as prof:
                    store = shopsync.Store(f"sqlite:///{tmp}/p.db")
                    for page in adapter.backfill_orders():  # type: ignore[attr-defined]
                        with store.transaction() as tx:
                            store.upsert(page.records, conn=tx)
                            store_page(store, "shopify", shop.shop, page, tx)
                    store.close()
                assert prof is not None
                figures["profile"] = _top(prof, profile)
            out[label] = figures
    return out


def stages(shop: Any, repeats: int = 3) -> dict[str, float]:
    """CPU microseconds an order of the fast path's first stages, replayed on one bulk result
    file (the best of ``repeats``, so the same bytes each time): reassembling the JSONL into
    orders (each handed to a mapper that keeps nothing), then that with the store rows built
    (``_fast_orders.order_tables``), from parsed lines and (msgspec installed) from typed
    structs. Storing is the rest of the backfill's figure."""
    from shopsync_shopify import _bulk, _bulk_route, queries
    from shopsync_shopify._fast_orders import order_tables

    adapter: Any = shopsync.connect("shopify", **shop.settings, bulk_poll_interval=0.2)
    query = queries.for_version(queries.BULK_ORDERS, adapter.api_version)
    op_id, url = adapter._run_bulk(query.replace("QUERY_ARG", ""), 3600.0)
    spool = adapter._download(op_id, url)
    seen = [0]

    def count(node: Any) -> None:
        seen[0] += 1

    out: dict[str, float] = {}
    structs = _bulk._bulk_structs
    runs = (
        ("reassemble (parsed)", None, None),
        ("reassemble + rows (parsed)", order_tables, None),
        ("reassemble + rows (typed structs)", order_tables, structs),
    )
    try:
        for label, rows, decoder in runs:
            if rows is not None and decoder is not None and structs is None:
                continue  # msgspec is not installed
            _bulk._bulk_structs = _bulk_route._bulk_structs = decoder  # type: ignore[assignment]
            best = float("inf")
            for _ in range(repeats):
                spool.seek(0)
                seen[0] = 0
                cpu = time.process_time()
                for page in adapter._assemble(
                    spool, adapter.bulk_order_page, "orders", count, rows
                ):
                    seen[0] += len(getattr(page, "rows", ()))
                best = min(best, (time.process_time() - cpu) / max(seen[0], 1) * 1e6)
            out[label] = round(best, 1)
    finally:
        _bulk._bulk_structs = _bulk_route._bulk_structs = structs  # type: ignore[assignment]
        spool.close()
        adapter.close()
    return out


def _peak(orders: int, fast: bool, sender: Any) -> None:
    sender.send(shopify_read.measure_backfill(orders, SEED, fast))


def memory(orders: int) -> dict[int, dict[str, Any]]:
    """Peak RSS of a fast-path backfill of ``orders`` and of four times as many, each in a
    fresh process (the emulated shop is in a process of its own): flat means the bulk read
    holds one partition and one page, never the whole shop."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for n in (orders, orders * 4):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_peak, args=(n, True, sender))
        child.start()
        out[n] = receiver.recv()
        child.join()
    return out


def _analyze(store: shopsync.Store) -> None:
    """Give PostgreSQL's planner current statistics, as autovacuum does within a minute.

    Without them a fresh store's lookups by id (the stored versions of a page, the child rows
    a replaced order drops) scan every row of the shop, so a pass's figure would depend on
    whether autovacuum happened to analyze that run's tables yet (seen: 2x either way)."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:  # the store's tables only, not every schema's
            names = conn.exec_driver_sql(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()"
            ).scalars()
            conn.exec_driver_sql(f"ANALYZE {', '.join(names)}")


def _as_rows(orders: list[Any]) -> list[OrderRows]:
    """The rows the columnar ingest path would hand the store for these orders (built before
    the clock starts: the adapter's row mapper is the bulk backfill's figure, not this one)."""
    return [
        OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
        for o in orders
    ]


WRITING = [0.0]
"""CPU seconds of the threads that wrote pages (:func:`_page`), this one's or the writer's."""


def _page(store: shopsync.Store, page: list[Any], tx: Any) -> None:
    """One page as a sync writes it: its own transaction, committed without waiting for the
    WAL flush (``page_commit.lazy_commit``); models by ``Store.upsert``, rows (the columnar
    ingest path) by ``upsert_order_rows``."""
    start = time.thread_time()
    shop_id = store.shop_id("shopify", "bench.myshopify.com", tx)  # known: see _run
    lazy_commit(tx, store._writer_lock(shop_id))  # with the shop's writer lock, as a sync
    if page and isinstance(page[0], OrderRows):
        upsert_order_rows(store, tx, "shopify", "bench.myshopify.com", page)
    else:
        store.upsert(page, conn=tx)
    WRITING[0] += time.thread_time() - start  # (the commit's own CPU, a few us, left out)


OVERLAP = False
"""Pages written by a ``page_commit.PageWriter`` on a thread of their own while this one goes
on (``--overlap``; the sync's default, ``page_commit.DEPTH``, writes them in turn)."""


def _run(
    store: shopsync.Store,
    orders: list[Any],
    analyze: bool = False,
    mapped: bool = False,
    overlap: bool | None = None,
) -> float:
    """Every page, one transaction each: orders/s. ``analyze``: statistics taken after the
    first page (every path alike). ``mapped``: each page's rows built on this thread as it
    goes, as a sync's reader maps the next page while the writer stores the last one.
    ``overlap``: pages written by a thread of their own (default :data:`OVERLAP`)."""
    # the shop's row durably first, as a sync creates it before its first page: that page's
    # BEGIN then goes with its lazy commit and lock in one round trip, as every other's
    store.shop_id("shopify", "bench.myshopify.com")
    start = time.perf_counter()
    pages = [orders[k : k + store_upsert.PAGE] for k in range(0, len(orders), store_upsert.PAGE)]
    depth = 1 if (OVERLAP if overlap is None else overlap) else 0
    read: Callable[[list[Any]], list[Any]] = _as_rows if mapped else list
    if analyze and pages:
        with PageWriter(store, depth) as writer:
            writer.submit(functools.partial(_page, store, read(pages.pop(0))))
        _analyze(store)
    with PageWriter(store, depth) as writer:
        for page in pages:
            writer.submit(functools.partial(_page, store, read(page)))
    return len(orders) / (time.perf_counter() - start)


def _backend_seconds(pids: set[int]) -> float | None:
    """CPU seconds the PostgreSQL backends ``pids`` used so far (None: not on this machine)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cpu_rate(
    store: shopsync.Store, orders: list[Any], **how: Any
) -> tuple[float, tuple[float, float, float, float, float] | None]:
    """:func:`_run`, and the orders per CPU-second of this process and its PostgreSQL
    backends together, with the microseconds per order of each side and of the page writes
    alone (the writer's share of this process's), and what a quiet 2-core machine would give
    (orders/s): in turn, one after the other; overlapped, the longer of the writer's chain
    (its own CPU, then the server's, page after page) and this process's CPU (one GIL).
    Figures the other work of a shared machine moves far less than the wall rate (it waits
    for a core, it does not use more of one)."""
    pids: set[int] = set()
    if store.engine.dialect.name != "postgresql":
        return _run(store, orders, analyze=True, **how), None
    event.listen(store.engine, "connect", lambda dbapi, _rec: pids.add(dbapi.info.backend_pid))
    store.engine.dispose()  # every connection from here on is seen
    with store.engine.connect():
        pass
    server = _backend_seconds(pids)
    mine = time.process_time()
    WRITING[0] = 0.0
    rate = _run(store, orders, analyze=True, **how)
    mine = time.process_time() - mine
    after = _backend_seconds(pids)
    if server is None or after is None:
        return rate, None
    served = after - server
    overlap = how.get("overlap")
    if OVERLAP if overlap is None else overlap:
        quiet = len(orders) / max(WRITING[0] + served, mine)
    else:
        quiet = len(orders) / (mine + served)
    per_order = 1e6 / len(orders)
    return rate, (
        len(orders) / (mine + served),
        mine * per_order,
        served * per_order,
        WRITING[0] * per_order,
        quiet,
    )


def _passes(
    url: str, n: int, profile: int, passes: list[str], rows: bool = False, **how: Any
) -> dict[str, Any]:
    """The passes on a fresh store; ``rows``: written as the columnar ingest path's rows;
    ``how``: :func:`_run`'s ``mapped`` and ``overlap`` for the insert pass."""
    store = shopsync.Store(url)
    given: Callable[[list[Any]], list[Any]] = _as_rows if rows else list
    fresh = store_upsert.make_orders(n)
    out: dict[str, Any] = {}
    pages = given(fresh)
    # The input, built before the clock, is not a sync's (a reader holds one page): kept out
    # of the garbage collector's full collections, which scanned all of it again and again
    # (measured: a third of the process's CPU when pages were written by a thread)
    gc.freeze()
    try:
        out["insert"], out["insert_cpu"] = _cpu_rate(store, pages, **how)
    finally:
        gc.unfreeze()
    _analyze(store)
    if "unchanged" in passes:
        out["unchanged"] = _run(store, given(fresh))
    if "replace" in passes:
        out["replace"] = _run(store, given(store_upsert.make_orders(n, bump=30)))
    assert store.count(shopsync.Order, "shopify", "bench.myshopify.com") == n
    if profile:  # a second insert of the same size, profiled: the figures above ran without
        again = store_upsert.make_orders(n, bump=60)
        fresh_ids = given([o.model_copy(update={"id": f"p{o.id}"}) for o in again])
        _analyze(store)
        global OVERLAP
        overlap, OVERLAP = OVERLAP, False  # cProfile sees this thread only
        try:
            with profiled(True, cpu=True) as prof, statements(store) as spent:
                _run(store, fresh_ids)
        finally:
            OVERLAP = overlap
        assert prof is not None
        out["profile"] = _top(prof, profile)
        out["statements"] = spent
    store.close()
    return out


def upserts(
    postgres: str | None, n: int, profile: int, modes: list[str], passes: list[str]
) -> dict[str, Any]:
    """orders/s by engine and path, each pass in a fresh store (a fresh schema)."""
    results: dict[str, Any] = {}
    runs: list[tuple[str, Callable[[], Any]]] = []
    if "sqlite" in modes:

        def on_sqlite() -> dict[str, Any]:
            with tempfile.TemporaryDirectory() as tmp:
                return _passes(f"sqlite:///{tmp}/bench.db", n, 0, passes)

        runs.append(("sqlite (rows)", on_sqlite))
    if postgres:
        for label, least in (
            ("postgres rows", 10**9),
            ("postgres COPY", _copy.COPY_MIN_ROWS),
            ("postgres ingest", _copy.COPY_MIN_ROWS),  # the columnar path's rows, by COPY
        ):
            if label.split()[1].lower() not in modes:
                continue

            def on_postgres(least: int = least, label: str = label) -> dict[str, Any]:
                saved = _copy.COPY_MIN_ROWS
                _copy.COPY_MIN_ROWS = least
                try:
                    with schema(postgres) as url:
                        shown = 0 if label == "postgres rows" else profile
                        return _passes(url, n, shown, passes, rows=label.endswith("ingest"))
                finally:
                    _copy.COPY_MIN_ROWS = saved

            runs.append((label, on_postgres))
        if "mapped" in modes:  # the overlap as a sync has it: rows mapped while pages are written
            for label, overlap in (("postgres mapped, in turn", False), ("postgres mapped", True)):

                def on_mapped(overlap: bool = overlap) -> dict[str, Any]:
                    with schema(postgres) as url:
                        return _passes(url, n, 0, [], mapped=True, overlap=overlap)

                runs.append((label, on_mapped))
    for label, fn in runs:
        at = load()
        results[label] = {**fn(), "load": at}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk-orders", type=int, default=2_000)
    parser.add_argument(
        "--memory", type=int, default=0, help="peak RSS of N and 4N fast-path orders (0: skip)"
    )
    parser.add_argument("--orders", type=int, default=5_000, help="orders per upsert run")
    parser.add_argument("--modes", default="sqlite,rows,copy,ingest", help="upsert runs to make")
    parser.add_argument("--passes", default="insert,unchanged,replace", help="upsert passes")
    parser.add_argument("--postgres", default=os.environ.get("SHOPSYNC_TEST_POSTGRES_URL"))
    parser.add_argument("--profile", type=int, default=10, help="cProfile top N (0: none)")
    parser.add_argument(
        "--stages", action="store_true", help="replay the bulk file: CPU us an order a stage"
    )
    parser.add_argument(
        "--overlap", action="store_true", help="write pages on a thread of their own"
    )
    args = parser.parse_args(argv)
    global OVERLAP
    OVERLAP = args.overlap
    if args.bulk_orders:
        both = backfill(args.bulk_orders, args.profile, args.stages)
        print(f"Shopify bulk backfill -> SQLite, {args.bulk_orders:,} orders, one emulated shop:")
        staged = both.pop("stages", None)
        if staged is not None:
            at = staged.pop("load")
            figures = ", ".join(f"{k} {v:.1f}" for k, v in staged.items())
            print(f"  fast path stages, CPU us an order (best of 3): {figures}   (load {at})")
        for label, b in both.items():
            name = "fast path (rows) " if label == "fast" else "row path (models)"
            print(
                f"  {name} {b['orders_per_cpu_second']:8,.0f} orders/CPU-s "
                f"({b['orders_per_s']:,.0f}/s wall, {b['stored']:,} stored, {b['failed']} failed)"
                f"   (load {b['load']})"
            )
        for label, b in both.items():
            if "profile" in b:
                print(f"  profile of the {label} path, top {args.profile} by own time:")
                print(b["profile"])
    if args.memory:
        print("\nPeak RSS of a fast-path backfill, each in a fresh process:")
        for n, m in memory(args.memory).items():
            print(
                f"  {n:8,} orders: {m['peak_mb']:5,} MB peak, "
                f"{m['orders_per_cpu_second']:,.0f} orders/CPU-s"
            )
    if args.orders:
        modes = args.modes.split(",")
        print(f"\nUpserts, {args.orders:,} orders x 3 lines, pages of {store_upsert.PAGE}:")
        passes = args.passes.split(",")
        for label, r in upserts(args.postgres, args.orders, args.profile, modes, passes).items():
            shown = [k for k in ("insert", "unchanged", "replace") if k in r]
            figures = "  ".join(f"{k} {r[k]:8,.0f}/s" for k in shown)
            print(f"  {label:14} {figures}   (load {r['load']})")
            if r.get("insert_cpu"):
                rate, mine, served, writing, quiet = r["insert_cpu"]
                print(
                    f"  {'':14} insert {rate:8,.0f} orders per CPU-second (this process and its"
                    f" PostgreSQL backends together: {mine:.1f} + {served:.1f} us an order;"
                    f" the page writes {writing:.1f} of the {mine:.1f}): a quiet 2-core"
                    f" machine's bound {quiet:,.0f}/s"
                )
            if "profile" in r:
                print(
                    f"  profile of a further {label} insert pass, top {args.profile}"
                    " by own CPU time:"
                )
                print(r["profile"])
                print(
                    "  its statements, by time spent waiting on each"
                    " (seconds, count, seconds of the server's CPU):"
                )
                ranked = sorted(r["statements"].items(), key=lambda kv: -kv[1][0])
                for key, (seconds, count, served) in ranked[: args.profile + 1]:
                    print(f"    {seconds:7.3f} s {count:5d} {served:7.3f} s  {key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
