"""Checkouts as rows: the SQL behind the abandoned-checkout program (issue 22).

Writes follow the orders' rules: a version older than the stored one changes nothing (a late
webhook after a sync) but for the checkout's other keys (``token_key``: Shopify's token
digest; ``number``: the platform's own number; no version without one clears them); a
completion once seen is never undone by a payload without it; a checkout of a redacted
customer (or under a redacted e-mail) is never stored again; and a deleted one (Shopify
``checkouts/delete``) leaves a tombstone, so a version of it updated before the deletion (a
late ``checkouts/update``, a sync page read before) stays out. A deletion or a completion
names a checkout by any key, and a deletion's tombstones cover every key of what it removed
(one that found nothing by the key it names reaches the id once a version names both). Reads
hand the core one frame cut at ``as_of``; erasure and export cover the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Connection, Select, and_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.checkouts import Checkout, CheckoutLine
from shopsync.core._data import CHECKOUTS
from shopsync.models import Order
from shopsync.store import NO_SHOP, _rows
from shopsync.store._copy import chunks
from shopsync.store._idset import in_set
from shopsync.store._privacy import email_token
from shopsync.store._upsert import bury
from shopsync.store.schema import checkouts, orders, tombstones

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "CHECKOUT_SCHEMA",
    "PAID_STATUSES",
    "UpsertCount",
    "checkout_frame",
    "complete_by_order_rows",
    "complete_by_orders",
    "complete_checkouts",
    "complete_paid",
    "delete_checkout",
    "erase_checkouts",
    "export_checkouts",
    "read_checkouts",
    "upsert_checkouts",
]

CHECKOUT_SCHEMA = CHECKOUTS


class UpsertCount:
    """How a batch landed: new, changed, and older-than-stored or kept out (``stale``)."""

    def __init__(self) -> None:
        self.inserted = 0
        self.updated = 0
        self.stale = 0


def _row(shop_id: int, c: Checkout) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "id": c.id,
        "customer_id": c.customer_id,
        "email": c.email,
        "created_at": _rows.to_micros(c.created_at),
        "updated_at": _rows.to_micros(c.updated_at),
        "completed_at": _rows.to_micros(c.completed_at) if c.completed_at else None,
        "recovery_url": c.recovery_url,
        "currency": c.currency,
        "subtotal": _rows.to_units(c.subtotal),
        "total": _rows.to_units(c.total),
        "token_key": c.token_key,
        "number": c.number,
        "lines": [
            {
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "title": line.title,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price.amount),
            }
            for line in c.line_items
        ],
    }


def _model(platform: str, shop: str, r: Any) -> Checkout:
    money = _rows.from_units
    return Checkout(
        platform=platform,
        shop=shop,
        id=r.id,
        customer_id=r.customer_id,
        email=r.email,
        created_at=_rows.from_micros(r.created_at),
        updated_at=_rows.from_micros(r.updated_at),
        completed_at=_rows.from_micros(r.completed_at) if r.completed_at is not None else None,
        recovery_url=r.recovery_url,
        currency=r.currency,
        subtotal=money(r.subtotal, r.currency),
        total=money(r.total, r.currency),
        line_items=tuple(
            CheckoutLine(
                product_id=line.get("product_id"),
                variant_id=line.get("variant_id"),
                title=line["title"],
                quantity=Decimal(line["quantity"]),
                unit_price={"amount": line["unit_price"], "currency": r.currency},
            )
            for line in (r.lines or [])
        ),
        token_key=r.token_key,
        number=r.number,
    )


def _either(shop_id: int, key: str) -> Any:
    """The rows of a shop's checkout named by ``key``: its id, token key or number."""
    t = checkouts
    return and_(t.c.shop_id == shop_id, or_(t.c.id == key, t.c.token_key == key, t.c.number == key))


def _redacted(conn: Connection, shop_id: int, batch: Sequence[Checkout]) -> set[str]:
    """The customer ids and e-mail digests (:func:`email_token`) of the batch whose owner
    was erased."""
    ids = sorted({c.customer_id for c in batch if c.customer_id})
    mails = sorted({email_token(c.email) for c in batch if c.email and c.email.strip()})
    if not ids and not mails:
        return set()
    t = tombstones
    found = conn.execute(
        select(t.c.id).where(
            t.c.shop_id == shop_id,
            t.c.reason == "redacted",
            or_(
                and_(t.c.resource == "customers", t.c.id.in_(ids)),
                and_(t.c.resource == "checkouts", t.c.id.in_(mails)),
            ),
        )
    ).scalars()
    return set(found)


