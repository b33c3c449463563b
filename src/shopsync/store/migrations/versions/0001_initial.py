"""Initial schema: shops, customers, orders and their children, products, cursors, quarantine.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

ID = sa.String(255)


def _key() -> list[sa.Column[Any]]:
    return [
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("id", ID, primary_key=True),
    ]


def _child_key() -> list[sa.Column[Any]]:
    return [
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("order_id", ID, primary_key=True),
        sa.Column("id", ID, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("shop_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("shop", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("platform", "shop", name="uq_shops_platform_shop"),
    )
    op.create_table(
        "customers",
        *_key(),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("email_consent", sa.String(32), nullable=False),
        sa.Column("email_opt_in", sa.String(32), nullable=False),
        sa.Column("email_consent_at", sa.BigInteger),
        sa.Column("sms_consent", sa.String(32), nullable=False),
        sa.Column("sms_opt_in", sa.String(32), nullable=False),
        sa.Column("sms_consent_at", sa.BigInteger),
        sa.Column("birthday", sa.String(10)),
        sa.Column("default_address", sa.JSON),
        sa.Column("orders_count", sa.Integer),
        sa.Column("total_spent", sa.BigInteger),
        sa.Column("total_spent_currency", sa.String(3)),
    )
    op.create_index("ix_customers_updated", "customers", ["shop_id", "updated_at"])
    op.create_index("ix_customers_email", "customers", ["shop_id", "email"])
    op.create_table(
        "orders",
        *_key(),
        sa.Column("name", sa.Text),
        sa.Column("customer_id", ID),
        sa.Column("email", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("processed_at", sa.BigInteger),
        sa.Column("paid_at", sa.BigInteger),
        sa.Column("cancelled_at", sa.BigInteger),
        sa.Column("closed_at", sa.BigInteger),
        sa.Column("financial_status", sa.String(32), nullable=False),
        sa.Column("fulfillment_status", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        *(
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in (
                "subtotal",
                "total_discounts",
                "total_shipping",
                "total_tax",
                "total",
                "total_refunded",
            )
        ),
        sa.Column("discount_codes", sa.JSON, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("billing_address", sa.JSON),
        sa.Column("shipping_address", sa.JSON),
    )
    op.create_index("ix_orders_customer", "orders", ["shop_id", "customer_id", "created_at"])
    op.create_index("ix_orders_updated", "orders", ["shop_id", "updated_at"])
    op.create_table(
        "line_items",
        *_child_key(),
        sa.Column("product_id", ID),
        sa.Column("variant_id", ID),
        sa.Column("sku", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("product_type", sa.Text),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("total_discount", sa.BigInteger),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("refunded_quantity", sa.Integer, nullable=False),
    )
    op.create_index("ix_line_items_product", "line_items", ["shop_id", "product_id"])
    op.create_table(
        "refunds",
        *_child_key(),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("lines", sa.JSON, nullable=False),
    )
    op.create_table(
        "fulfillments",
        *_child_key(),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("tracking_company", sa.Text),
        sa.Column("tracking_numbers", sa.JSON, nullable=False),
        sa.Column("tracking_urls", sa.JSON, nullable=False),
        sa.Column("delivered_at", sa.BigInteger),
        sa.Column("lines", sa.JSON, nullable=False),
    )
    op.create_table(
        "products",
        *_key(),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("product_type", sa.Text),
        sa.Column("vendor", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("variants", sa.JSON, nullable=False),
    )
    op.create_table(
        "sync_cursors",
        sa.Column("shop_id", sa.Integer, primary_key=True),
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("high_water", sa.BigInteger),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shop_id", sa.Integer, nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("record_key", ID, nullable=False),
        sa.Column("record_id", ID),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("times_seen", sa.Integer, nullable=False),
        sa.Column("resolved_at", sa.BigInteger),
        sa.UniqueConstraint("shop_id", "resource", "record_key", name="uq_quarantine_record"),
    )
