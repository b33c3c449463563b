"""Rename the hashed reversal keys of moved orders written before the fix.

A moved order's points are reversed under ``adjust:moved:<customer>:<order>:<at>``, hashed
down past the store's 255 characters. Before the fix the hash kept only ``adjust``
(``adjust:sha256:<digest>``), so neither the moved points nor the moved generations
(``shopsync.store.ledger``, ``shopsync.store.redemptions``: the ``adjust:moved:`` prefix)
counted the row: the order was reversed again at every sync and earned nothing when it came
back. The fixed derivation writes ``adjust:moved:sha256:<digest>`` with the same digest.

A row is told apart by its own columns: it is a moved order's reversal exactly when its
digest is that of ``adjust:moved:<customer_id>:<order_id>:<effective_at>`` (the derivation
writes ``effective_at`` = the ``at`` of the key). A manual adjustment hashed the same way
(``adjust:<input key>``), or any row whose digest is of something else, keeps its key; so does
a row whose new key is taken already. An order reversed several times before the fix holds
several renamed reversals: the next ledger update finds the order over-reversed and gives the
excess back under a key of its own (the ledger stays append-only).

The rows are few and the test is a hash, so it runs here in Python: per shop, over the keys
of the ``adjust:sha256:`` prefix (on SQLite a key range the ``(shop, key)`` index serves;
PostgreSQL compares text in its collation, where a range need not be the prefix: ``LIKE``).
The downgrade names them back. One transaction, like every upgrade.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"

_OLD = "adjust:sha256:"
_NEW = "adjust:moved:sha256:"

_shops = sa.table("shops", sa.column("shop_id"))
_ledger = sa.table(
    "loyalty_ledger",
    sa.column("id"),
    sa.column("shop_id"),
    sa.column("customer_id"),
    sa.column("source_key"),
    sa.column("kind"),
    sa.column("effective_at"),
    sa.column("order_id"),
)


def upgrade() -> None:
    _rename(_OLD, _NEW)


def downgrade() -> None:
    _rename(_NEW, _OLD)


def _rename(before: str, after: str) -> None:
    """Give every moved order's reversal keyed ``before<digest>`` the key ``after<digest>``."""
    conn = op.get_bind()
    key = _ledger.c.source_key
    if conn.dialect.name == "sqlite":
        prefixed = sa.and_(key >= before, key < before[:-1] + chr(ord(before[-1]) + 1))
    else:
        prefixed = key.like(before + "%")
    for shop_id in conn.execute(sa.select(_shops.c.shop_id)).scalars().all():
        rows = conn.execute(
            sa.select(
                _ledger.c.id, key, _ledger.c.customer_id, _ledger.c.order_id, _ledger.c.effective_at
            ).where(
                _ledger.c.shop_id == shop_id,
                prefixed,
                _ledger.c.kind == "adjust",
                _ledger.c.order_id.is_not(None),
            )
        ).all()
        for row in rows:
            digest = str(row.source_key)[len(before) :]
            text = f"adjust:moved:{row.customer_id}:{row.order_id}:{int(row.effective_at)}"
            if not str(row.source_key).startswith(before) or digest != _sha256(text):
                continue  # not a moved order's reversal
            taken = conn.execute(
                sa.select(_ledger.c.id).where(_ledger.c.shop_id == shop_id, key == after + digest)
            ).first()
            if taken is None:
                conn.execute(
                    _ledger.update().where(_ledger.c.id == row.id).values(source_key=after + digest)
                )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