def _deleted(conn: Connection, shop_id: int, ids: Sequence[str]) -> dict[str, int]:
    """When each of these checkouts was deleted (micros), for those that were."""
    t = tombstones
    rows = conn.execute(
        select(t.c.id, t.c.at).where(
            t.c.shop_id == shop_id,
            t.c.resource == "checkouts",
            t.c.reason == "deleted",
            t.c.id.in_(ids),
        )
    )
    return {r.id: r.at for r in rows}


def delete_checkout(
    store: Store, conn: Connection, platform: str, shop: str, checkout_id: str, at: dt.datetime
) -> bool:
    """Remove a checkout the platform deleted (``checkout_id``: any of its keys), leaving a
    tombstone dated ``at`` under that key and every key of the rows it found (a version
    naming any of them stays out); True if it was held. Its row gone, the program plans
    nothing for it and the delivery-time check (:func:`.checkout_recovery.recovered`)
    cancels a reminder already planned."""
    shop_id = store.shop_id(platform, shop, conn, create=False)
    if shop_id == NO_SHOP:
        return False
    store._writing(conn, shop_id)
    t = checkouts
    found = conn.execute(
        select(t.c.id, t.c.token_key, t.c.number).where(_either(shop_id, checkout_id))
    )
    rows = found.all()
    held = sorted(r.id for r in rows)
    keys = {checkout_id, *(k for r in rows for k in r if k)}
    bury(conn, shop_id, "checkouts", sorted(keys), "deleted", _rows.to_micros(at))
    if not held:
        return False
    done = conn.execute(
        checkouts.delete().where(checkouts.c.shop_id == shop_id, checkouts.c.id.in_(held))
    )
    return bool(done.rowcount)


def upsert_checkouts(
    store: Store, batch: Sequence[Checkout], conn: Connection | None = None
) -> UpsertCount:
    """Write one page of checkouts of one shop in one transaction (see the module doc), or
    in the caller's (``conn``: a webhook delivery's, with its de-duplication)."""
    count = UpsertCount()
    if not batch:
        return count
    first = batch[0]
    if any((c.platform, c.shop) != (first.platform, first.shop) for c in batch):
        raise ValueError("a batch of checkouts must belong to one shop")
    with store._conn(conn) as conn:
        shop_id = store.shop_id(first.platform, first.shop, conn)
        store._writing(conn, shop_id)  # a deletion committed meanwhile is seen (PostgreSQL)
        erased = _redacted(conn, shop_id, batch)
        # the last version of each id in the batch wins, as a later page would
        latest: dict[str, Checkout] = {}
        for c in batch:
            held = latest.get(c.id)
            if held is None or c.updated_at >= held.updated_at:
                latest[c.id] = c
        ids = sorted(latest)
        seconds = sorted({k for c in latest.values() for k in (c.token_key, c.number) if k})
        gone = _deleted(conn, shop_id, sorted({*ids, *seconds}))
        stored = {
            r.id: r
            for r in conn.execute(
                select(checkouts.c.id, checkouts.c.updated_at, checkouts.c.completed_at).where(
                    checkouts.c.shop_id == shop_id, checkouts.c.id.in_(ids)
                )
            )
        }
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        written: set[str | None] = set()
        for cid in ids:
            c = latest[cid]
            if c.customer_id in erased or (c.email and email_token(c.email) in erased):
                count.stale += 1
                continue
            row = _row(shop_id, c)
            named = [k for k in (cid, c.token_key, c.number) if k in gone]  # under any key
            if named and row["updated_at"] <= max(gone[k] for k in named):
                count.stale += 1  # a version from before its deletion
                if cid not in gone:  # deleted by another key only: so is the copy under its id
                    _bury_copy(conn, shop_id, cid, gone[named[0]])
                continue
            if named:  # updated after it: the platform has it again
                conn.execute(
                    tombstones.delete().where(
                        tombstones.c.shop_id == shop_id,
                        tombstones.c.resource == "checkouts",
                        tombstones.c.id.in_(named),
                    )
                )
            old = stored.get(cid)
            if old is not None and row["updated_at"] < old.updated_at:
                count.stale += 1
                _keep_keys(conn, shop_id, c)
                continue
            # one statement, so two writers of one checkout cannot both insert; an older
            # version never overwrites a newer one, a completion is never undone
            statement = insert(checkouts).values(**row)
            fresh = statement.excluded
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[checkouts.c.shop_id, checkouts.c.id],
                    set_={
                        **{k: fresh[k] for k in row if k not in ("shop_id", "id", *_KEPT)},
                        "completed_at": func.coalesce(fresh.completed_at, checkouts.c.completed_at),
                        "token_key": func.coalesce(fresh.token_key, checkouts.c.token_key),
                        "number": func.coalesce(fresh.number, checkouts.c.number),
                    },
                    where=checkouts.c.updated_at <= fresh.updated_at,
                )
            )
            _keep_keys(conn, shop_id, c)  # a newer version written meanwhile
            written.add(c.customer_id)
            if old is None:
                count.inserted += 1
            else:
                count.updated += 1
        _complete_from_stored_orders(conn, shop_id, ids)
        from shopsync.store.changes import note  # a reminder can be due (issue 19)

        note(conn, shop_id, written, dt.datetime.now(dt.timezone.utc))
    return count


