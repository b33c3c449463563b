"""Writes of records: the upsert of customers, orders and products, and their deletion.

The bodies of :meth:`Store.upsert <shopsync.store.Store.upsert>` and
:meth:`Store.delete <shopsync.store.Store.delete>`. A newer ``updated_at`` replaces the stored
record and its child rows in the caller's transaction; an equal or older one changes nothing.
Tombstones (:func:`bury`) keep what was deleted or redacted from coming back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.exc import SQLAlchemyError

from shopsync.errors import StoreError
from shopsync.models import Customer, Order, Product
from shopsync.store import _consent, _incomplete, _rows, facts, redemptions
from shopsync.store import changes as _changes
from shopsync.store._copy import chunks, insert_rows
from shopsync.store._records import CHILDREN, TABLES, Record
from shopsync.store.schema import (
    consent_history,
    customers,
    orders,
    products,
    tombstones,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "UpsertResult",
    "bury",
    "delete",
    "delete_rows",
    "upsert",
    "upsert_orders",
]

_RESOURCES: dict[type[Any], str] = {Customer: "customers", Order: "orders", Product: "products"}


@dataclass
class UpsertResult:
    """What an upsert did: new records, newer versions, identical versions, older versions."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0

    def __iadd__(self, other: UpsertResult) -> UpsertResult:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        return self


class _Stored(NamedTuple):
    """What :func:`_classify` needs of a stored record."""

    updated_at: int
    content_hash: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def upsert(
    store: Store,
    records: Iterable[Customer | Order | Product],
    conn: Connection | None,
    same_stamp: bool,
) -> UpsertResult:
    """:meth:`Store.upsert <shopsync.store.Store.upsert>`."""
    groups: dict[tuple[type, str, str], list[Any]] = {}
    for record in records:
        groups.setdefault((type(record), record.platform, record.shop), []).append(record)
    result = UpsertResult()
    try:
        with store._conn(conn) as c:
            for (kind, platform, shop), batch in sorted(
                groups.items(), key=lambda item: (item[0][1], item[0][2], item[0][0].__name__)
            ):
                shop_id = store.shop_id(platform, shop, c)
                store._writing(c, shop_id)
                batch = _past_tombstones(c, shop_id, kind, batch, result)
                ids = [r.id for r in batch]
                held = _changes.before_write(c, shop_id, _RESOURCES[kind], ids)
                written: _changes.Versions | None = None
                if kind is Order:
                    written = {}
                    result += upsert_orders(c, shop_id, batch, same_stamp, held, written)
                    from shopsync.store.checkout_rows import complete_by_orders  # issue 22

                    complete_by_orders(c, shop_id, batch)
                elif kind is Customer:
                    result += _upsert_customers(c, shop_id, batch, same_stamp)
                elif kind is Product:
                    result += _upsert_simple(
                        c, products, shop_id, batch, _rows.product_row, same_stamp
                    )
                else:
                    raise TypeError(f"cannot store {kind.__name__}")
                _changes.note_written(c, shop_id, held, written)  # same transaction (issue 19)
    except SQLAlchemyError as exc:
        store._forget_shops()
        cause = getattr(exc, "orig", None) or exc
        raise StoreError(f"upsert rolled back: {type(cause).__name__}: {cause}") from exc
    return result


def _without_personal_data(order: Order) -> Order:
    """An order of a redacted customer: the facts stay, who bought and where does not."""
    return order.model_copy(
        update={
            "email": None,
            "billing_address": None,
            "shipping_address": None,
            "refunds": tuple(r.model_copy(update={"note": None}) for r in order.refunds),
        }
    )


def _past_tombstones(
    c: Connection, shop_id: int, kind: type[Any], batch: list[Any], result: UpsertResult
) -> list[Any]:
    """The batch as the tombstones allow it: a redacted customer is not stored again,
    orders of a redaction are stored without personal data, and a deleted record comes
    back only in a version updated after its deletion (older ones count as stale)."""
    resource = _RESOURCES.get(kind)
    if resource is None:
        return batch
    keys = {r.id for r in batch}
    if kind is Order:
        keys |= {r.customer_id for r in batch if r.customer_id}
    marks: dict[tuple[str, str], Any] = {}
    for chunk in chunks(sorted(keys)):
        query = select(tombstones).where(
            tombstones.c.shop_id == shop_id, _rows.among(c, tombstones.c.id, chunk)
        )
        for row in c.execute(query):
            marks[(row.resource, row.id)] = row
    if not marks:
        return batch
    kept: list[Any] = []
    revived: list[str] = []
    for record in batch:
        mark = marks.get((resource, record.id))
        if mark is not None and mark.reason == "deleted":
            if _rows.to_micros(record.updated_at) <= mark.at:
                result.stale += 1
                continue
            revived.append(record.id)
        elif mark is not None and kind is Customer:
            result.stale += 1
            continue
        if kind is Order:
            owner = marks.get(("customers", record.customer_id or ""))
            if (mark is not None and mark.reason == "redacted") or (
                owner is not None and owner.reason == "redacted"
            ):
                record = _without_personal_data(record)
        kept.append(record)
    for chunk in chunks(revived):
        c.execute(
            tombstones.delete().where(
                tombstones.c.shop_id == shop_id,
                tombstones.c.resource == resource,
                tombstones.c.id.in_(chunk),
            )
        )
    return kept


