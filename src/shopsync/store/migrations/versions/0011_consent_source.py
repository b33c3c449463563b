"""Where a consent came from when it was not read from the platform.

WooCommerce core keeps no marketing consent, so a store records it from an imported list or
shopsync's double opt-in link; ``consent_history.source`` names that origin (NULL: a sync or
webhook saw it on the platform).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.add_column("consent_history", sa.Column("source", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("consent_history") as batch:
        batch.drop_column("source")
