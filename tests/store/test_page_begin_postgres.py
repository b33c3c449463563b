"""Every page of a PostgreSQL sync of orders, its first one too, begins in one round trip
(``page_commit.lazy_commit``: BEGIN, the lazy commit and the shop's writer lock together):
the shop's row is created, and its id known, before the first page's transaction, so no
lookup opens that transaction first (issue 20)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from shopsync.store import Store, page_commit
from shopsync.sync import sync
from tests.test_models import order
from tests.test_sync import ListAdapter, at, stored

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("depth", [0, 1])  # pages written in turn, or by a writer thread
def test_the_first_page_begins_in_one_round_trip_as_every_other(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    monkeypatch.setattr(page_commit, "DEPTH", depth)
    shop = ListAdapter(page_size=3)
    for n in range(7):
        shop.orders[f"o{n}"] = order(id=f"o{n}", updated_at=at(n))
    store = Store(postgres_url)  # a new store: the sync creates the shop's row
    said: list[str] = []
    folded: list[bytes] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: said.append(a[2]))
    real = page_commit._begun

    def begun(conn: Any, raw: Any, sql: bytes) -> None:
        folded.append(sql)
        real(conn, raw, sql)

    monkeypatch.setattr(page_commit, "_begun", begun)
    report = sync(shop, store, resources=["orders"])
    assert report.resources["orders"].pages == 3
    assert len(stored(store)) == 7
    assert len(folded) == 3, folded  # each page's BEGIN went with its lazy commit and lock
    assert all(b"pg_advisory_xact_lock" in sql for sql in folded)
    alone = [s for s in said if "synchronous_commit" in s]
    assert not alone, alone  # none sent on its own, after a BEGIN of psycopg's
    store.close()
