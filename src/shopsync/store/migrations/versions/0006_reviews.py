"""Reviews customers wrote, so review requests skip reviewed products and stop reminders.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("product_id", sa.String(255), nullable=False),
        sa.Column("order_id", sa.String(255)),
        sa.Column("rating", sa.Integer),
        sa.Column("reviewed_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.UniqueConstraint("shop_id", "key", name="uq_reviews_key"),
    )
    op.create_index("ix_reviews_customer", "reviews", ["shop_id", "customer_id", "reviewed_at"])
