"""Shopify checkouts keyed by token (issue 22).

Since API 2026-04 Shopify's checkout webhooks carry ``token`` and no ``id``, and its order
webhooks ``checkout_token`` and no ``checkout_id``
(https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks), so the
adapter now keys a checkout by a digest of its token (``shopsync_shopify._checkouts``). Rows
the previous version stored under the GraphQL id are re-keyed here from the token in their
stored recovery URL, and so are the outbox entries of their reminders (idempotency key,
``checkout_id`` in the action): otherwise the next sync would store the checkout a second
time and remind of it again under new keys. A row whose URL names no token keeps its id
(the adapter quarantines such a checkout anyway); a tombstone of a checkout deleted before
the upgrade keeps the old id (no URL is left to re-key it, and no later version of it comes
under that id). WooCommerce rows (order ids) are untouched. One transaction, like every
upgrade: a run cut short leaves everything as it was and runs again.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"

_KIND = "abandoned_checkout"
_TOKEN_PATH = re.compile(r"/checkouts/(?:ac/)?([A-Za-z0-9_-]+)/recover(?:[/?#]|$)")

_shops = sa.table("shops", sa.column("shop_id"), sa.column("platform"), sa.column("shop"))
_checkouts = sa.table("checkouts", sa.column("shop_id"), sa.column("id"), sa.column("recovery_url"))
_outbox = sa.table(
    "outbox",
    sa.column("id"),
    sa.column("shop_id"),
    sa.column("kind"),
    sa.column("idempotency_key"),
    sa.column("action", sa.JSON),
)


def checkout_key(token: str) -> str:
    """As ``shopsync_shopify._checkouts.checkout_key`` today (a test holds them equal)."""
    return "t" + hashlib.sha256(token.encode()).hexdigest()[:39]


def token_of_url(url: object) -> str | None:
    found = _TOKEN_PATH.search(url) if isinstance(url, str) else None
    return found.group(1) if found else None


def _action(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else dict(json.loads(value))


def upgrade() -> None:
    conn = op.get_bind()
    shops = conn.execute(
        sa.select(_shops.c.shop_id, _shops.c.shop).where(_shops.c.platform == "shopify")
    ).all()
    for shop_id, shop in shops:
        moved: dict[str, str] = {}
        rows = conn.execute(
            sa.select(_checkouts.c.id, _checkouts.c.recovery_url).where(
                _checkouts.c.shop_id == shop_id
            )
        ).all()
        for old, url in rows:
            token = token_of_url(url)
            if token is None or checkout_key(token) == old:
                continue
            moved[old] = checkout_key(token)
            conn.execute(
                _checkouts.update()
                .where(_checkouts.c.shop_id == shop_id, _checkouts.c.id == old)
                .values(id=moved[old])
            )
        if not moved:
            continue
        entries = conn.execute(
            sa.select(_outbox.c.id, _outbox.c.idempotency_key, _outbox.c.action).where(
                _outbox.c.shop_id == shop_id, _outbox.c.kind == _KIND
            )
        ).all()
        prefix = f"{_KIND}:{shop}:"
        for entry_id, key, value in entries:
            old, sep, stage = key[len(prefix) :].rpartition(":")
            if not key.startswith(prefix) or not sep or old not in moved:
                continue
            action = _action(value)
            action["checkout_id"] = moved[old]
            if isinstance(action.get("facts"), dict):
                action["facts"] = {**action["facts"], "checkout_id": moved[old]}
            new_key = f"{prefix}{moved[old]}:{stage}"
            action["idempotency_key"] = new_key
            conn.execute(
                _outbox.update()
                .where(_outbox.c.id == entry_id)
                .values(idempotency_key=new_key, action=action)
            )


def downgrade() -> None:
    """Nothing to undo in the schema; the old ids cannot be recomputed from a digest (the
    previous version's next sync stores those checkouts again under their ids)."""
