"""Revision 0022 adds ``program_due`` (issue 19): the upgraded schema is the declared one, a
store upgraded from 0021 keeps what it held and starts without program moments (its first
incremental plan plans every customer), and a downgrade drops the table."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from shopsync.models import Order
from shopsync.store import VERSION_TABLE, Store, metadata
from shopsync.store._engine import MIGRATIONS, migrating
from shopsync.store.incremental import program_not_due, settle
from tests.test_store import full_order


def _downgrade(engine: Engine, revision: str) -> None:
    with migrating(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        config.attributes["version_table"] = VERSION_TABLE
        command.downgrade(config, revision)


def test_upgrade_adds_program_due_and_downgrade_drops_it(store_url: str) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0021")
    assert "program_due" not in inspect(old.engine).get_table_names()
    placed = full_order()
    old.upsert([placed])
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
        assert conn.execute(text("SELECT count(*) FROM program_due")).scalar_one() == 0
    assert store.get(Order, placed.platform, placed.shop, placed.id) == placed
    shop_id = store.shop_id(placed.platform, placed.shop)
    settle(store, shop_id, (), {}, 100, "l", {"a": 200, "b": None, "c": 50}, "p")
    assert program_not_due(store, shop_id, 150, "p") == {"a", "b"}
    assert program_not_due(store, shop_id, 150, "other") == set()
    assert program_not_due(store, shop_id, 250, "p") == {"b"}
    settle(store, shop_id, (), {}, 90, "l", {"a": 95}, "p")  # derived earlier: kept out
    assert program_not_due(store, shop_id, 150, "p") == {"a", "b"}

    _downgrade(store.engine, "0021")
    assert store.schema_version() == "0021"
    assert "program_due" not in inspect(store.engine).get_table_names()
    store.close()
