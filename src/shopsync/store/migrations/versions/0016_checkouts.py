"""Checkouts shoppers started and may not have finished, and the browse events a storefront
posts (issue 22: abandoned-checkout and browse-abandonment reminders).

A new table, nothing back-filled: the next sync of a shop whose adapter reads checkouts
fills it. Everything runs in the upgrade's one transaction.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("email", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger),
        sa.Column("recovery_url", sa.Text),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("subtotal", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
    )
    op.create_index("ix_checkouts_customer", "checkouts", ["shop_id", "customer_id", "created_at"])
    op.create_index("ix_checkouts_updated", "checkouts", ["shop_id", "updated_at"])
    op.create_table(
        "browse_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("visitor_id", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("product_id", sa.String(255)),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("shop_id", "event_id", name="uq_browse_events_event"),
    )
    op.create_index(
        "ix_browse_events_visitor", "browse_events", ["shop_id", "visitor_id", "received_at"]
    )
    op.create_index(
        "ix_browse_events_customer", "browse_events", ["shop_id", "customer_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_table("browse_events")
    op.drop_table("checkouts")
