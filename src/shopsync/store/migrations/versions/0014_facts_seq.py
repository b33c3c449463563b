"""The order facts' change sequence, for the columnar snapshot (store/facts.py, issue 18).

``orders.seq`` holds the per-shop sequence value of the write that last touched an order (its
row or its line items, refunds, fulfilments); ``shops.facts_seq`` the last value handed out,
under the shop lock every writer takes, so per shop the order of values is the commit order.
``fact_deletions`` remembers deleted orders with their value, ``fact_snapshots`` the snapshot
files a reader may trust.

Back-fill: every existing order and shop gets 0 through the columns' constant default, which
both engines apply without rewriting the table (SQLite's ADD COLUMN, PostgreSQL 11+); the
first write after the upgrade takes 1. A snapshot built after the upgrade reads the orders at
0 as its base. Everything runs in the upgrade's one transaction, so an upgrade killed half-way
leaves the schema as it was and the next open runs it again.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    zero = sa.text("0")
    for column in ("facts_seq", "facts_erased_seq"):
        op.add_column(
            "shops", sa.Column(column, sa.BigInteger, nullable=False, server_default=zero)
        )
    op.add_column("orders", sa.Column("seq", sa.BigInteger, nullable=False, server_default=zero))
    op.create_index("ix_orders_seq", "orders", ["shop_id", "seq"])
    op.create_table(
        "fact_deletions",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_fact_deletions_seq", "fact_deletions", ["shop_id", "seq"])
    op.create_table(
        "fact_snapshots",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("written_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fact_snapshots")
    op.drop_index("ix_fact_deletions_seq", "fact_deletions")
    op.drop_table("fact_deletions")
    op.drop_index("ix_orders_seq", "orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("seq")
    with op.batch_alter_table("shops") as batch:
        batch.drop_column("facts_erased_seq")
        batch.drop_column("facts_seq")
