"""Stored shop-level models (issue 19, item 3): one row per shop, see schema.py.

A new table: existing stores start without rows, so their first plan builds the models.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.create_table(
        "shop_models",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("format", sa.Integer, nullable=False),
        sa.Column("settings", sa.String(64), nullable=False),
        sa.Column("data_as_of", sa.BigInteger, nullable=False),
        sa.Column("built_at", sa.BigInteger, nullable=False),
        sa.Column("facts_seq", sa.BigInteger, nullable=False),
        sa.Column("customers", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shop_models")
