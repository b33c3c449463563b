"""The reused PostgreSQL schema behind the ``store`` fixture: each test finds it as the
migrations left it, whatever the test before did to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from shopsync.store import Store, facts
from shopsync.store._engine import head_revision
from tests.pg_schema import HeadSchema, shared_url
from tests.store.alembic_kit import downgrade

pytestmark = pytest.mark.postgres


@pytest.fixture
def head() -> Iterator[HeadSchema]:
    base = shared_url()
    if base is None:
        pytest.skip("no PostgreSQL for this run")
    schema = HeadSchema(base)
    yield schema
    schema.close()


_QUARANTINE = (
    "INSERT INTO quarantine (shop_id, resource, record_key, raw, reason, first_seen, last_seen,"
    " times_seen) VALUES (1, 'orders', 'k', '{}', 'bad', 0, 0, 1)"
)


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_rows_and_sequences_a_test_left_are_gone_and_the_version_stays(head: HeadSchema) -> None:
    url = head.fresh()
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(text(_QUARANTINE))
    first = _rows(store.engine, "SELECT id FROM quarantine")
    version = _rows(store.engine, "SELECT * FROM shopsync_schema_version")
    store.close()
    folder = facts.default_dir(url, None)
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)

    assert head.fresh() == url  # emptied, not rebuilt
    engine = create_engine(url)
    try:
        assert _rows(engine, "SELECT id FROM quarantine") == []
        assert _rows(engine, "SELECT * FROM shopsync_schema_version") == version
        with engine.begin() as conn:
            conn.execute(text(_QUARANTINE))
        assert _rows(engine, "SELECT id FROM quarantine") == first  # the sequence restarted
    finally:
        engine.dispose()
    assert not folder.exists()  # a snapshot of the rows that are gone would be read back


@pytest.mark.parametrize("change", ["downgrade", "column"])
def test_a_test_that_changed_the_schema_leaves_a_new_one_behind(
    head: HeadSchema, change: str
) -> None:
    url = head.fresh()
    store = Store(url)
    (old,) = _rows(store.engine, "SELECT current_schema()")[0]
    if change == "downgrade":  # tables gone: emptying fails
        downgrade(store.engine, "0024")
    else:  # every table still there: only the schema's shape tells
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE quarantine ADD COLUMN extra integer"))
    store.close()

    again = head.fresh()
    assert again != url
    engine = create_engine(again)
    try:
        assert _rows(engine, "SELECT * FROM shopsync_schema_version") == version_at_head()
        assert _rows(engine, f"SELECT 1 FROM pg_namespace WHERE nspname = '{old}'") == []
    finally:
        engine.dispose()


def version_at_head() -> list[tuple[object, ...]]:
    return [(head_revision(),)]
