"""Partial customer updates: a payload that lacks a field never erases what the store holds.

Shopify's customer webhooks dropped ``tags``, the marketing consents and ``orders_count`` in
2025-01 (those facts now come on their own topics), and a customer webhook carries the
birthday metafield only when the subscription asks for its namespace. A mapper therefore
builds the :class:`~shopsync.models.Customer` with only the fields its payload carried;
pydantic remembers them (``model_fields_set``), and :func:`keep_unsent` puts the stored
values back into the row for every field the record was not given. (Consent is kept by
:func:`shopsync.store._consent.keep_known` when a record leaves it ``unknown``.)

:func:`apply_changes` applies the facts that arrive without a record
(:class:`~shopsync.adapter.CustomerChange`): consents, added and removed tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from shopsync.models import Customer
from shopsync.store import _consent, _rows
from shopsync.store.schema import customers

if TYPE_CHECKING:
    from shopsync.adapter import CustomerChange

__all__ = ["MERGED_COLUMNS", "apply_changes", "keep_unsent"]

MERGED_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "tags": ("tags",),
    "birthday": ("birthday",),
    "default_address": ("default_address",),
    "orders_count": ("orders_count",),
    "total_spent": ("total_spent", "total_spent_currency"),
}
"""Customer fields a record may leave out, and the columns that hold them."""
COLUMNS = tuple(col for cols in MERGED_COLUMNS.values() for col in cols)


def keep_unsent(row: dict[str, Any], record: Customer, old: Any | None) -> None:
    """Put the stored values back for every field ``record`` was built without."""
    if old is None:
        return
    given = record.model_fields_set
    for name, columns in MERGED_COLUMNS.items():
        if name not in given:
            for column in columns:
                row[column] = getattr(old, column)


def apply_changes(
    conn: Connection, shop_id: int, changes: Iterable[CustomerChange], at: int
) -> int:
    """Apply consent and tag changes to stored customers; returns how many customers
    changed. A change for a customer the store does not hold is skipped: the next sync
    brings the whole record, consent and tags included."""
    changed = 0
    for change in changes:
        touched = False
        for channel, consent in (("email", change.email_consent), ("sms", change.sms_consent)):
            if consent is None:
                continue
            stored_at = conn.execute(
                select(customers.c[f"{channel}_consent_at"]).where(
                    customers.c.shop_id == shop_id, customers.c.id == change.customer_id
                )
            ).scalar()
            new_at = _rows.opt_micros(consent.updated_at)
            if stored_at is not None and new_at is not None and new_at < stored_at:
                continue  # a late retry of an older consent
            done = _consent.set_consent(
                conn, shop_id, change.customer_id, channel, consent, source="platform", at=at
            )
            touched = touched or bool(done)
        if change.tags_added or change.tags_removed:
            touched = _change_tags(conn, shop_id, change) or touched
        changed += touched
    return changed


def _change_tags(conn: Connection, shop_id: int, change: CustomerChange) -> bool:
    where = (customers.c.shop_id == shop_id, customers.c.id == change.customer_id)
    stored = conn.execute(select(customers.c.tags).where(*where)).scalar()
    if stored is None:
        return False
    removed = {t.strip().lower() for t in change.tags_removed}
    tags = [t for t in stored if t.strip().lower() not in removed]
    present = {t.strip().lower() for t in tags}
    for tag in change.tags_added:
        if tag.strip() and tag.strip().lower() not in present:
            tags.append(tag.strip())
            present.add(tag.strip().lower())
    if tags == list(stored):
        return False
    conn.execute(customers.update().where(*where).values(tags=tags))
    return True
