"""A kill inside a sync page on PostgreSQL (issue 20's round trips): the process dies by
SIGKILL right after the page's raw ``BEGIN; SET LOCAL synchronous_commit = off`` and its
shop lock, before its first statement, or in the middle of a COPY into ``orders`` under its
savepoint, or right after its change notes went with its ``UPDATE shops`` (before its
COPYs). The next sync leaves the store equal to a row-path store of the same shop, its
change notes and sequence value among it."""

from __future__ import annotations

import os
import signal
from contextlib import closing
from typing import Any

import pytest
from shopsync_shopify import ShopifyAdapter
from sqlalchemy import func, select

import shopsync
from shopsync.store.schema import orders
from tests.pg_schema import own_schema
from tests.reliability.chaos import Kill, run_child, sync_child
from tests.reliability.test_fast_ingest_crash import PAGE, READING
from tests.shopify.test_fast_ingest import snapshot
from tests.sync.emulated import emulated

pytestmark = pytest.mark.postgres


def die_in_a_page(emit: Any, settings: dict[str, Any], url: str, where: str) -> Any:
    """A sync that SIGKILLs itself in its second page of orders: after the raw BEGIN (the
    first page's orders stored), or at the fifth row of its COPY into ``orders``."""
    import importlib

    from shopsync.store import _copy, page_commit

    sync_module = importlib.import_module("shopsync.sync")
    pages = {"copies": 0}
    if where == "begin":

        def lazy(conn: Any, lock: str | None = None) -> None:
            with conn.engine.connect() as other:  # (a page of products may come first)
                stored = other.exec_driver_sql("SELECT count(*) FROM orders").scalar()
            page_commit.lazy_commit(conn, lock)
            if stored == PAGE:
                os.kill(os.getpid(), signal.SIGKILL)

        sync_module.lazy_commit = lazy
    elif where == "notes":
        from shopsync.store import fast_rows

        insert = fast_rows._insert

        def killing_insert(c: Any, table: Any, rows: Any) -> None:
            if table.name == "orders":
                pages["copies"] += 1
                if pages["copies"] == 2:  # the notes and the sequence value sent, no COPY
                    os.kill(os.getpid(), signal.SIGKILL)
            insert(c, table, rows)

        fast_rows._insert = killing_insert
    else:
        real = _copy._stream

        def stream(conn: Any, into: str, cols: str, encode: Any, rows: Any, *rest: Any) -> None:
            if into != '"orders"':
                return real(conn, into, cols, encode, rows, *rest)
            pages["copies"] += 1
            sent = {"n": 0}

            def killing(row: Any) -> Any:
                sent["n"] += 1
                if pages["copies"] == 2 and sent["n"] == 5:
                    os.kill(os.getpid(), signal.SIGKILL)
                return encode(row)

            return real(conn, into, cols, killing, rows, *rest)

        _copy._stream = stream  # type: ignore[assignment]
    ShopifyAdapter.bulk_order_page = PAGE  # this child's own copy of the class
    return sync_child(emit, ShopifyAdapter, settings, url, full=True)


@pytest.mark.parametrize("where", ["begin", "copy", "notes"])
def test_a_kill_inside_a_postgres_page_loses_and_duplicates_nothing(
    postgres_url: str, where: str
) -> None:
    with emulated("shopify", customers=20, orders=50) as shop:
        settings = {**shop.settings, **READING["shopify"]}
        shopsync.Store(postgres_url).close()  # the schema, made by the parent
        first = run_child(die_in_a_page, (settings, postgres_url, where), Kill())
        assert first.killed, first.error
        store = shopsync.Store(postgres_url)
        with store.engine.connect() as c:  # the killed page left nothing
            assert c.execute(select(func.count()).select_from(orders)).scalar_one() == PAGE
        with closing(ShopifyAdapter(**settings)) as adapter:
            adapter.bulk_order_page = PAGE
            report = shopsync.sync(adapter, store)
        assert report.total("quarantined") == 0
        base = os.environ["SHOPSYNC_TEST_POSTGRES_URL"]
        with own_schema(base) as other:
            reference = shopsync.Store(other)
            with closing(ShopifyAdapter(**settings)) as adapter:
                adapter.fast_ingest = False
                shopsync.sync(adapter, reference)
            theirs = snapshot(reference)
            theirs_noted = _noted(reference)
            reference.close()
        ours = snapshot(store)
        ours_noted = _noted(store)
        store.close()
        for name in ("orders", "line_items", "refunds", "fulfillments", "customers"):
            assert ours[name] == theirs[name], name
        assert ours_noted[0] == theirs_noted[0]  # every customer with an order noted
        assert ours_noted[1]  # the orders' sequence value is the shop's


def _noted(store: Any) -> tuple[set[str], bool]:
    """The customers noted changed, and whether the orders' newest sequence value is the
    shop's (a page killed after its ``UPDATE shops`` left no value behind)."""
    from sqlalchemy import text

    with store.engine.connect() as c:
        noted = set(c.execute(text("SELECT customer_id FROM changed_customers")).scalars())
        newest = c.execute(text("SELECT max(seq) FROM orders")).scalar()
        shop = c.execute(text("SELECT max(facts_seq) FROM shops")).scalar()
    return noted, newest == shop
