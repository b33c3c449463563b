"""The stored shop-level models (issue 19, item 3; what they are: :mod:`shopsync.core.shop_models`).

One row per shop in ``shop_models`` (revision 0019), not files beside the database: workers
on several machines share only the database (PostgreSQL), and a row gives both guarantees
the models need in one place on both engines:

- a rebuild replaces the row in one transaction, so a crash before its commit leaves the
  previous version whole and usable, and a crash after leaves the new one;
- :func:`save` writes only over the version the builder read (``UPDATE ... WHERE version =
  :read``, or an insert that yields to an existing row), so two processes rebuilding at once
  end with one version: the later writer finds the row moved on, stores nothing, and uses the
  version the other stored.

What changed since a build is counted from the order-facts sequence (``orders.seq``, revision
0014), which every write of an order, its lines, refunds or fulfilments moves, and from
``fact_deletions``; both are indexed by ``(shop_id, seq)``, so the count reads an index range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.core.shop_models import ModelHeader
from shopsync.store.schema import fact_deletions, orders, shop_models, shops

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["body", "changes_since", "currency_lead", "facts_seq", "header", "save", "shop_mark"]

_HEADER = [c for c in shop_models.c if c.name not in ("shop_id", "body")]
# the statements every one-customer plan runs, built once (building and keying a select per
# call cost ~80 us each: issue 18, item 4.3)
_HEADER_OF = select(*_HEADER).where(shop_models.c.shop_id == bindparam("sid"))
_MARK = select(shops.c.facts_seq, shops.c.created_at).where(shops.c.shop_id == bindparam("sid"))
_WRITTEN = select(func.count()).where(
    orders.c.shop_id == bindparam("sid"), orders.c.seq > bindparam("seq")
)
_DELETED = select(func.count()).where(
    fact_deletions.c.shop_id == bindparam("sid"), fact_deletions.c.seq > bindparam("seq")
)


def header(store: Store, shop_id: int) -> ModelHeader | None:
    """The stored models' header (None: the shop has none)."""
    with store.engine.connect() as conn:
        row = conn.execute(_HEADER_OF, {"sid": shop_id}).first()
    if row is None:
        return None
    held: dict[str, Any] = dict(zip([c.name for c in _HEADER], row, strict=True))
    return ModelHeader(
        version=int(held["version"]),
        format=int(held["format"]),
        settings=str(held["settings"]),
        data_as_of=int(held["data_as_of"]),
        built_at=int(held["built_at"]),
        facts_seq=int(held["facts_seq"]),
        customers=int(held["customers"]),
    )


def body(store: Store, shop_id: int, version: int) -> bytes | None:
    """The body of ``version`` (None: the row has moved on to another version since)."""
    query = select(shop_models.c.body).where(
        shop_models.c.shop_id == shop_id, shop_models.c.version == version
    )
    with store.engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else bytes(found)


def facts_seq(store: Store, shop_id: int) -> int:
    """The shop's order-facts sequence now (read before a build reads the shop)."""
    with store.engine.connect() as conn:
        found = conn.execute(select(shops.c.facts_seq).where(shops.c.shop_id == shop_id)).scalar()
    return int(found or 0)


def shop_mark(store: Store, shop_id: int) -> tuple[int, int]:
    """The shop's order-facts sequence now and when its row was created: a kept value is
    the shop's only while both match (SQLite gives a removed shop's id to the next shop,
    whose sequence starts again from 0)."""
    with store.engine.connect() as conn:
        found = conn.execute(_MARK, {"sid": shop_id}).first()
    return (0, 0) if found is None else (int(found[0] or 0), int(found[1]))


def currency_lead(store: Store, shop_id: int) -> tuple[str | None, int]:
    """The currency most of the shop's real orders use (ties: alphabetical; None without
    orders) and its lead in orders over the next one: a caller that keeps them knows the
    answer stands while fewer than half that lead of orders changed (one changed order moves
    the lead by at most two), which :func:`changes_since` counts from an index."""
    count = func.count().label("n")
    query = (
        select(orders.c.currency, count)
        .where(orders.c.shop_id == shop_id, ~orders.c.test)
        .group_by(orders.c.currency)
        .order_by(count.desc(), orders.c.currency)
        .limit(2)
    )
    with store.engine.connect() as conn:
        top = [(str(c), int(n)) for c, n in conn.execute(query)]
    if not top:
        return None, 0
    return top[0][0], top[0][1] - (top[1][1] if len(top) > 1 else 0)


def changes_since(store: Store, shop_id: int, seq: int) -> int:
    """Orders written or deleted since the sequence value ``seq``."""
    since = {"sid": shop_id, "seq": seq}
    with store.engine.connect() as conn:
        written = conn.execute(_WRITTEN, since).scalar()
        return int(written or 0) + int(conn.execute(_DELETED, since).scalar() or 0)


def save(store: Store, shop_id: int, read: int | None, head: ModelHeader, data: bytes) -> bool:
    """Store ``data`` as ``head.version`` over the version ``read`` (None: the shop had no
    row); False when another process stored a version since (nothing is written)."""
    values: dict[str, Any] = {c.name: getattr(head, c.name) for c in _HEADER}
    values["body"] = data
    with store.transaction() as conn:
        if read is None:
            dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(shop_models).values(shop_id=shop_id, **values)
            statement = insert.on_conflict_do_nothing(index_elements=["shop_id"])
        else:
            statement = (
                update(shop_models)
                .where(shop_models.c.shop_id == shop_id, shop_models.c.version == read)
                .values(**values)
            )
        # RETURNING, not rowcount: psycopg reports no rowcount for INSERT ... DO NOTHING
        return conn.execute(statement.returning(shop_models.c.version)).first() is not None
