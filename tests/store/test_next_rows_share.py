""":func:`next_rows` reads the shop's later rows in one pass only when the customers asked
for are a large share of the shop (issue 19, item 4): at 1M customers / 10M orders an
incremental plan asks for ~37k, and that pass reads every later-dated row of seven tables
(~1 CPU-s, as it grows with the shop) where the index costs ~0.5 (measured at 100k / 1M:
the pass 0.10 CPU-s, the index 0.015 ms a customer)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import event

from shopsync.store import Store
from shopsync.store import incremental as marks
from tests.core.retention_helpers import customer, order

AT = dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc)


def _statements(
    store: Store, ids: list[str], customers: int | None
) -> tuple[dict[str, int], list[str]]:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        shop_id = store.shop_id("shopify", "acme")
        found = marks.next_rows(store, shop_id, int(AT.timestamp() * 1e6), ids, customers)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return found, seen


def test_the_share_of_the_shop_decides_between_the_index_and_one_pass(store: Store) -> None:
    store.upsert([customer("a"), customer("b"), order("late", "a", AT + dt.timedelta(hours=1))])
    ids = ["a", "b", *(f"x{i}" for i in range(1200))]
    by_index, asked = _statements(store, ids, customers=10**6)
    whole, once = _statements(store, ids, customers=2 * len(ids))
    assert by_index == whole == {"a": int((AT + dt.timedelta(hours=1)).timestamp() * 1e6)}
    # a statement a table either way: by the index each probes the ids bound as one array,
    # the pass reads the shop's later rows without them
    assert len(asked) == len(once) == 8
    ids_read = "json_each" if store.engine.dialect.name == "sqlite" else "jsonb_array_elements"
    assert all(ids_read in sql for sql in asked)
    assert not any(ids_read in sql for sql in once)


def test_a_set_of_customers_is_probed_by_the_indexes_never_scanned(tmp_path: Path) -> None:
    """By the index, :func:`next_rows` and :func:`plannable_among` read no table whole: each
    id is one probe of an index a table (a union of the rows once read every order of each
    id: 1.3 CPU-s for 13.7k ids at 10M orders)."""
    store = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    store.upsert([customer("a"), order("o1", "a", AT)])
    shop_id = store.shop_id("shopify", "acme")
    seen: list[tuple[str, Any]] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
    at = int(AT.timestamp() * 1e6)
    assert marks.plannable_among(store, shop_id, at, ["a", "b"]) == ({"a"}, {"a"})
    marks.next_rows(store, shop_id, at, ["a", "b"], customers=10**6)
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for sql, params in seen:
            steps = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert [s for s in steps if s.startswith("SCAN") and "VIRTUAL TABLE" not in s] == []
    store.close()


def test_by_the_index_only_the_ids_with_a_later_row_come_back(tmp_path: Path) -> None:
    """Most customers asked for have no later row: a row of nulls for each, fetched and
    dropped in Python, cost more than the probes (3.6 of 27 CPU-s at 43,657 ids of a 10M-order
    shop)."""
    store = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    store.upsert([customer("a"), customer("b"), order("late", "a", AT + dt.timedelta(hours=1))])
    ids = ["a", "b", *(f"x{i}" for i in range(300))]
    seen: list[tuple[str, Any]] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
    at = int(AT.timestamp() * 1e6)
    found = marks.next_rows(store, store.shop_id("shopify", "acme"), at, ids, 10**6)
    assert found == {"a": int((AT + dt.timedelta(hours=1)).timestamp() * 1e6)}
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        returned = [len(raw.execute(sql, params).fetchall()) for sql, params in seen]
    assert len(returned) == 8 and sum(returned) == 1, returned
    store.close()
