"""Changed customers, the work list webhook intake fills for a worker; delivery policies.

One row per (shop, customer) whose data a delivery changed, written in the same transaction
as the change itself, so a crash can never keep the change and lose the note. ``seq`` grows
with each new change; a worker that planned a customer deletes the row only if ``seq`` is
still the one it read, so a change that arrives while it works is not lost.

``delivery_policies`` keeps, per shop, the policy of the last ``apply`` that passed one, so
a later ``apply`` without a policy (a retry script) still holds marketing in quiet hours and
under the frequency cap.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "changed_customers",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_changed_customers_at", "changed_customers", ["changed_at"])
    op.create_table(
        "delivery_policies",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("delivery_policies")
    op.drop_index("ix_changed_customers_at", "changed_customers")
    op.drop_table("changed_customers")
