"""The SQLite store's WAL settings (``store._engine``): commits stay in the WAL until it holds
``WAL_PAGES`` pages (a checkpoint at SQLite's default of 1,000 copied the same index pages
again and again: a sixth of a bulk backfill's CPU, issue 20), and a checkpointed WAL file is
cut back to ``WAL_BYTES``."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopsync.store import Store, _engine

_PAGE = 4096


def _fill(store: Store, commits: int, pages: int) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    for _ in range(commits):
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO filler VALUES (randomblob({pages * _PAGE}))")


def test_commits_stay_in_the_wal_past_sqlites_default_checkpoint(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path}/s.db") as store:
        _fill(store, commits=30, pages=100)  # 3,000 pages: three checkpoints at the default
        assert (tmp_path / "s.db-wal").stat().st_size > 2_000 * _PAGE
        assert _engine.WAL_PAGES > 3_000


def test_a_checkpointed_wal_is_cut_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "WAL_PAGES", 200)
    monkeypatch.setattr(_engine, "WAL_BYTES", 100 * _PAGE)
    with Store(f"sqlite:///{tmp_path}/s.db") as store:
        _fill(store, commits=1, pages=1_000)  # past WAL_PAGES: checkpointed at its commit
        _fill(store, commits=1, pages=1)  # the WAL starts again, cut back first
        assert (tmp_path / "s.db-wal").stat().st_size <= 100 * _PAGE
