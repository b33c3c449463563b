"""Webhook deliveries already applied, for de-duplication of retried deliveries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.String(255), primary_key=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_received", "webhook_deliveries", ["received_at"])
