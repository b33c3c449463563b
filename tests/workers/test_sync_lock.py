"""A sync takes its shop's lock: a hand-run ``shopsync sync`` (or ``shopsync.sync()``) and a
worker's sync job never run the same shop at once (issue 21, item 1: "one shop's sync never
runs twice at once"). A second sync is refused with a clear message, or waits with
``--wait``; the worker's job waits up to its ttl, then goes back to the queue."""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.models import Order
from shopsync.store import Store, jobs
from shopsync.sync import SyncRunning, sync
from shopsync.worker import enqueue, run
from tests.sync.emulated import connect, emulated
from tests.workers.helpers import config, shop_config


def _hold(url: str, settings: dict[str, Any], holding: Any, go: Any) -> None:
    """Another process's sync of the shop, paused after its first page until ``go``."""
    import shopsync

    def pause(resource: str, page: Any, report: Any) -> None:
        if not holding.is_set():
            holding.set()
            go.wait(60)

    store = Store(url)
    try:
        sync(shopsync.connect("shopify", **settings), store, on_page=pause)
    finally:
        store.close()


@contextmanager
def another_sync(url: str, settings: dict[str, Any]) -> Iterator[Any]:
    """Run a sync of the shop in another process; yields ``go`` (set it to let it finish)."""
    context = mp.get_context("spawn")
    holding, go = context.Event(), context.Event()
    Store(url).close()  # the schema exists before both start
    proc = context.Process(target=_hold, args=(url, settings, holding, go))
    proc.start()
    try:
        assert holding.wait(60), "the other sync did not start"
        yield go
    finally:
        go.set()
        proc.join(60)
    assert proc.exitcode == 0


def test_a_second_sync_of_a_shop_is_refused_or_waits_while_one_runs(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulated("shopify", customers=5, orders=30) as shop:
        plain = {k: v for k, v in shop.settings.items() if isinstance(v, (str, int))}
        monkeypatch.setenv("TEST_STORE_URL", store_url)
        monkeypatch.setenv("TEST_TOKEN", str(plain["access_token"]))
        args = ["sync", "shopify", "--db", "env:TEST_STORE_URL"]
        args += ["-s", "access_token=env:TEST_TOKEN"]
        args += [a for k, v in plain.items() if k != "access_token" for a in ("-s", f"{k}={v}")]
        store = Store(store_url)
        try:
            waited: list[Any] = []
            with another_sync(store_url, {**plain, "page_size": 10}) as go:
                with pytest.raises(SyncRunning) as refused:
                    sync(connect(shop), store)
                message = str(refused.value)
                assert f"another sync of shopify shop {shop.state.shop} is running" in message
                assert "did not start" in message and plain["access_token"] not in message
                assert refused.value.retryable
                assert store.count(Order, "shopify", shop.state.shop) <= 10  # its first page

                cli = CliRunner().invoke(app, args)
                assert cli.exit_code != 0
                assert "another sync of shopify shop" in cli.output, cli.output
                assert "--wait" in cli.output and plain["access_token"] not in cli.output

                waiter = threading.Thread(
                    target=lambda: waited.append(sync(connect(shop), store, lock_wait=60))
                )
                waiter.start()
                waiter.join(1.5)
                assert waiter.is_alive() and not waited  # waiting for the other to finish
                go.set()
            waiter.join(60)
            assert waited and waited[0].total("seen") > 0  # ran once the other finished
            assert store.count(Order, "shopify", shop.state.shop) == 30
            assert CliRunner().invoke(app, args).exit_code == 0
            assert jobs.leases_held(store) == []
        finally:
            store.close()


def test_a_workers_sync_job_waits_for_a_hand_run_sync_then_retries(tmp_path: Any) -> None:
    # SQLite only: the lease is the same rows on both engines (the test above runs on both)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with emulated("shopify", customers=5, orders=20) as shop:
        plain = {k: v for k, v in shop.settings.items() if isinstance(v, (str, int))}
        cfg = config(store_url, [shop_config("main", "shopify", plain)], job_ttl=2.0)
        store = Store(store_url)
        try:
            with another_sync(store_url, {**plain, "page_size": 10}):
                enqueue(store, "sync", "main", config=cfg)
                busy = run(cfg, store, until_idle=True, schedule=False, fence=False)
                assert (busy.done, busy.failed, busy.retried) == (0, 0, 1), busy.errors
                assert jobs.counts(store) == {"queued": 1}  # back in the queue, not failed
            with jobs_due_now(store):
                later = run(cfg, store, until_idle=True, schedule=False, fence=False)
            assert (later.done, later.failed) == (1, 0), later.errors
        finally:
            store.close()


@contextmanager
def jobs_due_now(store: Store) -> Iterator[None]:
    """Wait out the retry delay the refused job got (2 s after its first attempt)."""
    import time

    time.sleep(2.1)
    yield


def test_the_lock_outlives_a_long_wait_between_pages(store: Store) -> None:
    """A Shopify bulk operation or a long rate-limit wait can keep a page away for longer than
    the lock's ttl: the lock is renewed all along, not only when a page arrives."""
    with emulated("shopify", customers=5, orders=20) as shop:
        paused, go = threading.Event(), threading.Event()

        def pause(resource: str, page: Any, report: Any) -> None:
            if not paused.is_set():
                paused.set()
                go.wait(30)

        first = threading.Thread(
            target=lambda: sync(connect(shop, page_size=10), store, on_page=pause, lock_ttl=2)
        )
        first.start()
        try:
            assert paused.wait(30)
            threading.Event().wait(3)  # longer than the ttl, with no page in between
            with pytest.raises(SyncRunning):
                sync(connect(shop), store)
        finally:
            go.set()
            first.join(30)
        assert jobs.leases_held(store) == []
