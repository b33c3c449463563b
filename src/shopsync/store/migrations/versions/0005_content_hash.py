"""Content fingerprints, to tell two versions with the same updated_at apart.

WooCommerce keeps whole seconds, so two changes within a second carry one timestamp; the
store replaces a record on an equal timestamp when its content differs. Rows stored before
this revision have no fingerprint and are replaced at their next equal-timestamp upsert.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    for table in ("customers", "orders", "products"):
        op.add_column(table, sa.Column("content_hash", sa.String(32)))