def _bury_copy(conn: Connection, shop_id: int, cid: str, at: int) -> None:
    """A deletion that named only another key (it found no row by it: a sync page has no
    token, a webhook no number) reaches the checkout's id once a version names both: the
    copy held under the id goes unless updated after the deletion, and a tombstone keeps
    older ones out."""
    t = checkouts
    conn.execute(t.delete().where(t.c.shop_id == shop_id, t.c.id == cid, t.c.updated_at <= at))
    bury(conn, shop_id, "checkouts", [cid], "deleted", at)


_KEPT = ("completed_at", "token_key", "number")
"""Columns a version without them never clears."""


def _keep_keys(conn: Connection, shop_id: int, c: Checkout) -> None:
    """Give the stored checkout the other keys a version of it names, where it has none: a
    webhook older than the sync page stored (a sync page carries no token) still tells
    which token deletions and orders will name it by, and a sync page older than the
    webhook stored (a webhook carries no number) the number a deletion names."""
    t = checkouts
    for column, value in (("token_key", c.token_key), ("number", c.number)):
        if value is not None:
            conn.execute(
                t.update()
                .where(t.c.shop_id == shop_id, t.c.id == c.id, t.c[column].is_(None))
                .values({column: value})
            )


def _complete_from_stored_orders(conn: Connection, shop_id: int, ids: Sequence[str]) -> None:
    """Complete these open checkouts whose own order the store holds paid already (an order
    webhook of the paid order came before the pending version carrying the checkout)."""
    t, o = checkouts, orders
    own = and_(o.c.shop_id == t.c.shop_id, o.c.id == t.c.id, o.c.created_at == t.c.created_at)
    paid = or_(o.c.paid_at.is_not(None), o.c.financial_status.in_(PAID_STATUSES))
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(t.c.id, t.c.created_at, o.c.paid_at, o.c.updated_at)
            .select_from(t.join(o, own))
            .where(
                t.c.shop_id == shop_id,
                _rows.among(conn, t.c.id, ids[start : start + 500]),
                t.c.completed_at.is_(None),
                paid,
            )
        ).all()
        for r in rows:
            at = r.paid_at if r.paid_at is not None else r.updated_at
            conn.execute(
                t.update()
                .where(t.c.shop_id == shop_id, t.c.id == r.id, t.c.completed_at.is_(None))
                .values(completed_at=max(at, r.created_at))
            )


def read_checkouts(
    store: Store, platform: str, shop: str, ids: Iterable[str] | None = None
) -> list[Checkout]:
    """Stored checkouts of a shop (these ids when given), oldest first."""
    shop_id = store.shop_id(platform, shop, create=False)
    query = select(checkouts).where(checkouts.c.shop_id == shop_id)
    if ids is not None:
        query = query.where(checkouts.c.id.in_(sorted(set(ids))))
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(checkouts.c.created_at, checkouts.c.id))
        return [_model(platform, shop, r) for r in rows]


_FRAME = select(
    checkouts.c.id,
    checkouts.c.customer_id,
    checkouts.c.email,
    checkouts.c.created_at,
    checkouts.c.completed_at,
    checkouts.c.total,
    checkouts.c.currency,
    checkouts.c.lines,
).where(checkouts.c.shop_id == bindparam("sid"), checkouts.c.created_at <= bindparam("at"))
_FRAME_ORDER = (checkouts.c.created_at, checkouts.c.id)
_FRAME_ONE = _FRAME.where(checkouts.c.customer_id == bindparam("cid")).order_by(*_FRAME_ORDER)
""":func:`checkout_frame`'s statement of one customer, built once (a select built and keyed
per call cost ~80 us of each webhook's re-plan)"""


