"""A sync page of orders or products commits without waiting for the disk; nothing else does
(``shopsync.store.page_commit``): the setting each write ran under, read on its own
connection right after the statement."""

from __future__ import annotations

import contextlib
import importlib
import threading
from typing import Any

import pytest
from sqlalchemy import event

import shopsync
from shopsync.errors import ShopSyncError
from shopsync.models import Customer, Order
from shopsync.outbox import record_unsubscribe
from shopsync.store import Store, page_commit

from .emulated import connect, emulated

pytestmark = pytest.mark.postgres

WATCHED = ("sync_cursors", "changed_customers", "suppressions", "outbox")


def _watch(store: Store) -> list[tuple[str, str]]:
    """(table, synchronous_commit) of every INSERT / UPDATE / DELETE into a watched table
    (``sync_cursors/<resource>`` for a checkpoint)."""
    seen: list[tuple[str, str]] = []

    def after(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        words = statement.split()
        if not words or words[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            return
        target = words[2] if words[0].upper() != "UPDATE" else words[1]
        table = target.strip('"')
        if table == "sync_cursors":  # a record page's, or the checkouts' or deletions'
            table = f"{table}/{params.get('resource') or params.get('resource_1')}"
        if table.split("/")[0] in WATCHED:
            row = cursor.connection.execute("SHOW synchronous_commit").fetchone()
            seen.append((table, row[0]))

    event.listen(store.engine, "after_cursor_execute", after)
    return seen


@pytest.mark.parametrize("depth", [0, 1])  # pages written in turn, or by a writer thread
def test_only_sync_pages_commit_without_waiting_for_the_disk(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    monkeypatch.setattr(page_commit, "DEPTH", depth)
    store = Store(postgres_url)
    seen = _watch(store)
    with emulated("shopify", customers=6, orders=12, products=2) as shop:
        adapter = connect(shop)
        shopsync.sync(adapter, store)
        order = next(iter(shop.state.orders.values()))
    pages = [(t, s) for t, s in seen if not t.endswith(("/checkouts", "/deletions"))]
    assert {t for t, _ in pages} >= {
        "sync_cursors/customers",
        "sync_cursors/orders",
        "changed_customers",
    }
    consent = [(t, s) for t, s in pages if t == "sync_cursors/customers"]
    assert {s for _, s in consent} == {"on"}, consent  # customer pages carry consent: durable
    orders = [(t, s) for t, s in pages if t == "sync_cursors/orders"]
    assert orders and {s for _, s in orders} == {"off"}, orders

    seen.clear()  # the same pooled connection, later transactions: durable again
    customer = store.iter(Customer, "shopify", adapter.shop).__next__()
    record_unsubscribe(store, "shopify", adapter.shop, customer.id)
    stored = store.get(Order, "shopify", adapter.shop, order.id)
    assert stored is not None
    newer = stored.model_copy(
        update={"updated_at": stored.updated_at.replace(year=stored.updated_at.year + 1)}
    )
    store.upsert([newer])  # a webhook's write: the platform does not deliver it again
    assert {t for t, _ in seen} >= {"suppressions", "changed_customers"}
    assert {s for _, s in seen} == {"on"}, seen
    store.close()


def test_a_first_sync_creates_its_shop_durably(postgres_url: str) -> None:
    """A PostgreSQL crash (not only an operating-system one) loses the last lazy commits while
    the process lives on: a shop row created in a page's transaction could vanish (its id
    handed out again to the next new shop) while the store still holds that id for it. So the
    shop row is created in a durable transaction of its own, before the first page."""
    store = Store(postgres_url)
    seen: list[tuple[str, str]] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.split()[:3] == ["INSERT", "INTO", "shops"]:
            row = cursor.connection.execute("SHOW synchronous_commit").fetchone()
            seen.append(("shops", row[0]))

    event.listen(store.engine, "after_cursor_execute", after)
    with emulated("shopify", customers=6, orders=12, products=2) as shop:
        shopsync.sync(connect(shop), store)
    assert seen == [("shops", "on")]
    store.close()


@pytest.mark.parametrize("depth", [0, 1])  # pages written in turn, or by a writer thread
def test_a_page_lost_by_a_database_crash_is_read_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    """A PostgreSQL crash loses the last lazily committed page, with its checkpoint, while the
    sync runs on (another thread met the dropped connection, so the pool reconnected): the
    next page must not commit a checkpoint past the lost one. Simulated: after the first page
    of orders committed and before the second begins its writes (on the page writer's thread,
    where no page is under way then: a real crash also ends the transaction of a page being
    written), its rows and its checkpoint vanish as in a crash restart."""
    sync_module = importlib.import_module("shopsync.sync")  # the package names the function
    from shopsync.store.schema import fulfillments, line_items, orders, refunds, sync_cursors

    store = Store(postgres_url)
    lost: list[int] = []
    pages = {"orders": 0}
    real = sync_module._still_written

    def crash_then_check(store_: Store, adapter: Any, resource: str, *args: Any) -> None:
        if resource == "orders":
            pages["orders"] += 1
            if pages["orders"] == 2:
                lost.append(1)
                with store.engine.begin() as conn:
                    for table in (line_items, refunds, fulfillments, orders):
                        conn.execute(table.delete())
                    conn.execute(sync_cursors.delete().where(sync_cursors.c.resource == "orders"))
        real(store_, adapter, resource, *args)

    monkeypatch.setattr(sync_module, "_still_written", crash_then_check)
    monkeypatch.setattr(page_commit, "DEPTH", depth)
    with emulated("shopify", customers=3, orders=600, products=1) as shop:
        adapter = connect(shop)
        with contextlib.suppress(ShopSyncError):  # stopping is right, going past it is not
            shopsync.sync(adapter, store)
        monkeypatch.setattr(sync_module, "_still_written", real)
        shopsync.sync(adapter, store)  # the re-run
        expected = set(shop.state.orders)
    stored = {o.id for o in store.iter(Order, "shopify", adapter.shop)}
    assert lost == [1]
    assert stored == expected, f"{len(expected - stored)} orders never read again"
    store.close()


def test_a_pages_begin_and_its_lazy_commit_are_one_round_trip(postgres_url: str) -> None:
    """Before a page's first statement, ``BEGIN`` and ``SET LOCAL`` go together (no statement
    of SQLAlchemy's); after one, the ``SET LOCAL`` alone. Either way the page's transaction
    commits lazily, and the connection's next transaction is durable again."""
    store = Store(postgres_url)
    said: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: said.append(a[2]))

    def setting(conn: Any) -> str:
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    with store.transaction() as conn:
        page_commit.lazy_commit(conn)
        assert setting(conn) == "off"
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert not [s for s in said if "synchronous_commit =" in s]
    with store.transaction() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid  # the same one
        assert setting(conn) == "on"
        page_commit.lazy_commit(conn)  # inside a transaction begun: the statement of its own
        assert setting(conn) == "off"
    assert [s for s in said if "synchronous_commit =" in s] == [
        "SET LOCAL synchronous_commit = off"
    ]
    with store.transaction() as conn:
        assert setting(conn) == "on"
        page_commit.lazy_commit(conn)
        conn.exec_driver_sql("CREATE TEMPORARY TABLE t_lazy (x int)")
        conn.exec_driver_sql("INSERT INTO t_lazy VALUES (1)")
    with store.engine.connect() as conn:  # what the transaction wrote was committed
        assert conn.exec_driver_sql("SELECT x FROM t_lazy").scalar() == 1
    store.close()


@pytest.mark.parametrize("level", [None, "SERIALIZABLE"])
def test_a_pages_begin_is_one_round_trip_after_an_isolation_level_was_set(
    postgres_url: str, level: str | None
) -> None:
    """A read at REPEATABLE READ (the facts' consistent read) leaves its pooled connection
    with an isolation level of its own (SQLAlchemy resets it to the engine's): the next
    page still begins in one round trip, at the level psycopg would have begun with."""
    store = Store(postgres_url)
    engine = store.engine
    if level is not None:  # an engine whose connections all take a level
        store.engine = engine.execution_options(isolation_level=level)
    said: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: said.append(a[2]))
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SELECT 1")
    with store.transaction() as conn:
        page_commit.lazy_commit(conn)
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        isolation = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
    assert isolation == (level or "read committed").lower()
    assert not [s for s in said if "synchronous_commit =" in s]
    store.engine = engine
    store.close()


def test_a_page_that_fails_after_its_raw_begin_leaves_its_connection_clean(
    postgres_url: str,
) -> None:
    """An error before the page's first statement, in it, or after a write: the page's
    transaction is rolled back (psycopg sees the raw BEGIN's transaction as its own), and
    the pooled connection's next use begins a fresh, durable transaction."""
    store = Store(postgres_url)
    with store.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE t_failed (x int)")
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def fail(write: bool, statement: str | None) -> None:
        # (the page's error, or the database's)
        with contextlib.suppress(Exception), store.transaction() as conn:
            page_commit.lazy_commit(conn)
            if write:
                conn.exec_driver_sql("INSERT INTO t_failed VALUES (1)")
            if statement is not None:
                conn.exec_driver_sql(statement)
            raise LookupError("the page failed")

    for write, statement in [(False, None), (False, "SELECT * FROM nowhere"), (True, None)]:
        fail(write, statement)
        with store.engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            assert raw.pgconn.transaction_status == 0  # idle: no transaction left open
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert conn.exec_driver_sql("SELECT count(*) FROM t_failed").scalar() == 0
    store.close()


def _advisory_locks(conn: Any) -> int:
    return int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).scalar()
    )


