"""Review of the PostgreSQL page round trips (issue 20): the shop lock taken with a page's
``BEGIN`` and the record of locks held, the change notes sent with the sequence value, and
the connection left after every error path."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from shopsync._instants import to_micros
from shopsync.ingest_columns import OrderRows
from shopsync.store import Store, _engine, fast_rows, page_commit
from shopsync.store._rows import order_rows
from shopsync.store.fast_rows import upsert_order_rows
from tests.store.test_write_path_postgres import SHOP, make

pytestmark = pytest.mark.postgres


def _locks(conn: Any) -> int:
    return int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).scalar()
    )


def _waits(store: Store, name: str, how: str) -> bool:
    """Whether another connection taking ``name`` (``how``: with a page's BEGIN, or by
    :func:`_engine.exclusive`) waits: it tries under a short lock_timeout."""
    with store.engine.connect() as other:
        other.exec_driver_sql("SET lock_timeout = '150ms'")
        other.commit()
        try:
            with other.begin():
                if how == "begin":
                    page_commit.lazy_commit(other, name)
                else:
                    _engine.exclusive(other, name)
        except OperationalError:
            return True
        finally:
            other.exec_driver_sql("SET lock_timeout = 0")
            other.commit()
        return False


def test_a_lock_taken_in_a_savepoint_rolled_back_is_taken_again(postgres_url: str) -> None:
    """A savepoint's rollback releases a lock taken inside it: the transaction's next
    ``exclusive`` must send it again, and others must then wait."""
    store = Store(postgres_url)
    with store.engine.connect() as conn, conn.begin():
        nested = conn.begin_nested()
        _engine.exclusive(conn, "shop:1")
        nested.rollback()
        assert _locks(conn) == 0
        _engine.exclusive(conn, "shop:1")
        assert _locks(conn) == 1
        assert _waits(store, "shop:1", "writer")
    store.close()


def test_a_lock_held_is_not_carried_into_the_pooled_connections_next_transaction(
    postgres_url: str,
) -> None:
    """A transaction ended by commit, by rollback, or by the pool's reset: the next one of the
    same DBAPI connection (one pooled) sends the lock again."""
    store = Store(postgres_url)
    store.engine.dispose()
    for end in ("commit", "rollback", "close"):
        conn = store.engine.connect()
        conn.begin()
        page_commit.lazy_commit(conn, "shop:7")
        assert _locks(conn) == 1
        if end == "commit":
            conn.commit()
        elif end == "rollback":
            conn.rollback()
        conn.close()  # (back to the pool, reset there if still in its transaction)
        with store.engine.connect() as again, again.begin():
            assert _locks(again) == 0
            _engine.exclusive(again, "shop:7")
            assert _locks(again) == 1, end
    store.close()


@pytest.mark.parametrize("name", ["a.b-c/d:e_9", "it's", "back\\slash", "shöp", "x;y", "%(n)s"])
@pytest.mark.parametrize("how", ["begin", "writer"])
def test_odd_lock_names_exclude_the_same_name_either_way(
    postgres_url: str, name: str, how: str
) -> None:
    """One name is one lock whether it was taken in a page's BEGIN (its text inline) or by a
    statement of its own (a bound parameter); another name is another lock."""
    store = Store(postgres_url)
    with store.engine.connect() as conn, conn.begin():
        page_commit.lazy_commit(conn, name)
        assert _locks(conn) == 1
        assert _waits(store, name, how)
        assert not _waits(store, name + "2", how)
    store.close()


@pytest.mark.parametrize("setting", ["lock_timeout", "statement_timeout"])
def test_a_timeout_in_the_pages_begin_waits_once_and_is_the_databases_error(
    postgres_url: str, setting: str
) -> None:
    """A page whose lock wait times out fails after one wait (not a second one, taken again
    statement by statement), with the database's own error, and its connection's next
    transaction is clean."""
    store = Store(postgres_url)
    with store.engine.connect() as holder, holder.begin():
        page_commit.lazy_commit(holder, "shop:3")
        with store.engine.connect() as conn:
            conn.exec_driver_sql(f"SET {setting} = '1s'")
            conn.commit()
            started = time.monotonic()
            with pytest.raises(DBAPIError) as raised, conn.begin():
                page_commit.lazy_commit(conn, "shop:3")
            waited = time.monotonic() - started
            sqlstate = getattr(raised.value.orig, "sqlstate", None)
            assert sqlstate == ("55P03" if setting == "lock_timeout" else "57014")
            assert waited < 1.6, f"waited {waited:.2f} s for a 1 s {setting}"  # (twice: 2 s)
            conn.rollback()
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            assert _locks(conn) == 0
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            conn.rollback()
    store.close()


def _rows(orders: list[Any]) -> list[OrderRows]:
    return [
        OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
        for o in orders
    ]


def _notes(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())


def test_a_copy_failing_after_the_notes_takes_them_back_and_a_retry_notes_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notes go before the COPYs now: a COPY that fails rolls them back with the page,
    and the page retried (a new transaction of the same pooled connection) notes each
    customer once; the connection is clean for it."""
    store = Store(postgres_url)
    store.engine.dispose()
    real = fast_rows._insert
    calls = [0]

    def failing(c: Any, table: Any, rows: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:  # the line items' COPY, after the orders' and the notes
            raise RuntimeError("the COPY failed")
        real(c, table, rows)

    monkeypatch.setattr(fast_rows, "_insert", failing)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        page_commit.lazy_commit(conn, f"shop:{store.shop_id('shopify', SHOP, conn)}")
        upsert_order_rows(store, conn, "shopify", SHOP, _rows(make(0, 10)))
    assert _notes(store) == {}
    with store.transaction() as conn:
        page_commit.lazy_commit(conn, f"shop:{store.shop_id('shopify', SHOP, conn)}")
        done, _ = upsert_order_rows(store, conn, "shopify", SHOP, _rows(make(0, 10)))
    assert done.inserted == 10
    notes = _notes(store)  # the page rolled back took 1-7: a sequence gives no value back
    assert notes.keys() == {str(c) for c in range(7)}
    assert sorted(notes.values()) == list(range(8, 15))
    with store.engine.connect() as conn:
        seqs = set(conn.execute(text("SELECT DISTINCT seq FROM orders")).scalars())
        assert seqs == {conn.execute(text("SELECT facts_seq FROM shops")).scalar()}
    store.close()


def test_concurrent_pages_and_a_webhook_of_one_shop_lose_nothing(postgres_url: str) -> None:
    """Two sync pages of one shop (the lock with their BEGIN) and a webhook's upsert (the
    lock by its own statement) at once: every order stored once at its newest version, each
    writer's notes counted: one note write a customer per transaction that wrote its orders."""
    store = Store(postgres_url)
    store.shop_id("shopify", SHOP)
    errors: list[BaseException] = []
    wrote: list[int] = []  # orders each transaction wrote (all 14 or none: one stamp each)
    start = threading.Barrier(3)

    def page(bump: int) -> None:
        try:
            start.wait()
            for _ in range(3):
                with store.transaction() as conn:
                    page_commit.lazy_commit(conn, f"shop:{store.shop_id('shopify', SHOP, conn)}")
                    done, _ = upsert_order_rows(
                        store, conn, "shopify", SHOP, _rows(make(0, 14, bump))
                    )
                wrote.append(done.inserted + done.updated)
                bump += 2
        except BaseException as exc:
            errors.append(exc)

    def webhook() -> None:
        try:
            start.wait()
            for bump in (100, 101, 102):
                done = store.upsert(make(0, 14, bump))
                wrote.append(done.inserted + done.updated)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=page, args=(b,)) for b in (1, 2)]
    threads.append(threading.Thread(target=webhook))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT id, updated_at, seq FROM orders")).all()
        items = conn.execute(text("SELECT count(*) FROM line_items")).scalar()
        facts_seq = conn.execute(text("SELECT facts_seq FROM shops")).scalar()
    assert len(stored) == 14 and items == 28
    newest = make(0, 14, 102)
    assert {r.id: r.updated_at for r in stored} == {o.id: to_micros(o.updated_at) for o in newest}
    assert max(r.seq for r in stored) == facts_seq
    notes = _notes(store)
    assert set(notes) == {str(c) for c in range(7)}
    assert set(wrote) <= {0, 14}, wrote
    writes = len([n for n in wrote if n])  # each wrote every customer's note once
    with store.engine.connect() as conn:
        taken = conn.execute(text("SELECT last_value FROM change_note_seq")).scalar()
    assert taken == 7 * writes, (notes, wrote)
    store.close()


