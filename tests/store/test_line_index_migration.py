"""Revision 0021 drops ``ix_line_items_product`` (issue 20): the upgraded schema is the declared
one, the lines stored before are read as they were, and a downgrade builds the index again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from shopsync.models import Order
from shopsync.store import VERSION_TABLE, Store, metadata
from shopsync.store._engine import MIGRATIONS, migrating
from tests.test_store import full_order

INDEX = "ix_line_items_product"


def _line_indexes(engine: Engine) -> dict[str, list[str | None]]:
    return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("line_items")}


def _downgrade(engine: Engine, revision: str) -> None:
    with migrating(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        config.attributes["version_table"] = VERSION_TABLE
        command.downgrade(config, revision)


def test_upgrade_drops_the_index_and_downgrade_builds_it_again(store_url: str) -> None:
    old = Store(store_url, migrate=False)
    old.migrate("0020")
    assert _line_indexes(old.engine)[INDEX] == ["shop_id", "product_id"]
    placed = full_order()
    old.upsert([placed])
    old.close()

    store = Store(store_url)
    assert store.schema_version() == Store.head_version()
    assert INDEX not in _line_indexes(store.engine)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
    assert store.get(Order, placed.platform, placed.shop, placed.id) == placed

    _downgrade(store.engine, "0020")
    assert store.schema_version() == "0020"
    assert _line_indexes(store.engine)[INDEX] == ["shop_id", "product_id"]
    with store.engine.connect() as conn:
        lines = conn.execute(text("SELECT count(*) FROM line_items")).scalar_one()
    assert lines == len(placed.line_items) > 0
    store.close()
