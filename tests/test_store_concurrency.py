"""Two writers, two openers, a kill in the middle of an upgrade, leases (issue 16, items 3, 4, 7).

Processes are forked (the parent never holds a connection to the database they open), and
start together on a barrier, so each round is a real race on both engines.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, select, text, update

from shopsync._cli_errors import explain
from shopsync.adapter import Rejected
from shopsync.errors import StoreError
from shopsync.models import Order
from shopsync.store import VERSION_TABLE, Store, metadata
from shopsync.store._engine import LeaseHeld, LeaseLost
from shopsync.store.schema import leases
from tests.test_models import T0, order

FORK = mp.get_context("fork")
SHOP = "acme.myshopify.com"


def _report(queue: Any, job: Any) -> None:
    try:
        job()
        queue.put("ok")
    except BaseException as exc:  # the parent prints what went wrong
        queue.put(f"{type(exc).__name__}: {str(exc)[:400]}")


def _race(jobs: list[Any], timeout: float = 120) -> list[str]:
    """Run each job in its own forked process, all released at once; their outcomes."""
    start = FORK.Event()
    queue = FORK.Queue()

    def child(job: Any) -> None:
        start.wait()
        _report(queue, job)

    procs = [FORK.Process(target=child, args=(job,)) for job in jobs]
    for p in procs:
        p.start()
    start.set()
    outcomes = [queue.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join(timeout)
    return outcomes


def _schema_is_head(store: Store) -> None:
    assert store.schema_version() == Store.head_version()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


class TestOpening:
    def test_processes_opening_a_new_store_create_it_once(self, store_url: str) -> None:
        # Before: 3 of 4 pairs failed on PostgreSQL with a duplicate shopsync_schema_version.
        outcomes = _race([lambda: Store(store_url).close()] * 4)
        assert outcomes == ["ok"] * 4
        with Store(store_url) as store:
            _schema_is_head(store)

    def test_a_new_sqlite_file_locked_by_another_opener_is_waited_for(self, tmp_path: Path) -> None:
        """SQLite refuses a switch to WAL at once, without its busy handler, while another
        connection holds a lock on a file not yet in WAL (two processes creating one store:
        CI saw "database is locked" from one of four). The opener tries again until the
        other is done, as it waits for any other lock."""
        path = tmp_path / "new.db"
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("CREATE TABLE elsewhere (x)")
        timer = threading.Timer(0.5, holder.execute, ["COMMIT"])
        timer.start()
        try:
            with Store(f"sqlite:///{path}") as store:
                assert store.schema_version() == Store.head_version()
                with store.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        finally:
            timer.join()
            holder.close()

    def test_processes_opening_an_older_store_upgrade_it_once(self, store_url: str) -> None:
        old = Store(store_url, migrate=False)
        old.migrate("0004")
        with old.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO shops (shop_id, platform, shop, created_at)"
                    " VALUES (1, 'p', 's', 0)"
                )
            )
        old.close()
        outcomes = _race([lambda: Store(store_url).close()] * 4)
        assert outcomes == ["ok"] * 4
        with Store(store_url) as store:
            _schema_is_head(store)
            assert store.shops() == [("p", "s")]

    def test_threads_construct_stores_at_once(self, store_url: str) -> None:
        errors: list[BaseException] = []
        barrier = threading.Barrier(6)

        def open_one() -> None:
            barrier.wait()
            try:
                Store(store_url).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a thread hung opening the store"
        assert errors == []
        with Store(store_url) as store:
            _schema_is_head(store)


def _orders(round_: int, n: int = 40) -> list[Order]:
    return [
        order(id=f"{round_}-{i}", customer_id=f"c{i}", updated_at=T0 + dt.timedelta(minutes=round_))
        for i in range(n)
    ]


def _as_sync(url: str, rounds: int, barrier: Any) -> None:
    """A sync's page transaction: records, quarantine and cursor together."""
    store = Store(url, migrate=False)
    for r in range(rounds):
        barrier.wait()
        with store.transaction() as tx:
            store.upsert(_orders(r), conn=tx)
            bad = [Rejected("orders", f"bad-{r}", "{}", "no total")]
            store.quarantine("shopify", SHOP, bad, conn=tx)
            store.set_cursor("shopify", SHOP, "orders", cursor=str(r), high_water=T0, conn=tx)
    store.close()


