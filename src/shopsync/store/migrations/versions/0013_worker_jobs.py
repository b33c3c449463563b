"""The work queue of ``shopsync worker``: a small jobs table claimed with row locks.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("shop", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lock_key", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("slot", sa.String(64), nullable=True),
        sa.Column("run_after", sa.BigInteger, nullable=False),
        sa.Column("locked_by", sa.String(255), nullable=True),
        sa.Column("locked_until", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    queued = sa.text("status = 'queued'")
    op.create_index(
        "uq_jobs_queued",
        "jobs",
        ["kind", "shop"],
        unique=True,
        sqlite_where=queued,
        postgresql_where=queued,
    )
    op.create_index("uq_jobs_slot", "jobs", ["kind", "shop", "slot"], unique=True)
    op.create_index("ix_jobs_status_run_after", "jobs", ["status", "run_after"])


def downgrade() -> None:
    op.drop_table("jobs")
