"""Tombstones: redacted customers and deleted records that later deliveries must not revive.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("resource", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tombstones")