@pytest.mark.parametrize("lock", [None, "shop:4"])
def test_a_connection_lost_before_a_pages_begin_is_a_database_error(
    postgres_url: str, lock: str | None
) -> None:
    """The server gone when a page begins: the store's callers tell a database failure by
    its class (``store.errors.is_database_error``: the CLI's one paragraph, the outbox's
    retry), so the driver's own error must not escape bare; the pool's next connection
    works."""
    from shopsync.store.errors import is_database_error

    store = Store(postgres_url)
    store.engine.dispose()
    conn = store.engine.connect()
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    conn.commit()
    with store.engine.connect() as killer:
        killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        killer.commit()
    time.sleep(0.2)
    conn.begin()
    with pytest.raises(Exception) as raised:
        page_commit.lazy_commit(conn, lock)
    assert is_database_error(raised.value), repr(raised.value)
    with pytest.raises(DBAPIError):  # (the lost connection's rollback)
        conn.rollback()
    conn.close()
    with store.engine.connect() as again:
        assert again.exec_driver_sql("SELECT 1").scalar() == 1
    store.close()


def test_a_tombstoned_order_with_a_stored_version_is_left_to_the_caller(
    postgres_url: str,
) -> None:
    """The one-statement lookup reads stored versions and open checkouts for tombstoned ids
    too: an order tombstoned while a version of it is stored, arriving again, still goes back
    to the caller untouched, its open checkout is not completed, its customer not noted."""
    from shopsync.store.checkout_rows import upsert_checkouts
    from tests.store.test_checkouts import checkout

    store = Store(postgres_url)
    store.upsert(make(0, 10))
    shop_id = store.shop_id("shopify", SHOP)
    at = make(6, 1)[0].created_at
    upsert_checkouts(store, [checkout(shop=SHOP, id="6", created_at=at, updated_at=at)])
    with store.transaction() as conn:
        conn.execute(text("UPDATE checkouts SET completed_at = NULL"))
        conn.execute(text(f"INSERT INTO tombstones VALUES ({shop_id}, 'orders', '6', 'x', 0)"))
        conn.execute(text("DELETE FROM changed_customers"))
        before = conn.execute(text("SELECT updated_at, seq FROM orders WHERE id = '6'")).one()
    with store.transaction() as conn:
        page_commit.lazy_commit(conn, f"shop:{shop_id}")
        done, back = upsert_order_rows(store, conn, "shopify", SHOP, _rows(make(0, 10, 30)))
    assert [r.id for r in back] == ["6"]
    assert done.updated == 9
    with store.engine.connect() as conn:
        after = conn.execute(text("SELECT updated_at, seq FROM orders WHERE id = '6'")).one()
        completed = conn.execute(text("SELECT completed_at FROM checkouts WHERE id = '6'")).scalar()
    assert after == before
    assert completed is None
    assert set(_notes(store)) == {str(c) for c in range(6)}  # order 6 alone is customer 6's
    store.close()


