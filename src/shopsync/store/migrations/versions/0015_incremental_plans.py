"""Incremental plans (issue 19): when time alone next changes each customer's loyalty notices.

``loyalty_due`` holds, per (shop, customer), the next such moment as the last settled
incremental plan derived it (see :mod:`shopsync.store.incremental`). A new table: existing
stores start without rows, so their first incremental plan derives every customer.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.create_table(
        "loyalty_due",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("due_at", sa.BigInteger),
        sa.Column("derived_at", sa.BigInteger, nullable=False),
        sa.Column("settings", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("loyalty_due")
