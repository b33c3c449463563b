"""Leases, and sink names that do not change with the sink's configuration.

Before this revision a sink's default name held its configuration (``email:smtp.a:587``,
``webhook:https://...``, ``jsonl:out.jsonl``), so moving to another SMTP host, URL or file
made every action a new (action, sink) pair and sent it again. Default names are now the
kind alone (``email``, ``webhook``, ``jsonl``, ``csv``, ``audience``); the rows already in the
outbox are renamed to match. Where two old sinks of one kind both hold a row for one action,
one row is kept under the new name (a delivered one first) and the others, if not delivered,
are cancelled with the reason: the action was already handled under the kept row.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

KINDS = ("email", "webhook", "jsonl", "csv", "audience")

_RENAME = """
UPDATE outbox SET sink = :kind
WHERE sink LIKE :pattern
  AND NOT EXISTS (
    SELECT 1 FROM outbox o2
    WHERE o2.shop_id = outbox.shop_id AND o2.idempotency_key = outbox.idempotency_key
      AND o2.sink = :kind)
  AND outbox.id = (
    SELECT o3.id FROM outbox o3
    WHERE o3.shop_id = outbox.shop_id AND o3.idempotency_key = outbox.idempotency_key
      AND o3.sink LIKE :pattern
    ORDER BY CASE WHEN o3.status = 'done' THEN 0 ELSE 1 END, o3.id
    LIMIT 1)
"""

_MERGED = """
UPDATE outbox SET status = 'cancelled', reason = :reason
WHERE sink LIKE :pattern AND status IN ('pending', 'parked')
  AND EXISTS (
    SELECT 1 FROM outbox o2
    WHERE o2.shop_id = outbox.shop_id AND o2.idempotency_key = outbox.idempotency_key
      AND o2.sink = :kind)
"""


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    for kind in KINDS:
        values = {"kind": kind, "pattern": f"{kind}:%"}
        op.execute(sa.text(_RENAME).bindparams(**values))
        reason = f"merged into sink {kind!r} (revision 0010): handled under that row"
        op.execute(sa.text(_MERGED).bindparams(reason=reason, **values))


def downgrade() -> None:
    op.drop_table("leases")
