""":func:`next_rows` reads the shop's later rows in one pass only when the customers asked
for are a large share of the shop (issue 19, item 4): at 1M customers / 10M orders an
incremental plan asks for ~37k, and that pass reads every later-dated row of seven tables
(~1 CPU-s, as it grows with the shop) where the index costs ~0.5 (measured at 100k / 1M:
the pass 0.10 CPU-s, the index 0.015 ms a customer)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import event

from shopsync.store import Store
from shopsync.store import incremental as marks
from tests.core.retention_helpers import customer, order

AT = dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc)


def _statements(store: Store, ids: list[str], customers: int | None) -> tuple[dict[str, int], int]:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        found = marks.next_rows(store, 1, int(AT.timestamp() * 1e6), ids, customers)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return found, len(seen)


def test_the_share_of_the_shop_decides_between_the_index_and_one_pass(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'rows.db'}")
    store.upsert([customer("a"), customer("b"), order("late", "a", AT + dt.timedelta(hours=1))])
    ids = ["a", "b", *(f"x{i}" for i in range(1200))]  # three chunks by the index
    by_index, asked = _statements(store, ids, customers=10**6)
    whole, once = _statements(store, ids, customers=2 * len(ids))
    assert by_index == whole == {"a": int((AT + dt.timedelta(hours=1)).timestamp() * 1e6)}
    assert asked == 3 * once  # a pass per chunk by the index, one in all for the shop
    store.close()
