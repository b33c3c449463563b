"""Incremental plans (issue 19): when time alone next brings each customer a program candidate.

``program_due`` holds, per (shop, customer), the first moment after the last settled
incremental plan at which a review request, a win-back stage, a replenishment or warranty
reminder (or another program's candidate) can appear without a change, as that plan derived
it (see :mod:`shopsync.store.incremental`). A new table: existing stores start without rows,
so their first incremental plan after the upgrade plans every customer once.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"


def upgrade() -> None:
    op.create_table(
        "program_due",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("due_at", sa.BigInteger),
        sa.Column("derived_at", sa.BigInteger, nullable=False),
        sa.Column("settings", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("program_due")
