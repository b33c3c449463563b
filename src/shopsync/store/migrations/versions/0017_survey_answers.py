"""NPS / CSAT survey answers (issue 22): one row per answered survey, see schema.py.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("survey_key", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("scale", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("cohort", sa.String(7), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("answered_at", sa.BigInteger, nullable=False),
        sa.Column("commented_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("shop_id", "survey_key", name="uq_survey_answers_key"),
    )
    op.create_index("ix_survey_answers_at", "survey_answers", ["shop_id", "answered_at"])
    op.create_index("ix_survey_answers_customer", "survey_answers", ["shop_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_survey_answers_customer", table_name="survey_answers")
    op.drop_index("ix_survey_answers_at", table_name="survey_answers")
    op.drop_table("survey_answers")
