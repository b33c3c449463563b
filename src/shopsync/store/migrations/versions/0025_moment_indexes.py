"""Incremental plans choose their customers by index (issue 19, item 4).

``program_due`` and ``loyalty_due`` get two indexes each: ``(shop_id, due_at)`` finds the
moments due by a plan's ``as_of``, ``(shop_id, settings, derived_at)`` those of another
settings tag or derived later (both stale). ``moment_cover`` holds, per shop, whether every
customer has a program moment and a loyalty moment (or a change note): only then may a plan
skip the pass over every customer that finds those without one. A new table: existing
stores start without rows, so their first incremental plan makes that pass once more and its
settle writes the row. One transaction, like every upgrade: one killed half-way leaves 0024,
which the next open upgrades.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"

_INDEXES = {
    "program_due": ("ix_program_due_at", "ix_program_due_tag"),
    "loyalty_due": ("ix_loyalty_due_at", "ix_loyalty_due_tag"),
}


def upgrade() -> None:
    for table, (at, tag) in _INDEXES.items():
        op.create_index(at, table, ["shop_id", "due_at"])
        op.create_index(tag, table, ["shop_id", "settings", "derived_at"])
    op.create_table(
        "moment_cover",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("programs", sa.Boolean, nullable=False),
        sa.Column("loyalty", sa.Boolean, nullable=False),
        sa.Column("lowered", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("moment_cover")
    for table, names in _INDEXES.items():
        for name in names:
            op.drop_index(name, table)
