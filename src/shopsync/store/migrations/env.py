"""Alembic environment: shopsync runs migrations on a connection it already holds."""

from __future__ import annotations

from alembic import context

from shopsync.store.schema import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