def test_a_pages_begin_takes_the_shops_lock_in_the_same_round_trip(postgres_url: str) -> None:
    """The shop's lock goes with the page's ``BEGIN`` (no statement of its own) and the
    writer's own lock is then not taken again in that transaction; the next transaction of
    the same pooled connection takes it again."""
    store = Store(postgres_url)
    shop = store.shop_id("shopify", "lock.myshopify.com")
    said: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: said.append(a[2]))
    with store.transaction() as conn:
        page_commit.lazy_commit(conn, f"shop:{shop}")
        store._writing(conn, shop)
        assert _advisory_locks(conn) == 1
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    assert not [s for s in said if "pg_advisory" in s]
    with store.transaction() as conn:
        store._writing(conn, shop)
        assert _advisory_locks(conn) == 1
    assert len([s for s in said if "pg_advisory" in s]) == 1
    store.close()


@pytest.mark.parametrize(
    ("first", "second"), [("begin", "begin"), ("begin", "writer"), ("writer", "begin")]
)
def test_two_writers_of_a_shop_still_exclude_each_other(
    postgres_url: str, first: str, second: str
) -> None:
    """Whether a writer takes the shop's lock with its page's ``BEGIN`` or by a statement of
    its own, a second writer of the shop waits until the first one commits."""
    store = Store(postgres_url)
    shop = store.shop_id("shopify", "lock.myshopify.com")

    def lock(conn: Any, how: str) -> None:
        if how == "begin":
            page_commit.lazy_commit(conn, f"shop:{shop}")
        store._writing(conn, shop)

    got = threading.Event()

    def other() -> None:
        with store.transaction() as conn:
            lock(conn, second)
            got.set()

    with store.transaction() as conn:
        lock(conn, first)
        thread = threading.Thread(target=other)
        thread.start()
        assert not got.wait(0.5), "the second writer did not wait for the first"
    assert got.wait(10)
    thread.join()
    store.close()


