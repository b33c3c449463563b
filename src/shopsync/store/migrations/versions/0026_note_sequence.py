"""A store-wide change-note sequence (issue 19, item 1).

Until now a note's ``seq`` counted per customer and started at 1 when the note was written
again after a settle removed it: a plan that read the old note, settling after a new change
noted the customer again in the same microsecond, took the new note for the one it read and
removed a change it never planned. From here every write of a note (new or bumped) takes the
next value of one sequence for the whole store, so a value is never written twice.

PostgreSQL: the sequence ``change_note_seq``; SQLite: the one-row table ``note_counter``
(its single writer hands the values out in commit order). Both start above every ``seq``
stored, so the notes already held keep theirs (a worker or plan matching them finds them
as before) and no later write takes one of their values. One transaction, like every
upgrade (PostgreSQL's ``CREATE SEQUENCE`` too): one killed half-way leaves 0025, which the
next open upgrades.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"

_SEQUENCE = "change_note_seq"  # schema.NOTE_SEQUENCE, as of this revision


def upgrade() -> None:
    op.create_table(
        "note_counter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SEQUENCE {_SEQUENCE} AS BIGINT")
        op.execute(  # setval is not undone by a rollback, but the sequence it set is
            f"SELECT setval('{_SEQUENCE}', COALESCE(MAX(seq), 0) + 1, false) FROM changed_customers"
        )
    else:
        op.execute(
            "INSERT INTO note_counter (id, value)"
            " SELECT 1, COALESCE(MAX(seq), 0) FROM changed_customers"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SEQUENCE {_SEQUENCE}")
    op.drop_table("note_counter")