def checkout_frame(
    store: Store,
    shop_id: int,
    at: int,
    customer_id: str | None = None,
    customer_ids: Collection[str] | None = None,
) -> pl.DataFrame:
    """The checkouts started by ``at`` (micros) of a shop, or of one customer, or of the
    ``customer_ids``, as the core reads them (:data:`CHECKOUT_SCHEMA`); a completion after
    ``at`` is not known yet."""
    t = checkouts
    params: dict[str, Any] = {"sid": shop_id, "at": at}
    if customer_id is not None and customer_ids is None:  # a webhook's re-plan: built once
        query, params["cid"] = _FRAME_ONE, customer_id
    else:
        query = _FRAME
        if customer_id is not None:
            query = query.where(t.c.customer_id == customer_id)
        if customer_ids is not None:
            query = query.where(in_set(t.c.customer_id, customer_ids, store.engine.dialect.name))
        query = query.order_by(*_FRAME_ORDER)
    with store.engine.connect() as conn:
        rows = conn.execute(query, params).all()
    data: dict[str, list[Any]] = {name: [] for name in CHECKOUT_SCHEMA}
    for r in rows:
        data["id"].append(r.id)
        data["customer_id"].append(r.customer_id)
        data["email"].append(r.email)
        data["created_at"].append(r.created_at)
        done = r.completed_at
        data["completed_at"].append(done if done is not None and done <= at else None)
        data["total"].append(r.total)
        data["currency"].append(r.currency)
        data["product_ids"].append(
            [str(line["product_id"]) for line in (r.lines or []) if line.get("product_id")]
        )
    return pl.DataFrame(data, schema=CHECKOUT_SCHEMA)


def erase_checkouts(conn: Connection, shop_id: int, customer_id: str, emails: Iterable[str]) -> int:
    """Delete a person's checkouts (by customer id or e-mail): GDPR erasure. A checkout is
    nothing but personal data and an intent; the shop's figures do not need it."""
    values = sorted({e.strip().lower() for e in emails if e and e.strip()})
    owned = [checkouts.c.customer_id == customer_id]
    if values:
        owned.append(func.lower(checkouts.c.email).in_(values))
    done = conn.execute(checkouts.delete().where(checkouts.c.shop_id == shop_id, or_(*owned)))
    return int(done.rowcount)


def export_checkouts(
    conn: Connection, shop_id: int, customer_id: str, emails: Iterable[str]
) -> list[dict[str, Any]]:
    """A person's checkouts as JSON-ready data (GDPR access), oldest first."""
    values = sorted({e.strip().lower() for e in emails if e and e.strip()})
    owned = [checkouts.c.customer_id == customer_id]
    if values:
        owned.append(func.lower(checkouts.c.email).in_(values))
    rows = conn.execute(
        select(checkouts)
        .where(checkouts.c.shop_id == shop_id, or_(*owned))
        .order_by(checkouts.c.created_at, checkouts.c.id)
    )
    out = []
    for r in rows:
        item = _model("x", "x", r).model_dump(
            mode="json", exclude={"platform", "shop", "token_key", "number"}
        )
        out.append(item)
    return out


PAID_STATUSES = ("paid", "partially_paid", "partially_refunded", "refunded")
"""Paid even without a payment date (as :func:`shopsync.core.features.paid_moment`)."""


def complete_by_orders(conn: Connection, shop_id: int, batch: Sequence[Order]) -> int:
    """Complete the open checkouts that are these orders, now paid; how many.

    A WooCommerce checkout is its own ``pending``/``checkout-draft`` order (same id, same
    creation instant: :mod:`shopsync_woocommerce._checkouts`). Paid means the statuses of
    ``wc_get_is_paid_statuses`` (``processing`` and ``completed``,
    plugins/woocommerce/includes/wc-order-functions.php), which the order mapping turns into
    ``paid`` with ``date_paid``; ``on-hold`` (awaiting a bank transfer or a cheque) is not.
    Once paid the order is no longer listed as a checkout, so without this the row stayed
    open and the recovery rate missed it. The instant must match too: Shopify's checkout and
    order ids are separate counters, so an equal id alone is no proof. Called by every write of
    orders (sync and webhooks, by model or by rows); a completion already held is never moved."""
    return _complete(
        conn,
        shop_id,
        {
            o.id: (_rows.to_micros(o.created_at), _rows.to_micros(o.paid_at or o.updated_at))
            for o in batch
            if o.paid_at is not None or o.financial_status.value in PAID_STATUSES
        },
    )


