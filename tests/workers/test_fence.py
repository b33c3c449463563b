"""A worker that cannot renew its job's lock stops itself, exit status 75, before the lock
lapses, so the job is never run by two workers at once; another worker then takes it over
(issue 21, item 1: "a worker that dies mid-job releases its lease and the job is retried")."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, update

from shopsync.config import Config
from shopsync.store import Store, jobs
from shopsync.store._engine import begin_write
from shopsync.store.schema import jobs as jobs_table
from shopsync.worker import enqueue, run
from tests.sync.emulated import emulated
from tests.workers.helpers import config, shop_config

TTL = 2.0


def _work(cfg: Config, url: str) -> None:
    store = Store(url, migrate=False)
    run(cfg, store, until_idle=True, schedule=False, fence=True)


def _taken_over(store: Store, job_id: int) -> Iterator[None]:
    """Another worker's name on the job, as if it had taken it over."""
    with store.engine.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(locked_by="w2"))
    yield


def _unreachable(store: Store, job_id: int) -> Iterator[None]:
    """The job's row locked by someone else: the worker's heartbeat hangs (as on a network
    partition, where the query neither succeeds nor fails)."""
    with store.engine.connect() as conn, conn.begin():
        begin_write(conn)  # SQLite: the whole database's write lock
        conn.execute(select(jobs_table.c.id).where(jobs_table.c.id == job_id).with_for_update())
        yield


@pytest.mark.parametrize(
    ("cut", "engine"),
    [
        (_taken_over, "sqlite"),  # the same on both engines: one UPDATE that finds no row
        (_unreachable, "sqlite"),
        pytest.param(_unreachable, "postgres", marks=pytest.mark.postgres),
    ],
    ids=["taken-over", "hung-sqlite", "hung-postgres"],
)
def test_a_worker_that_cannot_keep_its_lock_exits_75_and_the_job_is_retried(
    cut: Callable[[Store, int], Iterator[None]],
    engine: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    store_url = _url(engine, request, tmp_path)
    with emulated("shopify", customers=5, orders=40) as shop:
        plain = {k: v for k, v in shop.settings.items() if isinstance(v, (str, int))}
        cfg = config(store_url, [shop_config("main", "shopify", plain)], job_ttl=TTL)
        store = Store(store_url)
        proc = None
        try:
            job, _ = enqueue(store, "sync", "main", config=cfg)
            shop.faults.rate_slow, shop.faults.slow_seconds = 1.0, 0.3  # a long sync
            proc = mp.get_context("spawn").Process(target=_work, args=(cfg, store_url))
            proc.start()
            _wait(lambda: bool(jobs.running(store)), "the worker did not start the job")
            started = time.monotonic()
            with contextmanager(cut)(store, job):
                proc.join(30)
                stopped = time.monotonic() - started
            assert proc.exitcode == 75, f"exit status {proc.exitcode}"
            assert stopped < 10  # without the watchdog: 30 s (SQLite's busy wait), or never
            shop.faults.rate_slow = 0.0
            time.sleep(TTL)  # its lock lapses
            again = run(cfg, store, until_idle=True, schedule=False, fence=False)
            assert (again.done, again.failed) == (1, 0), again.errors
        finally:
            if proc is not None and proc.is_alive():
                proc.kill()
            store.close()


def _url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _wait(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