def test_a_lock_the_pages_begin_could_not_take_raises_its_own_error(postgres_url: str) -> None:
    """The raw round trip failing (here the lock's wait timing out) is rolled back and the
    statements sent one by one: the page sees the database's error, and the connection's
    next page begins cleanly."""
    holder, waiter = Store(postgres_url), Store(postgres_url)
    shop = holder.shop_id("shopify", "lock.myshopify.com")

    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET lock_timeout = '200ms'")
        dbapi_connection.commit()

    event.listen(waiter.engine, "connect", short_wait)
    waiter.engine.dispose()
    with holder.transaction() as conn:
        page_commit.lazy_commit(conn, f"shop:{shop}")
        with pytest.raises(Exception, match="lock timeout"), waiter.transaction() as other:
            page_commit.lazy_commit(other, f"shop:{shop}")
    with waiter.transaction() as other:
        page_commit.lazy_commit(other, f"shop:{shop}")
        assert _advisory_locks(other) == 1
        assert other.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    holder.close()
    waiter.close()


def test_a_lock_name_not_plain_is_still_taken(postgres_url: str) -> None:
    """A name that may not go into the statement's text as it is: its own statement."""
    store = Store(postgres_url)
    with store.transaction() as conn:
        page_commit.lazy_commit(conn, "it's")
        assert _advisory_locks(conn) == 1
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    store.close()