def complete_by_order_rows(
    conn: Connection,
    shop_id: int,
    batch: Iterable[dict[str, Any]],
    found: Sequence[Any] | None = None,
) -> int:
    """:func:`complete_by_orders` for ``orders`` table rows (the columnar ingest path).
    ``found``: the open checkouts (id, created_at) among these ids, if the caller read them."""
    return complete_paid(conn, shop_id, paid_rows(batch), found)


def complete_paid(
    conn: Connection,
    shop_id: int,
    paid: dict[str, tuple[int, int]],
    found: Sequence[Any] | None = None,
) -> int:
    """:func:`complete_by_order_rows` for the paid orders :func:`paid_rows` gave."""
    if found is None:
        return _complete(conn, shop_id, paid)
    return _complete_found(conn, shop_id, paid, [r for r in found if r.id in paid])


def paid_rows(batch: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """The paid ones of ``orders`` table rows: id -> (created at, paid at), in micros."""
    return {
        r["id"]: (r["created_at"], r["paid_at"] or r["updated_at"])
        for r in batch
        if r["paid_at"] is not None or r["financial_status"] in PAID_STATUSES
    }


def open_among(conn: Connection, shop_id: int, ids: Sequence[str]) -> Select[Any]:
    """The open checkouts (id, created_at) of ``shop_id`` among ``ids``."""
    t = checkouts
    return select(t.c.id, t.c.created_at).where(
        t.c.shop_id == shop_id, _rows.among(conn, t.c.id, ids), t.c.completed_at.is_(None)
    )


def _complete(conn: Connection, shop_id: int, paid: dict[str, tuple[int, int]]) -> int:
    """``paid``: order id -> (created at, paid at), in micros."""
    done = 0
    ids = sorted(paid)
    for start in range(0, len(ids), 500):
        rows = conn.execute(open_among(conn, shop_id, ids[start : start + 500])).all()
        done += _complete_found(conn, shop_id, paid, rows)
    return done


def _complete_found(
    conn: Connection, shop_id: int, paid: dict[str, tuple[int, int]], rows: Iterable[Any]
) -> int:
    t = checkouts
    done = 0
    for r in rows:
        created, at = paid[r.id]
        if r.created_at != created:
            continue
        conn.execute(
            t.update()
            .where(t.c.shop_id == shop_id, t.c.id == r.id, t.c.completed_at.is_(None))
            .values(completed_at=max(at, r.created_at))
        )
        done += 1
    return done


def complete_checkouts(
    store: Store,
    conn: Connection,
    platform: str,
    shop: str,
    done: Sequence[tuple[str, dt.datetime]],
) -> int:
    """Complete these checkouts (either key, when its order was placed): a Shopify order body
    names the checkout it was placed from (``checkout_token``, ``cart_token``); how many were
    open. A completion already held is never moved; the row's other fields are the checkout
    webhooks' and the sync's business."""
    shop_id = store.shop_id(platform, shop, conn, create=False)
    if shop_id == NO_SHOP or not done:
        return 0
    t = checkouts
    first: dict[str, tuple[int, int]] = {}  # key -> (its first place in ``done``, micros)
    for place, (checkout_id, at) in enumerate(done):
        first.setdefault(checkout_id, (place, _rows.to_micros(at)))
    found: dict[str, Any] = {}  # a sync page names thousands: one query a chunk, not a key
    for chunk in chunks(sorted(first)):
        named = or_(t.c.id.in_(chunk), t.c.token_key.in_(chunk), t.c.number.in_(chunk))
        query = select(t.c.id, t.c.token_key, t.c.number, t.c.created_at).where(
            t.c.shop_id == shop_id, named, t.c.completed_at.is_(None)
        )
        found.update((row.id, row) for row in conn.execute(query))
    count = 0
    for row in found.values():  # completed as by the first key naming it
        _, micros = min(first[k] for k in (row.id, row.token_key, row.number) if k in first)
        changed = conn.execute(
            t.update()
            .where(t.c.shop_id == shop_id, t.c.id == row.id, t.c.completed_at.is_(None))
            .values(completed_at=max(micros, row.created_at))
        )
        count += changed.rowcount
    return count