def bury(
    c: Connection, shop_id: int, resource: str, ids: Iterable[str], reason: str, at: int
) -> None:
    """Mark records as redacted or deleted; a redaction is never downgraded to a deletion."""
    for record_id in ids:
        where = (
            tombstones.c.shop_id == shop_id,
            tombstones.c.resource == resource,
            tombstones.c.id == record_id,
        )
        old = c.execute(select(tombstones.c.reason, tombstones.c.at).where(*where)).first()
        if old is None:
            c.execute(
                tombstones.insert().values(
                    shop_id=shop_id, resource=resource, id=record_id, reason=reason, at=at
                )
            )
        elif old.reason == "deleted":
            c.execute(update(tombstones).where(*where).values(reason=reason, at=max(at, old.at)))


def _newest(batch: list[Record]) -> dict[str, Record]:
    newest: dict[str, Record] = {}
    for record in batch:
        seen = newest.get(record.id)
        if seen is None or record.updated_at >= seen.updated_at:
            newest[record.id] = record
    return newest


def _existing(
    c: Connection, table: Table, shop_id: int, ids: Sequence[str], *extra: str
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    cols = [table.c.id, table.c.updated_at, table.c.content_hash]
    cols += [table.c[name] for name in extra]
    for chunk in chunks(ids):
        for row in c.execute(
            select(*cols).where(table.c.shop_id == shop_id, _rows.among(c, table.c.id, chunk))
        ):
            found[row.id] = row
    return found


def _classify(
    newest: dict[str, Record],
    existing: dict[str, Any],
    result: UpsertResult,
    same_stamp: bool,
) -> tuple[list[Record], list[Record]]:
    fresh: list[Record] = []
    newer: list[Record] = []
    for rid, record in newest.items():
        old = existing.get(rid)
        if old is None:
            fresh.append(record)
            continue
        stamp = _rows.to_micros(record.updated_at)
        if stamp > old.updated_at:
            newer.append(record)
        elif stamp < old.updated_at:
            result.stale += 1
        elif _rows.matches(old.content_hash, record):
            result.unchanged += 1
        elif not same_stamp:
            result.stale += 1
        else:
            # Same timestamp, other content: platforms that keep whole seconds
            # (WooCommerce) stamp two quick changes alike; the later write is the newer.
            newer.append(record)
    result.inserted += len(fresh)
    result.updated += len(newer)
    return fresh, newer


def delete_rows(
    c: Connection, table: Table, shop_id: int, ids: list[str], column: str = "id"
) -> None:
    """Delete the shop's rows of ``table`` whose ``column`` is one of ``ids``."""
    for chunk in chunks(ids):
        c.execute(
            table.delete().where(table.c.shop_id == shop_id, _rows.among(c, table.c[column], chunk))
        )


def _upsert_simple(
    c: Connection,
    table: Table,
    shop_id: int,
    batch: list[Any],
    to_row: Any,
    same_stamp: bool,
) -> UpsertResult:
    result = UpsertResult()
    newest = _newest(batch)
    fresh, newer = _classify(newest, _existing(c, table, shop_id, list(newest)), result, same_stamp)
    delete_rows(c, table, shop_id, [r.id for r in newer])
    rows = [to_row(shop_id, r) for r in fresh + newer]
    insert_rows(c, table, rows)
    return result


def _partial_columns() -> tuple[str, ...]:
    """Columns a partial customer update may keep (read with the stored row)."""
    from shopsync.store._partial import COLUMNS

    return COLUMNS


def _upsert_customers(
    c: Connection, shop_id: int, batch: list[Customer], same_stamp: bool
) -> UpsertResult:
    result = UpsertResult()
    newest = _newest(batch)
    existing = _existing(
        c,
        customers,
        shop_id,
        list(newest),
        "email_consent",
        "email_opt_in",
        "email_consent_at",
        "sms_consent",
        "sms_opt_in",
        "sms_consent_at",
        *_partial_columns(),
    )
    fresh, newer = _classify(newest, existing, result, same_stamp)
    delete_rows(c, customers, shop_id, [r.id for r in newer])
    rows = [_rows.customer_row(shop_id, r) for r in fresh + newer]
    from shopsync.store._partial import keep_unsent

    for row, record in zip(rows, fresh + newer, strict=True):
        keep_unsent(row, record, existing.get(record.id))  # a partial update
    kept = {row["id"]: _consent.keep_known(row, existing.get(row["id"])) for row in rows}
    insert_rows(c, customers, rows)
    history = []
    for record in newer:
        old = existing[record.id]
        if _rows.to_micros(record.updated_at) == old.updated_at:
            # Same-second change: its history rows replace those of the first version.
            c.execute(
                consent_history.delete().where(
                    consent_history.c.shop_id == shop_id,
                    consent_history.c.customer_id == record.id,
                    consent_history.c.observed_at == old.updated_at,
                )
            )
    for record in fresh + newer:
        old = existing.get(record.id)
        for row in _rows.consent_rows(shop_id, record):
            if row["channel"] in kept[record.id]:
                continue  # the record says nothing about it: the stored consent stands
            if old is None or (row["state"], row["opt_in_level"]) != (
                getattr(old, f"{row['channel']}_consent"),
                getattr(old, f"{row['channel']}_opt_in"),
            ):
                history.append(row)
    insert_rows(c, consent_history, history)
    return result


def upsert_orders(
    c: Connection,
    shop_id: int,
    batch: list[Order],
    same_stamp: bool,
    held: Any = None,
    written: _changes.Versions | None = None,
) -> UpsertResult:
    """``held``: the stored versions :func:`changes.before_write` read (not read again);
    ``written`` gets the versions this write stores, for :func:`changes.note_written`."""
    result = UpsertResult()
    newest = _newest(batch)
    if held is not None:
        existing = {rid: _Stored(v[1], v[2]) for rid, v in held[2].items()}
    else:
        existing = _existing(c, orders, shop_id, list(newest))
    fresh, newer = _classify(newest, existing, result, same_stamp)
    replaced = [r.id for r in newer]
    held = _incomplete.held_refunds(c, shop_id, [r.id for r in newer if not r.refunds_complete])
    for child in CHILDREN:
        delete_rows(c, child, shop_id, replaced, column="order_id")
    delete_rows(c, orders, shop_id, replaced)
    tables: dict[str, list[dict[str, Any]]] = {
        "orders": [],
        "line_items": [],
        "refunds": [],
        "fulfillments": [],
    }
    seq = facts.next_seq(c, shop_id) if fresh or newer else 0
    for order in fresh + newer:
        for name, rows in _rows.order_rows(shop_id, order).items():
            tables[name].extend(rows)
    for row in tables["orders"]:
        row["seq"] = seq
        if written is not None:
            written[row["id"]] = (row["customer_id"], row["updated_at"], row["content_hash"])
    _incomplete.keep_held(tables, held)  # a refund summary keeps what the store held
    for table in (orders, *CHILDREN):
        insert_rows(c, table, tables[table.name])
    return result


def delete(
    store: Store,
    kind: type[Customer | Order | Product],
    platform: str,
    shop: str,
    record_id: str,
    conn: Connection | None,
    deleted_at: dt.datetime | None,
) -> bool:
    """:meth:`Store.delete <shopsync.store.Store.delete>`."""
    from shopsync.store import NO_SHOP  # defined beside Store, which imports this module

    table = TABLES[kind]
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c, create=False)
        if shop_id != NO_SHOP:
            store._writing(c, shop_id)
            if kind is Customer:  # a loyalty sync under way writes them nothing more
                redemptions.lock_points(c, shop_id)
            at = _rows.to_micros(deleted_at or _now())
            bury(c, shop_id, _RESOURCES[kind], [record_id], "deleted", at)
            _changes.note_deletion(c, shop_id, _RESOURCES[kind], record_id)
        if kind is Order:
            for child in CHILDREN:
                delete_rows(c, child, shop_id, [record_id], column="order_id")
        if kind is Customer:
            delete_rows(c, consent_history, shop_id, [record_id], column="customer_id")
        deleted = c.execute(
            table.delete().where(table.c.shop_id == shop_id, table.c.id == record_id)
        )
        if kind is Order and deleted.rowcount:
            facts.record_deletions(c, shop_id, [record_id])
        return bool(deleted.rowcount)
