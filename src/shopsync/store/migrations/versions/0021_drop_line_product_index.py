"""Drop ``ix_line_items_product`` (issue 20): no query reads it, and each line written paid it.

No store query looks up line items by product: they are read by order (the primary key's
``shop_id, order_id``) or all of a shop's at once, and a line's product type is looked up in
``products`` by its primary key. Keeping the index cost a write per line on every ingest
(about 1-4 µs of server time an order on PostgreSQL's COPY of lines). A shop's count of lines
(``ledger_mark.data_version``) and a shop's deletion use the primary key's ``shop_id``
prefix instead.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    op.drop_index("ix_line_items_product", "line_items")


def downgrade() -> None:
    op.create_index("ix_line_items_product", "line_items", ["shop_id", "product_id"])
