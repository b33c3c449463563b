"""Shopify checkouts keyed by token (issue 22).

Since API 2026-04 Shopify's checkout webhooks carry ``token`` and no ``id``, and its order
webhooks ``checkout_token`` and no ``checkout_id``
(https://shopify.dev/changelog/removed-checkout-id-from-checkouts-and-orders-webhooks), so the
adapter now keys a checkout by a digest of its token (``shopsync_shopify._checkouts``). Rows
the previous version stored under the GraphQL id are re-keyed here from the token in their
stored recovery URL, and so are the outbox entries of their reminders (idempotency key,
``checkout_id`` in the action): otherwise the next sync would store the checkout a second
time and remind of it again under new keys. A reminder not yet settled (pending, parked) is
cancelled as it is re-keyed: its sinks dedupe by the old key, so a retry under the new one
could arrive twice or quote a discount code never created. Two old rows of one token
become the newer one. A row whose URL names no token keeps its id
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
import time
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"

_KIND = "abandoned_checkout"
_TOKEN_PATH = re.compile(r"/checkouts/(?:ac/)?([A-Za-z0-9_-]+)/recover(?:[/?#]|$)")

_shops = sa.table("shops", sa.column("shop_id"), sa.column("platform"), sa.column("shop"))
_checkouts = sa.table(
    "checkouts",
    sa.column("shop_id"),
    sa.column("id"),
    sa.column("recovery_url"),
    sa.column("updated_at"),
    sa.column("completed_at"),
)
_outbox = sa.table(
    "outbox",
    sa.column("id"),
    sa.column("shop_id"),
    sa.column("kind"),
    sa.column("sink"),
    sa.column("idempotency_key"),
    sa.column("action", sa.JSON),
    sa.column("status"),
    sa.column("reason"),
    sa.column("updated_at"),
    sa.column("finished_at"),
)
_UNSETTLED = ("pending", "parked")
_REASON = (
    "upgrade 0018 re-keyed this checkout by its token: every sink dedupes by the action's key"
    " (and a discount code is derived from it), so a retry under the new key could arrive"
    " twice or quote a code never created"
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
        moved = _rekey_checkouts(conn, shop_id)
        if moved:
            _rekey_reminders(conn, shop_id, shop, moved)


def _rekey_checkouts(conn: sa.Connection, shop_id: int) -> dict[str, str]:
    """Old id -> new key of each row whose URL names a token. Newest first: two old rows of
    one token (one checkout seen under two ids) become the newer one, keeping a completion
    either held, instead of breaking the primary key (and the upgrade with it)."""
    moved: dict[str, str] = {}
    taken = set(
        conn.execute(sa.select(_checkouts.c.id).where(_checkouts.c.shop_id == shop_id)).scalars()
    )
    rows = conn.execute(
        sa.select(_checkouts.c.id, _checkouts.c.recovery_url, _checkouts.c.completed_at)
        .where(_checkouts.c.shop_id == shop_id)
        .order_by(_checkouts.c.updated_at.desc(), _checkouts.c.id)
    ).all()
    this = _checkouts.c.shop_id == shop_id
    for old, url, completed_at in rows:
        token = token_of_url(url)
        if token is None or checkout_key(token) == old:
            continue
        new = moved[old] = checkout_key(token)
        if new not in taken:
            conn.execute(_checkouts.update().where(this, _checkouts.c.id == old).values(id=new))
            taken.add(new)
            continue
        conn.execute(_checkouts.delete().where(this, _checkouts.c.id == old))
        if completed_at is not None:
            conn.execute(
                _checkouts.update()
                .where(this, _checkouts.c.id == new, _checkouts.c.completed_at.is_(None))
                .values(completed_at=completed_at)
            )
    return moved


def _rekey_reminders(conn: sa.Connection, shop_id: int, shop: str, moved: dict[str, str]) -> None:
    """The reminders of moved checkouts take the new key, so the planner sees them as held
    under it. One not yet settled is cancelled (:data:`_REASON`); one whose new key another
    row already holds keeps its old key."""
    now = int(time.time() * 1_000_000)
    entries = conn.execute(
        sa.select(
            _outbox.c.id,
            _outbox.c.sink,
            _outbox.c.idempotency_key,
            _outbox.c.action,
            _outbox.c.status,
        )
        .where(_outbox.c.shop_id == shop_id, _outbox.c.kind == _KIND)
        .order_by(_outbox.c.id)
    ).all()
    held = {(e.idempotency_key, e.sink) for e in entries}
    prefix = f"{_KIND}:{shop}:"
    for entry in entries:
        key = entry.idempotency_key
        old, sep, stage = key[len(prefix) :].rpartition(":")
        if not key.startswith(prefix) or not sep or old not in moved:
            continue
        values: dict[str, Any] = {}
        if entry.status in _UNSETTLED:
            values.update(status="cancelled", reason=_REASON, updated_at=now, finished_at=now)
        new_key = f"{prefix}{moved[old]}:{stage}"
        if (new_key, entry.sink) not in held:
            held.add((new_key, entry.sink))
            action = _action(entry.action)
            action["checkout_id"] = moved[old]
            if isinstance(action.get("facts"), dict):
                action["facts"] = {**action["facts"], "checkout_id": moved[old]}
            action["idempotency_key"] = new_key
            values.update(idempotency_key=new_key, action=action)
        if values:
            conn.execute(_outbox.update().where(_outbox.c.id == entry.id).values(**values))


def downgrade() -> None:
    """Nothing to undo in the schema; the old ids cannot be recomputed from a digest (the
    previous version's next sync stores those checkouts again under their ids)."""
