"""Loyalty: the append-only points ledger and the inputs it is derived from.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("source_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pending", sa.BigInteger, nullable=False),
        sa.Column("approved", sa.BigInteger, nullable=False),
        sa.Column("effective_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(255)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.UniqueConstraint("shop_id", "source_key", name="uq_loyalty_ledger_source"),
    )
    op.create_index(
        "ix_loyalty_ledger_customer",
        "loyalty_ledger",
        ["shop_id", "customer_id", "effective_at"],
    )
    op.create_table(
        "loyalty_inputs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("shop_id", "key", name="uq_loyalty_inputs_key"),
    )
    op.create_index("ix_loyalty_inputs_customer", "loyalty_inputs", ["shop_id", "customer_id"])
