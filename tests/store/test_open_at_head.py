"""Opening a store: what the skip of Alembic at head (:func:`shopsync.store._engine.upgrade`)
and the per-store table list (:func:`shopsync.store.read.table_names`) must keep doing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from shopsync.errors import StoreError
from shopsync.store import VERSION_TABLE, Store, _engine
from shopsync.store.read import table_names


def test_a_store_newer_than_this_shopsync_is_a_store_error(store_url: str) -> None:
    """A downgrade of shopsync: the version row names a revision its scripts do not know."""
    Store(store_url).close()
    s = Store(store_url, migrate=False)
    with s.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(StoreError, match="9999"):
        s.migrate()
    s.close()


def test_the_tables_a_migrate_adds_are_the_stores(store_url: str) -> None:
    """A store opened without migrating, read, then migrated: its reads see the new tables
    (``delivered_at`` reads the outbox only when the list holds it)."""
    s = Store(store_url, migrate=False)
    assert "outbox" not in table_names(s)
    s.migrate()
    assert "outbox" in table_names(s)
    s.close()


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    monkeypatch.setattr(_engine, "MIGRATIONS", tmp_path)
    _engine.scripts_head.cache_clear()
    yield versions
    _engine.scripts_head.cache_clear()


def test_a_script_that_cannot_be_read_leaves_the_head_to_alembic(scripts: Path) -> None:
    """An editor's lock file (a dangling link, which Alembic skips) or a file not in UTF-8
    must not make every open fail: the question goes to Alembic."""
    assert _engine.scripts_head() == "0001"
    _engine.scripts_head.cache_clear()
    os.symlink(scripts / "gone", scripts / ".#0002_b.py")
    assert _engine.scripts_head() is None
    _engine.scripts_head.cache_clear()
    (scripts / ".#0002_b.py").unlink()
    (scripts / "0002_b.py").write_bytes(
        b'"""caf\xe9"""\nrevision = "0002"\ndown_revision = "0001"\n'
    )
    assert _engine.scripts_head() is None


def test_a_server_that_refuses_is_asked_once() -> None:
    """No server: one connection attempt, not the skip's and then Alembic's (each may wait
    out a connect timeout), and the error the store gives for it."""
    s = Store("postgresql+psycopg://u:hunter2@127.0.0.1:1/db", migrate=False)
    attempts: list[object] = []
    event.listen(s.engine, "do_connect", lambda *args: attempts.append(args))
    with pytest.raises(StoreError, match=r"cannot open store .*database server") as info:
        s.migrate()
    assert len(attempts) == 1
    assert "hunter2" not in str(info.value)
    s.close()