def _as_webhooks(url: str, rounds: int, barrier: Any) -> None:
    """Webhook intake's transaction: the delivery noted, the same records upserted."""
    store = Store(url, migrate=False)
    for r in range(rounds):
        barrier.wait()
        with store.transaction() as tx:
            store.record_delivery("shopify", SHOP, f"d-{r}", "orders/create", conn=tx)
            store.upsert(_orders(r), conn=tx, same_stamp=False)
            bad = [Rejected("orders", f"bad-{r}", "{}", "no total")]
            store.quarantine("shopify", SHOP, bad, conn=tx)
            store.set_cursor("shopify", SHOP, "orders", cursor=str(r), high_water=T0, conn=tx)
    store.close()


class TestTwoWriters:
    ROUNDS = 12

    def test_a_sync_and_webhooks_insert_the_same_new_records(self, store_url: str) -> None:
        Store(store_url).close()
        barrier = FORK.Barrier(2)
        outcomes = _race(
            [
                lambda: _as_sync(store_url, self.ROUNDS, barrier),
                lambda: _as_webhooks(store_url, self.ROUNDS, barrier),
            ]
        )
        assert outcomes == ["ok", "ok"]
        with Store(store_url) as store:
            assert store.count(Order, "shopify", SHOP) == self.ROUNDS * 40
            assert store.shops() == [("shopify", SHOP)]
            assert len(store.quarantined()) == self.ROUNDS

    def test_two_syncs_insert_the_same_new_records(self, store_url: str) -> None:
        Store(store_url).close()
        barrier = FORK.Barrier(2)
        outcomes = _race([lambda: _as_sync(store_url, self.ROUNDS, barrier)] * 2)
        assert outcomes == ["ok", "ok"]
        with Store(store_url) as store:
            assert store.count(Order, "shopify", SHOP) == self.ROUNDS * 40


# -- schema upgrades cut short ------------------------------------------------------------


def _old_store(path: Path) -> None:
    old = Store(f"sqlite:///{path}", migrate=False)
    old.migrate("0001")
    with old.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO shops (shop_id, platform, shop, created_at) VALUES (1, 'p', 's', 0)")
        )
    old.close()


