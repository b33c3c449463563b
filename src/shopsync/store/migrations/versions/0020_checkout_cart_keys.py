"""Shopify checkouts keyed by their recovery link's segment, with their token's key beside it
(issue 22 follow-up).

Revision 0018 assumed the segment of ``abandonedCheckoutUrl`` (``/checkouts/ac/<X>/recover``)
was the checkout's token. Real ``checkouts/create`` bodies show X is the **cart token**, not
the token (``shopsync_shopify._checkouts``): a sync page keyed the checkout by the cart token,
a webhook by the token, so a store may hold one checkout twice. The adapter now keys every
source by the segment and keeps a digest of the token in the new ``token_key`` column (a
deletion and an order name the token). Here:

- a Shopify row whose id is not its link's key was stored by a webhook under the token's key:
  it takes the link's key, and its old id becomes its ``token_key``;
- two rows of one checkout become the newer, keeping a completion either held and the token
  key; the other's reminders are re-keyed, or keep their old key where the kept row's
  reminder holds the new one, exactly as 0018 does (one not yet settled is cancelled), and
  a stage the other copy was reminded of already is not delivered again;
- a row already under its link's key keeps it; one with the older link form
  (``/checkouts/<token>/recover``) or with no link but a token-derived id (``t...``, from a
  webhook) gets its id as ``token_key``. Numeric ids 0018 could not re-key, WooCommerce
  rows and tombstones are left as they are;
- a new ``number`` column holds the checkout's own number (Shopify: the AbandonedCheckout
  gid's, which a ``checkouts/delete`` body names as ``id``): a Shopify row still keyed by
  its number gets it. A row 0018 re-keyed from the gid held it only as its old id, now at
  most in its reminders' old outbox keys, which do not say which row they were (a merge
  leaves one key for two rows): it stays NULL until a sync page of it names it again (an
  incremental read only if the checkout changed since; ``shopsync sync --full -r
  checkouts`` reads them all), and a deletion before that finds it by its token only.

One transaction, like every upgrade: a run cut short leaves everything as it was and runs
again.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"

_KIND = "abandoned_checkout"
_SEGMENT = re.compile(r"/checkouts/(ac/)?([A-Za-z0-9_=%-]+)/recover(?:[/?#]|$)")
_KEY = re.compile(r"t[0-9a-f]{39}")

_shops = sa.table("shops", sa.column("shop_id"), sa.column("platform"), sa.column("shop"))
_checkouts = sa.table(
    "checkouts",
    sa.column("shop_id"),
    sa.column("id"),
    sa.column("recovery_url"),
    sa.column("updated_at"),
    sa.column("completed_at"),
    sa.column("token_key"),
    sa.column("number"),
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
    "upgrade 0020 re-keyed this checkout by its recovery link's cart token: every sink dedupes"
    " by the action's key (and a discount code is derived from it), so a retry under the new"
    " key could arrive twice or quote a code never created"
)


_SENT = (
    "upgrade 0020 merged this checkout with another copy of it whose reminder of this stage"
    " was delivered already"
)


def checkout_key(token: str) -> str:
    """As ``shopsync_shopify._checkouts.checkout_key`` today (a test holds them equal)."""
    return "t" + hashlib.sha256(token.encode()).hexdigest()[:39]


def recovery_segment(url: object) -> str | None:
    """As ``shopsync_shopify._checkouts.recovery_segment`` today (a test holds them equal)."""
    found = _SEGMENT.search(url) if isinstance(url, str) else None
    return urllib.parse.unquote(found.group(2)) if found else None


def _older_form(url: object) -> bool:
    """The link names the token (``/checkouts/<token>/recover``, no ``ac/``)."""
    found = _SEGMENT.search(url) if isinstance(url, str) else None
    return found is not None and found.group(1) is None


def _action(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else dict(json.loads(value))


def upgrade() -> None:
    op.add_column("checkouts", sa.Column("token_key", sa.String(255)))
    op.create_index("ix_checkouts_token", "checkouts", ["shop_id", "token_key"])
    op.add_column("checkouts", sa.Column("number", sa.String(255)))
    op.create_index("ix_checkouts_number", "checkouts", ["shop_id", "number"])
    conn = op.get_bind()
    shops = conn.execute(
        sa.select(_shops.c.shop_id, _shops.c.shop).where(_shops.c.platform == "shopify")
    ).all()
    for shop_id, shop in shops:
        _keep_numbers(conn, shop_id)
        moved = _rekey_checkouts(conn, shop_id)
        if moved:
            _rekey_reminders(conn, shop_id, shop, moved)


def _keep_numbers(conn: sa.Connection, shop_id: int) -> None:
    """A row still keyed by the checkout's number (the gid's, before 0018) holds it."""
    this = _checkouts.c.shop_id == shop_id
    ids = conn.execute(sa.select(_checkouts.c.id).where(this)).scalars().all()
    for cid in ids:
        if cid.isascii() and cid.isdigit():
            where = sa.and_(this, _checkouts.c.id == cid)
            conn.execute(_checkouts.update().where(where).values(number=cid))


def _rekey_checkouts(conn: sa.Connection, shop_id: int) -> dict[str, str]:
    """Old id -> new key of each row a webhook stored under its token's key. Newest first,
    so of two rows of one checkout the first seen is the newer and is the one kept."""
    this = _checkouts.c.shop_id == shop_id
    rows = conn.execute(
        sa.select(_checkouts.c.id, _checkouts.c.recovery_url, _checkouts.c.completed_at)
        .where(this)
        .order_by(_checkouts.c.updated_at.desc(), _checkouts.c.id)
    ).all()
    taken = {r.id for r in rows}
    placed: set[str] = set()  # keys whose kept row is decided
    moved: dict[str, str] = {}

    def row(key: str) -> Any:
        return sa.and_(this, _checkouts.c.id == key)

    for old, url, completed_at in rows:
        segment = recovery_segment(url)
        if old not in taken:
            continue  # merged into a newer row already
        if segment is None or checkout_key(segment) == old:
            if (segment is None and _KEY.fullmatch(old)) or (segment and _older_form(url)):
                token = {"token_key": sa.func.coalesce(_checkouts.c.token_key, old)}
                conn.execute(_checkouts.update().where(row(old)).values(**token))
            placed.add(old)
            continue
        new = moved[old] = checkout_key(segment)
        if new in placed:  # a newer row of this checkout is kept: this one goes
            conn.execute(_checkouts.delete().where(row(old)))
            taken.discard(old)
            kept = {"completed_at": sa.func.coalesce(_checkouts.c.completed_at, completed_at)}
            kept["token_key"] = sa.func.coalesce(_checkouts.c.token_key, old)
            conn.execute(_checkouts.update().where(row(new)).values(**kept))
            continue
        if new in taken:  # an older row of this checkout holds the key: this one replaces it
            older = conn.execute(sa.select(_checkouts.c.completed_at).where(row(new))).scalar()
            conn.execute(_checkouts.delete().where(row(new)))
            taken.discard(new)  # and is not visited again
            if completed_at is None:
                completed_at = older
        values = {"id": new, "token_key": old, "completed_at": completed_at}
        conn.execute(_checkouts.update().where(row(old)).values(**values))
        taken.discard(old)
        placed.add(new)
    return moved


def _rekey_reminders(conn: sa.Connection, shop_id: int, shop: str, moved: dict[str, str]) -> None:
    """The reminders of moved checkouts take the new key, so the planner sees them as held
    under it. One not yet settled is cancelled (:data:`_REASON`); one whose new key another
    row already holds keeps its old key. As revision 0018; and where a moved one was
    delivered, the kept copy's unsettled reminder of that stage is cancelled (:data:`_SENT`)."""
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
    held = {(e.idempotency_key, e.sink): e for e in entries}
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
        holder = held.get((new_key, entry.sink))
        if holder is not None and entry.status == "done" and holder.status in _UNSETTLED:
            # this stage went out under the old key: the kept copy's is not sent again
            cancel = {"status": "cancelled", "reason": _SENT, "updated_at": now, "finished_at": now}
            conn.execute(_outbox.update().where(_outbox.c.id == holder.id).values(**cancel))
        if holder is None:
            held[(new_key, entry.sink)] = entry
            action = _action(entry.action)
            action["checkout_id"] = moved[old]
            if isinstance(action.get("facts"), dict):
                action["facts"] = {**action["facts"], "checkout_id": moved[old]}
            action["idempotency_key"] = new_key
            values.update(idempotency_key=new_key, action=action)
        if values:
            conn.execute(_outbox.update().where(_outbox.c.id == entry.id).values(**values))


def downgrade() -> None:
    """Drop the columns; the rows keep their new keys (a webhook's token key and a sync
    page's number are gone with the columns, and the previous version keys a sync page by
    the same link segment)."""
    op.drop_index("ix_checkouts_number", "checkouts")
    op.drop_column("checkouts", "number")
    op.drop_index("ix_checkouts_token", "checkouts")
    op.drop_column("checkouts", "token_key")