def test_a_lock_taken_between_copys_survives_the_next_copys_rollback(postgres_url: str) -> None:
    """A COPY's savepoint is SQL of its own, unknown to SQLAlchemy: a lock taken after one
    COPY is recorded as held at the top level although a savepoint is open. The next COPY's
    key taken rolls back to that COPY's own savepoint (the newest of the name), so the lock
    must still be held, as the record says."""
    from shopsync.store import _copy
    from shopsync.store.schema import orders

    store = Store(postgres_url)
    store.upsert(make(10, 1))
    taken = [dict(r) for r in order_rows(0, make(10, 1, bump=1)[0])["orders"]]
    first = [row for o in make(0, 10) for row in order_rows(0, o)["orders"]]
    second = [row for o in make(20, 9) for row in order_rows(0, o)["orders"]] + taken
    with store.transaction() as conn:
        shop_id = store.shop_id("shopify", SHOP, conn)
        for row in first + second:
            row["shop_id"] = shop_id
        _copy.insert_rows(conn, orders, first, min_rows=1)
        _engine.exclusive(conn, "between")
        _copy.insert_rows(conn, orders, second, min_rows=1)  # rolls back to its savepoint
        _engine.exclusive(conn, "between")  # (nothing sent: recorded as held)
        assert _locks(conn) == 1
        assert _waits(store, "between", "writer")
    store.close()
