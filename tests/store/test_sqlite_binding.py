"""A SQLite store binds None and bool through registered adapters (``_engine._plain_binding``,
issue 20): found at once, where sqlite3's lookup failed with an exception per parameter.
What is stored is what sqlite3 stores without them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import shopsync


def test_none_and_bool_are_bound_by_adapters_and_stored_as_before(tmp_path: Path) -> None:
    store = shopsync.Store(f"sqlite:///{tmp_path}/s.db")
    store.close()
    protocol = sqlite3.PrepareProtocol
    assert (type(None), protocol) in sqlite3.adapters
    assert (bool, protocol) in sqlite3.adapters
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(None, True, False)])
    stored = conn.execute("SELECT typeof(a), a, typeof(b), b, typeof(c), c FROM t").fetchall()
    assert stored == [("null", None, "integer", 1, "integer", 0)]
