"""Consent history: every consent state a customer was seen in, for as-of features.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "consent_history",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("observed_at", sa.BigInteger, primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("opt_in_level", sa.String(32), nullable=False),
        sa.Column("consent_updated_at", sa.BigInteger),
    )
    # Customers stored before this revision get their current state as the first entry.
    op.execute(
        "INSERT INTO consent_history (shop_id, customer_id, channel, observed_at, state, "
        "opt_in_level, consent_updated_at) "
        "SELECT shop_id, id, 'email', updated_at, email_consent, email_opt_in, email_consent_at "
        "FROM customers"
    )
    op.execute(
        "INSERT INTO consent_history (shop_id, customer_id, channel, observed_at, state, "
        "opt_in_level, consent_updated_at) "
        "SELECT shop_id, id, 'sms', updated_at, sms_consent, sms_opt_in, sms_consent_at "
        "FROM customers"
    )