def _statements_of_upgrade(path: Path) -> int:
    seen = [0]

    def count(*_: Any) -> None:
        seen[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        Store(f"sqlite:///{path}").close()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return seen[0]


def _upgrade_stopped_at(path: Path, statement: int, how: str) -> None:
    """Open the store (which upgrades it) and stop at its ``statement``-th SQL statement."""
    seen = [0]

    def stop(*_: Any) -> None:
        seen[0] += 1
        if seen[0] == statement:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt

    event.listen(Engine, "before_cursor_execute", stop)
    try:
        Store(f"sqlite:///{path}").close()
    finally:
        event.remove(Engine, "before_cursor_execute", stop)


class TestUpgradeCutShort:
    @pytest.mark.slow(seconds=50)
    def test_a_sigkill_anywhere_in_an_upgrade_leaves_a_store_that_opens(
        self, tmp_path: Path
    ) -> None:
        template = tmp_path / "old.db"
        _old_store(template)
        probe = tmp_path / "probe.db"
        shutil.copy(template, probe)
        total = _statements_of_upgrade(probe)
        assert total > 20
        points = sorted(set(range(1, total, max(total // 25, 1))) | {total - 1})
        broken = []
        for n in points:
            path = tmp_path / f"cut{n}.db"
            shutil.copy(template, path)
            child = FORK.Process(target=_upgrade_stopped_at, args=(path, n, "kill"))
            child.start()
            child.join(60)
            assert child.exitcode == -signal.SIGKILL
            try:
                with Store(f"sqlite:///{path}") as store:
                    _schema_is_head(store)
                    assert store.shops() == [("p", "s")]
            except Exception as exc:
                broken.append((n, f"{type(exc).__name__}: {str(exc)[:120]}"))
        assert broken == [], f"{len(broken)} of {len(points)} kill points broke the store"

    def test_ctrl_c_in_an_upgrade_leaves_the_old_schema(self, tmp_path: Path) -> None:
        template = tmp_path / "old.db"
        _old_store(template)
        for n in (5, 25, 60):
            path = tmp_path / f"int{n}.db"
            shutil.copy(template, path)
            with pytest.raises(KeyboardInterrupt):
                _upgrade_stopped_at(path, n, "interrupt")
            old = Store(f"sqlite:///{path}", migrate=False)
            assert old.schema_version() == "0001"
            old.close()
            with Store(f"sqlite:///{path}") as store:
                _schema_is_head(store)


class TestErrorsOnSqlite:
    def test_a_file_that_cannot_be_opened_is_a_store_error_without_a_server(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(StoreError) as caught:
            Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'shop.db'}")
        for message in (str(caught.value), explain(caught.value)):
            assert "server" not in message.lower()
            assert "directory" in message

    def test_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not sqlite" * 100)
        with pytest.raises(StoreError) as caught:
            Store(f"sqlite:///{junk}")
        assert "server" not in explain(caught.value).lower()


# -- leases -------------------------------------------------------------------------------


def _hold_then_die(url: str, ready: Any) -> None:
    store = Store(url, migrate=False)
    holding = store.lease("apply", ttl=600.0)  # the default holder: host:pid:random
    holding.__enter__()
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)
    holding.__exit__(None, None, None)  # pragma: no cover - never reached


class TestLeases:
    def test_one_holder_at_a_time(self, store: Store) -> None:
        with store.lease("apply", holder="a", ttl=60):
            with pytest.raises(LeaseHeld, match="held by a"), store.lease("apply", holder="b"):
                pass  # pragma: no cover
            with store.lease("other", holder="b", ttl=60):
                pass
        with store.lease("apply", holder="b", ttl=60):
            pass

    def test_an_expired_lease_goes_to_the_next_asker_and_the_old_holder_learns_it(
        self, store: Store
    ) -> None:
        with pytest.raises(LeaseLost), store.lease("apply", holder="slow", ttl=0.2) as mine:
            threading.Event().wait(0.5)
            with store.lease("apply", holder="next", ttl=60):
                mine.renew()

    def test_keep_renews_once_a_quarter_of_the_ttl_passed_and_learns_of_a_loss(
        self, store: Store
    ) -> None:
        # ``keep`` (an apply run calls it before each row) writes the lease row only once a
        # quarter of its ttl has passed on this process's clock: until then no one else can
        # have taken it. Time is moved by setting ``renewed`` back, not by waiting.
        def expires() -> int:
            with store.engine.connect() as conn:
                return int(conn.execute(select(leases.c.expires_at)).scalar_one())

        with store.lease("apply", holder="a", ttl=60) as mine:
            taken = expires()
            mine.keep()
            assert expires() == taken
            mine.renewed -= 15
            mine.keep()
            assert expires() > taken
            with store.transaction() as conn:  # expired, and taken by another holder
                conn.execute(update(leases).values(holder="b", expires_at=0))
            mine.keep()  # renewed just now: nothing asked
            mine.renewed -= 15
            with pytest.raises(LeaseLost):
                mine.keep()

    def test_keep_after_a_suspend_or_a_clock_jump_learns_of_a_loss(self, store: Store) -> None:
        # A suspended machine (paused VM, laptop asleep) does not advance the monotonic clock,
        # but the lease expired meanwhile on the database's clock and another run took it: the
        # wall clock says so, and ``keep`` must ask before the next row is sent. A wall clock
        # gone back asks too (SQLite's lease clock is the wall clock).
        with store.lease("apply", holder="a", ttl=60) as mine:
            mine.renewed_wall -= 61  # asleep for 61 s: the monotonic clock did not move
            with store.transaction() as conn:
                conn.execute(update(leases).values(holder="b", expires_at=0))
            with pytest.raises(LeaseLost):
                mine.keep()
        with store.lease("apply", holder="c", ttl=60) as mine:
            mine.renewed_wall += 3600  # the wall clock was set back an hour
            with store.transaction() as conn:
                conn.execute(update(leases).values(holder="d", expires_at=0))
            with pytest.raises(LeaseLost):
                mine.keep()

    def test_a_process_that_dies_releases_it(self, store_url: str) -> None:
        # A holder on this machine whose process is gone does not make the re-run wait out
        # the ttl; one on another machine (or a live one) does.
        Store(store_url).close()
        ready = FORK.Event()
        child = FORK.Process(target=_hold_then_die, args=(store_url, ready))
        child.start()
        child.join(60)
        assert ready.is_set() and child.exitcode == -signal.SIGKILL
        with Store(store_url) as store:
            with store.lease("apply", holder="next", ttl=60):
                pass
            elsewhere = store.lease("apply", holder="elsewhere:1:abc", ttl=60)
            with elsewhere, pytest.raises(LeaseHeld, match="elsewhere"), store.lease("apply"):
                pass  # pragma: no cover
