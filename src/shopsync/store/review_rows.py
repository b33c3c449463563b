"""The reviews customers wrote, as rows: the SQL behind :mod:`shopsync.reviews`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store import _rows
from shopsync.store.schema import reviews

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["ReviewRow", "insert_reviews", "review_rows"]

_BATCH = 2000


class ReviewRow(NamedTuple):
    customer_id: str
    product_id: str
    reviewed_at: dt.datetime
    order_id: str | None
    rating: int | None
    source: str
    key: str


def insert_reviews(store: Store, rows: Sequence[dict[str, Any]]) -> int:
    """Insert review rows (columns of the ``reviews`` table) in one transaction; a row whose
    ``(shop_id, key)`` is already held is skipped. Returns how many were new. The customers
    of the new ones are noted as changed in the same transaction (a review stops a request's
    reminder and keeps the product out of their requests: issue 19's incremental plan)."""
    from shopsync.store.changes import note

    if not rows:
        return 0
    added: list[tuple[int, str]] = []
    with store.transaction() as conn:
        dialect = conn.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        for start in range(0, len(rows), _BATCH):
            statement = (
                insert(reviews)
                .on_conflict_do_nothing()
                .returning(reviews.c.shop_id, reviews.c.customer_id)
            )
            added += [
                (int(r[0]), r[1]) for r in conn.execute(statement, rows[start : start + _BATCH])
            ]
        now = dt.datetime.now(dt.timezone.utc)
        for shop_id in sorted({shop_id for shop_id, _ in added}):
            note(conn, shop_id, [cid for sid, cid in added if sid == shop_id], now)
    return len(added)


def review_rows(store: Store, shop_id: int, customer_id: str | None = None) -> list[ReviewRow]:
    """A shop's reviews (one customer's when given), oldest first, ties by key."""
    t = reviews
    query = select(t).where(t.c.shop_id == shop_id).order_by(t.c.reviewed_at, t.c.key)
    if customer_id is not None:
        query = query.where(t.c.customer_id == customer_id)
    with store.engine.connect() as conn:
        return [
            ReviewRow(
                r.customer_id,
                r.product_id,
                _rows.from_micros(r.reviewed_at),  # type: ignore[arg-type]
                r.order_id,
                r.rating,
                r.source,
                r.key,
            )
            for r in conn.execute(query)
        ]
