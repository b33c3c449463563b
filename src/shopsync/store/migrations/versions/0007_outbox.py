"""The outbox: one row per (action, sink), and the one-click unsubscriptions.

Revision ID: 0007
Revises: 0006 (reviews; this revision was written against 0005)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("sink", sa.String(255), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("marketing", sa.Integer, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("action", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("result", sa.JSON),
        sa.Column("reason", sa.Text),
        sa.UniqueConstraint("shop_id", "idempotency_key", "sink", name="uq_outbox_key_sink"),
    )
    op.create_index("ix_outbox_status", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_customer", "outbox", ["shop_id", "customer_id", "status"])
    op.create_table(
        "suppressions",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
    )
