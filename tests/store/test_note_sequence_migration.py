"""Revision 0026, the store-wide change-note sequence (issue 19, item 1), both engines: an
upgrade cut short leaves 0025 and runs again; the notes held before keep their ``seq`` and
are matched by it; every note written after takes a value above all of them; a downgrade
and an upgrade again go on from the values stored."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.operations import Operations
from sqlalchemy import inspect, text

from shopsync.store import Store, _rows, changes
from shopsync.store.incremental import pending_notes, settle
from shopsync.store.schema import changed_customers
from tests.core.retention_helpers import T0, P, S
from tests.store.alembic_kit import downgrade, drift


def _seqs(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        query = text("SELECT customer_id, seq FROM changed_customers")
        return {cid: int(seq) for cid, seq in conn.execute(query)}


def _note(store: Store, *ids: str) -> None:
    with store.transaction() as conn:
        changes.mark_changed(store, conn, P, S, ids, T0)


def test_an_upgrade_to_0026_keeps_the_notes_held_and_never_reuses_their_values(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0025")
    at = _rows.to_micros(T0)
    with old.transaction() as conn:
        sid = old.shop_id(P, S, conn)
        conn.execute(
            changed_customers.insert(),
            [  # c1 changed 7 times; c2's note a worker handled (its moment negated)
                {"shop_id": sid, "customer_id": "c1", "seq": 7, "changed_at": at},
                {"shop_id": sid, "customer_id": "c2", "seq": 1, "changed_at": -1 - at},
            ],
        )
    real = Operations.execute

    def killed(self: Operations, sql: Any, *args: Any, **kwargs: Any) -> None:
        real(self, sql, *args, **kwargs)
        if "changed_customers" in str(sql):  # the start value is set: Ctrl-C
            raise KeyboardInterrupt

    monkeypatch.setattr(Operations, "execute", killed)
    with pytest.raises(KeyboardInterrupt):
        old.migrate()
    monkeypatch.undo()
    assert old.schema_version() == "0025"
    assert "note_counter" not in inspect(old.engine).get_table_names()
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert drift(store.engine) == []
    listed = changes.changed(store)
    assert [(c.customer_id, c.seq) for c in listed] == [("c1", 7)]
    read = pending_notes(store, sid, P, S)  # a plan reads both
    assert changes.clear_changes(store, listed) == 1  # a worker takes c1's, by its seq
    assert settle(store, sid, read, {}, 0, "s") == 2
    _note(store, "c1", "c3")  # above every value held: the plan's read is not taken for it
    assert _seqs(store) == {"c1": 8, "c3": 9}
    assert settle(store, sid, read, {}, 0, "s") == 0

    downgrade(store.engine, "0025")
    assert "note_counter" not in inspect(store.engine).get_table_names()
    store.migrate()
    _note(store, "c3")
    assert _seqs(store) == {"c1": 8, "c3": 10}
    store.close()
