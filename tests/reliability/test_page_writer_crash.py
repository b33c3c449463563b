"""A kill of a PostgreSQL sync whose pages are written on a thread of their own while it reads
the next (issue 20, ``page_commit.PageWriter``): the process dies by SIGKILL right after a
page committed (the next page handed to the writer, the one after it being read), or inside a
page's transaction (its orders written, not its lines). The store then holds whole pages only,
every order behind the checkpoint is stored, and the next sync ends with every order once,
with its lines: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from shopsync.models import LineItem, Money
from shopsync.store import Store
from shopsync.store.schema import line_items
from shopsync.sync import sync
from tests.reliability.chaos import Kill, run_child
from tests.test_models import order
from tests.test_sync import ListAdapter, at, stored

pytestmark = pytest.mark.postgres

PAGE, PAGES, KILLED = 20, 8, 3


def _shop() -> ListAdapter:
    shop = ListAdapter(page_size=PAGE)
    usd = Money(amount=Decimal("5.00"), currency="USD")
    for n in range(PAGE * PAGES):
        lines = tuple(
            LineItem(id=f"{n}-{k}", title="t", quantity=1, unit_price=usd, total=usd)
            for k in range(3)
        )
        shop.orders[f"o{n:03d}"] = order(id=f"o{n:03d}", updated_at=at(n), line_items=lines)
    return shop


def die_during_sync(emit: Any, url: str, where: str) -> Any:
    """Sync the shop into ``url``; SIGKILL this process as ``where`` says."""
    from shopsync.store import _upsert, page_commit

    page_commit.DEPTH = 1  # this child's own copy of the module

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    done = {"pages": 0, "orders": 0}

    def on_page(resource: str, page: Any, report: Any) -> None:
        done["pages"] += 1  # page N committed; N+1 is with the writer, N+2 being read
        if where == "after a page" and done["pages"] == KILLED:
            die()

    real = _upsert.insert_rows

    def insert_rows(conn: Any, table: Any, rows: Any, **kw: Any) -> None:
        real(conn, table, rows, **kw)
        if table.name == "orders" and rows:
            done["orders"] += 1
            if where == "inside a page" and done["orders"] == KILLED:
                die()  # on the writer's thread, inside page KILLED's transaction

    _upsert.insert_rows = insert_rows  # type: ignore[assignment]
    store = Store(url, migrate=False)
    sync(_shop(), store, resources=["orders"], overlap=dt.timedelta(0), on_page=on_page)
    return "finished"


@pytest.mark.parametrize("where", ["after a page", "inside a page"])
def test_a_kill_of_an_overlapped_sync_loses_and_duplicates_nothing(
    postgres_url: str, where: str
) -> None:
    Store(postgres_url).close()  # the schema, made by the parent
    outcome = run_child(die_during_sync, (postgres_url, where), Kill())
    assert outcome.killed, outcome.error
    store = Store(postgres_url)
    have = stored(store)
    cursor = store.get_cursor("shopify", "acme.myshopify.com", "orders")
    assert cursor is not None and cursor.high_water is not None
    assert len(have) % PAGE == 0  # whole pages only
    assert len(have) >= PAGE * (KILLED - 1)
    if where == "inside a page":
        assert len(have) == PAGE * (KILLED - 1)  # the page being written vanished whole
    shop = _shop()
    behind = {i for i, o in shop.orders.items() if o.updated_at <= cursor.high_water}
    assert behind == set(have)  # the checkpoint is at the last stored page, never past it

    sync(shop, store, resources=["orders"], overlap=dt.timedelta(0))
    assert stored(store) == shop.orders
    with store.engine.connect() as c:
        lines = c.execute(select(func.count()).select_from(line_items)).scalar_one()
    assert lines == 3 * PAGE * PAGES
    store.close()
