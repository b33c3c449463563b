"""What real orders carry (issue 15): test orders, taxes, tips, duties, fees, exact quantities.

Quantities become ten-thousandths in a ``BIGINT``, as money is, so a line sold by weight keeps
1.5 exactly and sums agree in every engine; the rows already stored keep their value (2 becomes
20000, which reads back as 2). Orders stored before this revision are not test orders and their
refunds are complete (they were read whole, as before). Currency columns widen from 3 to 8
characters: Shopify's ``CurrencyCode`` enum has ``USDC``.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

_SCALE = 10_000  # schema.QUANTITY_SCALE places


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column(
            "currency", type_=sa.String(8), existing_type=sa.String(3), existing_nullable=False
        )
        batch.add_column(sa.Column("test", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("taxes_included", sa.Boolean))
        batch.add_column(sa.Column("cancel_reason", sa.Text))
        batch.add_column(sa.Column("total_tip", sa.BigInteger))
        batch.add_column(sa.Column("total_duties", sa.BigInteger))
        batch.add_column(sa.Column("tax_lines", sa.JSON))
        batch.add_column(sa.Column("discount_applications", sa.JSON))
        batch.add_column(sa.Column("fee_lines", sa.JSON))
        batch.add_column(
            sa.Column("refunds_complete", sa.Boolean, nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("total_spent_currency", type_=sa.String(8), existing_type=sa.String(3))
    with op.batch_alter_table("line_items") as batch:
        for name in ("quantity", "refunded_quantity"):
            batch.alter_column(
                name, type_=sa.BigInteger, existing_type=sa.Integer, existing_nullable=False
            )
    op.execute(
        f"UPDATE line_items SET quantity = quantity * {_SCALE},"
        f" refunded_quantity = refunded_quantity * {_SCALE}"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE line_items SET quantity = quantity / {_SCALE},"
        f" refunded_quantity = refunded_quantity / {_SCALE}"
    )
    with op.batch_alter_table("line_items") as batch:
        for name in ("quantity", "refunded_quantity"):
            batch.alter_column(
                name, type_=sa.Integer, existing_type=sa.BigInteger, existing_nullable=False
            )
    with op.batch_alter_table("orders") as batch:
        for name in (
            "refunds_complete",
            "fee_lines",
            "discount_applications",
            "tax_lines",
            "total_duties",
            "total_tip",
            "cancel_reason",
            "taxes_included",
            "test",
        ):
            batch.drop_column(name)
        batch.alter_column(
            "currency", type_=sa.String(3), existing_type=sa.String(8), existing_nullable=False
        )
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("total_spent_currency", type_=sa.String(3), existing_type=sa.String(8))
