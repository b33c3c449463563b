"""What the migration tests share: a downgrade (the store itself only upgrades) and a table's
indexes as the database reports them."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from shopsync.store import VERSION_TABLE, metadata
from shopsync.store._engine import MIGRATIONS, migrating


def downgrade(engine: Engine, revision: str) -> None:
    """Take the store's schema down to ``revision``."""
    with migrating(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        config.attributes["version_table"] = VERSION_TABLE
        command.downgrade(config, revision)


def indexes(engine: Engine, table: str) -> dict[str, list[str | None]]:
    """``table``'s indexes by name, each with its columns."""
    return {str(i["name"]): i["column_names"] for i in inspect(engine).get_indexes(table)}


def drift(engine: Engine) -> list[object]:
    """How the database's schema differs from the declared one (empty: not at all)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, metadata))
