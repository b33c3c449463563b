"""The loyalty tables: the append-only points ledger and the inputs it is derived from.

:mod:`shopsync.loyalty` decides what to write; the queries live here (issue 18: the store owns
every byte of SQL). Writes take the connection of the caller's :meth:`Store.transaction`, so a
derivation and its entries commit together; reads open their own connection.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    case,
    except_,
    func,
    literal_column,
    or_,
    select,
)

from shopsync.store import insert_ignoring_duplicates
from shopsync.store._idset import in_set
from shopsync.store._privacy import email_token
from shopsync.store.read import (
    I64,
    LINE_PRODUCT_TYPE,
    LOYALTY_ORDERS,
    LOYALTY_REFUNDS,
    TEXT,
    Column,
    frame_of_rows,
    read_table,
)
from shopsync.store.redemptions import moved_generations
from shopsync.store.schema import (
    customers,
    line_items,
    loyalty_inputs,
    loyalty_ledger,
    orders,
    refunds,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "Connection",
    "add_entries",
    "add_inputs",
    "contact_rows",
    "customer_entries",
    "customer_history",
    "earned_points",
    "earned_since",
    "email_token",
    "existing_input_key",
    "input_data",
    "input_rows",
    "moved_order_points",
    "newest_entry",
    "referral_check",
    "referral_inputs",
    "shop_entries",
    "shop_points",
]

_CHUNK = 500  # ids per IN (...) clause
_FEW = 4 * _CHUNK
"""Customers whose earns :func:`earned_points` reads with ``IN`` lists at any shop size;
more are joined to a table of their ids while they are at most one in :data:`_SHARE` of the
shop's customers, else read with the whole shop's, in one pass."""
_SHARE = 2
"""Measured at 1M customers / 9.8M earns (20M entries) on SQLite: the whole shop's earns in
16 CPU-s; joined to the ids 5.8 CPU-s for 216,000 customers (a plan's dry run), 9.8 for
500,000; 2,000 in 0.18 by ``IN`` lists, 0.10 joined."""
_EARNED = [
    Column("customer_id", TEXT),
    Column("order_id", TEXT),
    Column("points", I64, "pending + approved"),
    Column("pending", I64),
    Column("id", I64),
]


def add_inputs(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Record loyalty inputs (a key already held is skipped); returns how many were new.
    Their customers are noted as changed in the same transaction (issue 19)."""
    from shopsync.store.changes import note_keys

    added = insert_ignoring_duplicates(conn, loyalty_inputs, list(rows))
    if added:
        note_keys(conn, [(r["shop_id"], r["customer_id"]) for r in rows])
    return added


def add_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Append ledger entries (a source key already held is skipped); returns how many were new."""
    return insert_ignoring_duplicates(conn, loyalty_ledger, list(rows))


def input_rows(
    store: Store, shop_id: int, customer_ids: Collection[str] | None = None
) -> list[Any]:
    """Every loyalty input of the shop (birthdays, referrals, redemptions, adjustments), or of
    ``customer_ids`` alone, in the order they happened (ties by key); rows carry the table's
    columns as attributes."""
    query = select(loyalty_inputs).where(loyalty_inputs.c.shop_id == shop_id)
    if customer_ids is not None:
        dialect = store.engine.dialect.name
        query = query.where(in_set(loyalty_inputs.c.customer_id, customer_ids, dialect))
    with store.engine.connect() as conn:
        return list(
            conn.execute(query.order_by(loyalty_inputs.c.occurred_at, loyalty_inputs.c.key))
        )


def existing_input_key(conn: Connection, shop_id: int, keys: Sequence[str]) -> str | None:
    """The first of ``keys`` already recorded as a loyalty input of the shop."""
    found = set(
        conn.execute(
            select(loyalty_inputs.c.key).where(
                loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.key.in_(list(keys))
            )
        ).scalars()
    )
    return next((k for k in keys if k in found), None)


def input_data(conn: Connection, shop_id: int, key: str) -> Any | None:
    """The ``data`` of the input recorded under ``key`` (a row with attribute ``data``), None
    when none is."""
    return conn.execute(
        select(loyalty_inputs.c.data).where(
            loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.key == key
        )
    ).first()


def contact_rows(store: Store, shop_id: int, ids: Sequence[str]) -> list[Any]:
    """id, email, first_name, last_name, default_address of the listed customers (the facts a
    referral is judged on); customers the store does not hold are left out."""
    out: list[Any] = []
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            out += conn.execute(
                select(
                    customers.c.id,
                    customers.c.email,
                    customers.c.first_name,
                    customers.c.last_name,
                    customers.c.default_address,
                ).where(
                    customers.c.shop_id == shop_id, customers.c.id.in_(ids[start : start + _CHUNK])
                )
            ).all()
    return out


def moved_order_points(conn: Connection, shop_id: int) -> list[Any]:
    """Points held for orders that now belong to another customer or no longer exist: rows of
    customer_id, order_id, pending, approved (sums of the order's earn, approve, clawback and
    earlier moves) and owner (the order's customer now, None when deleted or a guest).

    On SQLite the (customer, order) pairs of those entries that no order holds are found
    first, by one ``EXCEPT`` of two scans (a sort of each): joining every entry to its order
    looked each one up at random (20M entries at 10M orders: about 9 minutes, the ``EXCEPT``
    34 CPU-s); the rows are then those of the customers found (usually none)."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(_moved_joined(shop_id)).all())
    ledger = loyalty_ledger
    held = select(ledger.c.customer_id, ledger.c.order_id).where(*_moved_entries(shop_id))
    owned = select(orders.c.customer_id, orders.c.id).where(orders.c.shop_id == shop_id)
    customers = sorted({row[0] for row in conn.execute(except_(held, owned))})
    found: list[Any] = []
    for start in range(0, len(customers), _CHUNK):
        chunk = customers[start : start + _CHUNK]
        found += conn.execute(_moved_joined(shop_id, ledger.c.customer_id.in_(chunk))).all()
    return found


def _moved_entries(shop_id: int) -> list[ColumnElement[bool]]:
    """The shop's entries that move with their order (earn, approve, clawback, earlier moves)."""
    ledger = loyalty_ledger
    return [
        ledger.c.shop_id == shop_id,
        ledger.c.order_id.is_not(None),
        or_(
            ledger.c.kind.in_(("earn", "approve", "clawback")),
            ledger.c.source_key.like("adjust:moved:%"),
        ),
    ]


def _moved_joined(shop_id: int, *among: ColumnElement[bool]) -> Select[Any]:
    """:func:`moved_order_points`' rows by joining each entry of :func:`_moved_entries` (and
    ``among``) to its order, in the order of their keys."""
    ledger = loyalty_ledger
    return (
        select(
            ledger.c.customer_id,
            ledger.c.order_id,
            func.sum(ledger.c.pending).label("pending"),
            func.sum(ledger.c.approved).label("approved"),
            orders.c.customer_id.label("owner"),
        )
        .select_from(
            ledger.outerjoin(
                orders,
                and_(orders.c.shop_id == ledger.c.shop_id, orders.c.id == ledger.c.order_id),
            )
        )
        .where(
            *_moved_entries(shop_id),
            *among,
            or_(
                orders.c.id.is_(None),
                orders.c.customer_id.is_(None),
                orders.c.customer_id != ledger.c.customer_id,
            ),
        )
        .group_by(ledger.c.customer_id, ledger.c.order_id, orders.c.customer_id)
        .order_by(ledger.c.customer_id, ledger.c.order_id, orders.c.customer_id)
    )


def earned_points(
    store: Store, shop_id: int, customer_ids: Collection[str] | None = None
) -> pl.DataFrame:
    """The points each order's earn entry holds (``customer_id``, ``order_id``, ``points``,
    and ``pending``: whether it holds them pending), of the whole shop or of ``customer_ids``:
    what a derivation keeps for the orders already earned (points an order earned are a fact,
    whatever the earn rule, its return window included, says now).

    The whole shop is read in columns (one pass over its earn entries, no Python row each);
    a few customers through the customer index. Of an order that left its customer and came
    back (:func:`~shopsync.store.redemptions.moved_generations`), only an earn of its current
    generation counts."""
    ids = None if customer_ids is None else sorted(set(customer_ids))
    if ids is not None and len(ids) <= _FEW:
        with store.engine.connect() as conn:
            found = _earned_of(conn, shop_id, ids)
            generations = moved_generations(conn, shop_id)
        return _current_earns(found, generations)
    among = None if ids is None or not _share(store, shop_id, len(ids)) else ("customer_id", ids)
    with store.engine.connect() as conn:
        generations = moved_generations(conn, shop_id)
    # the entries' ids tell an order's newest earn: read when an order moved (one in
    # ``generations``) or was earned twice, not for the usual one earn an order (a sixth of
    # the read: 0.1 CPU-s of 0.6 for 330,000 earns on SQLite)
    found = _earned_read(store, shop_id, ids, among, with_id=bool(generations))
    if not generations:
        once = _earned_once(found)
        if once is not None:
            return once
        found = _earned_read(store, shop_id, ids, among, with_id=True)  # its newest counts
    return _current_earns(found, generations)


def _earned_read(
    store: Store,
    shop_id: int,
    ids: list[str] | None,
    among: tuple[str, list[str]] | None,
    *,
    with_id: bool,
) -> pl.DataFrame:
    """:data:`_EARNED` rows (without ``id`` unless ``with_id``) of the shop's earns, of
    ``ids`` when given: joined to them (``among``) or filtered from the shop's."""
    where = f"shop_id = {int(shop_id)} AND kind = 'earn' AND order_id IS NOT NULL"
    columns = _EARNED if with_id else [c for c in _EARNED if c.name != "id"]
    found = read_table(store.engine, loyalty_ledger.name, columns, where, among)
    if ids is not None and among is None:
        found = found.filter(pl.col("customer_id").is_in(pl.Series(ids, dtype=pl.String).implode()))
    return found


def newest_entry(store: Store) -> int:
    """The id of the newest ledger entry, of any shop (0: none yet)."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.max(loyalty_ledger.c.id))).scalar() or 0)


def earned_since(conn: Connection, shop_id: int, seen: int) -> bool:
    """Whether the shop's ledger holds an earn entry, or an adjustment (a moved order's
    reversal is one), newer than ``seen`` (:func:`newest_entry` read before the shop and
    :func:`earned_points`): one written since they were read."""
    ledger = loyalty_ledger
    # "shop_id + 0": the primary key's range of the few newer entries, not the shop's index
    query = select(ledger.c.id).where(
        ledger.c.id > seen,
        (ledger.c.shop_id + 0) == shop_id,
        ledger.c.kind.in_(("earn", "adjust")),
    )
    return conn.execute(query.limit(1)).first() is not None


def _share(store: Store, shop_id: int, wanted: int) -> bool:
    """Whether ``wanted`` customers' earns are cheaper read through the customer index than
    in a pass over the shop's ledger (at most one in :data:`_SHARE` of its customers)."""
    bound = wanted * _SHARE
    # counted up to the bound: the shop's customers past it need not be (1M: 0.05 CPU-s)
    some = select(customers.c.id).where(customers.c.shop_id == shop_id).limit(bound).subquery()
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(some)).scalar_one()
    return count >= bound


def _earned_of(conn: Connection, shop_id: int, ids: Sequence[str]) -> pl.DataFrame:
    """:data:`_EARNED` rows of the customers ``ids``."""
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        rows += conn.execute(_EARNED_ROWS, {"sid": shop_id, "ids": chunk}).all()
    return frame_of_rows(rows, _EARNED)


_EARNED_ROWS = select(
    loyalty_ledger.c.customer_id,
    loyalty_ledger.c.order_id,
    (loyalty_ledger.c.pending + loyalty_ledger.c.approved).label("points"),
    loyalty_ledger.c.pending,
    loyalty_ledger.c.id,
).where(
    loyalty_ledger.c.shop_id == bindparam("sid"),
    loyalty_ledger.c.customer_id.in_(bindparam("ids", expanding=True)),
    loyalty_ledger.c.kind == "earn",
    loyalty_ledger.c.order_id.is_not(None),
)
"""Built once (a select built and keyed per call cost ~80 us; see :func:`referral_check`)."""


_FEW_EARNS = 512
"""Earn rows up to which :func:`_current_earns` looks at them in Python (a one-customer plan;
``core._data.FEW_ROWS``'s reason: the store does not import the core)."""


def _earned_once(found: pl.DataFrame) -> pl.DataFrame | None:
    """:func:`_current_earns` of ``found`` when each order earned once (the usual case: no
    group to find the newest in; 1M orders: 0.16 CPU-s for the check, 0.28 for the
    grouping), else None."""
    keys = ["customer_id", "order_id"]
    if not found.select(pl.struct(keys).is_unique().all()).item():
        return None
    return found.select(*keys, "points", (pl.col("pending") > 0).alias("pending"))


def _current_earns(found: pl.DataFrame, generations: dict[tuple[str, str], int]) -> pl.DataFrame:
    """One row per (customer, order) of :data:`_EARNED` rows: an order reversed ``n`` times
    (it left the customer) earned in its current generation when it has more than ``n`` earn
    entries, and then the newest is that one's; without a reversal an order has one, or the
    newest counts (an entry under another key must not make the order earn twice)."""
    keys = ["customer_id", "order_id"]
    if not generations and found.height <= _FEW_EARNS:  # one customer's: no query (~0.3 ms each)
        pairs = list(zip(found["customer_id"].to_list(), found["order_id"].to_list(), strict=True))
        if len(set(pairs)) == len(pairs):
            pending = [None if p is None else p > 0 for p in found["pending"].to_list()]
            flags = pl.Series("pending", pending, dtype=pl.Boolean)
            return pl.DataFrame([found["customer_id"], found["order_id"], found["points"], flags])
    elif not generations and (once := _earned_once(found)) is not None:
        return once
    newest = found.group_by(keys, maintain_order=True).agg(
        pl.len().alias("_earns"),
        pl.col("points").sort_by("id").last(),
        (pl.col("pending").sort_by("id").last() > 0).alias("pending"),
    )
    if not generations:
        return newest.select(*keys, "points", "pending")
    moved = pl.DataFrame(
        [(c, o, n) for (c, o), n in generations.items()],
        schema={"customer_id": pl.String, "order_id": pl.String, "_n": pl.Int64},
        orient="row",
    )
    current = pl.col("_n").is_null() | (pl.col("_earns") > pl.col("_n"))
    return (
        newest.join(moved, on=keys, how="left", maintain_order="left")
        .filter(current)
        .select(*keys, "points", "pending")
    )


def customer_entries(
    store: Store, shop_id: int, customer_id: str, upto: int | None = None
) -> list[Any]:
    """The customer's ledger entries (effective by ``upto`` micros if given), oldest first."""
    query = (
        select(loyalty_ledger)
        .where(loyalty_ledger.c.shop_id == shop_id, loyalty_ledger.c.customer_id == customer_id)
        .order_by(loyalty_ledger.c.effective_at, loyalty_ledger.c.id)
    )
    if upto is not None:
        query = query.where(loyalty_ledger.c.effective_at <= upto)
    with store.engine.connect() as conn:
        return list(conn.execute(query))


def shop_points(store: Store, shop_id: int) -> tuple[int, int, int, int]:
    """Sums over every entry of the shop: approved, pending, approved of redemptions (negative
    or zero), approved of expiries (negative or zero)."""
    kind = loyalty_ledger.c.kind
    with store.engine.connect() as conn:
        row = conn.execute(
            select(
                func.coalesce(func.sum(loyalty_ledger.c.approved), 0),
                func.coalesce(func.sum(loyalty_ledger.c.pending), 0),
                func.coalesce(func.sum(case((kind == "redeem", loyalty_ledger.c.approved))), 0),
                func.coalesce(func.sum(case((kind == "expire", loyalty_ledger.c.approved))), 0),
            ).where(loyalty_ledger.c.shop_id == shop_id)
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def shop_entries(store: Store, shop_id: int) -> list[Any]:
    """Every stored entry of a shop, in insertion order."""
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                select(loyalty_ledger)
                .where(loyalty_ledger.c.shop_id == shop_id)
                .order_by(loyalty_ledger.c.id)
            )
        )


def referral_check(
    store: Store, shop_id: int, customer_id: str
) -> tuple[bool, str | None, list[Any]]:
    """Whether the store holds the customer, their email, and the shop's referral inputs
    (rows of customer_id, data) that can name them: as the advocate, or as the friend by id
    or by email (:func:`shopsync.core._loyalty_one.in_a_referral` decides). Not every referral
    of the shop: a webhook's re-plan read them all, each time."""
    with store.engine.connect() as conn:
        found = conn.execute(_CUSTOMER_EMAIL, {"sid": shop_id, "cid": customer_id}).first()
        if found is None:
            return False, None, []
        email = found.email
        query = _OWN_REFERRALS[email is not None]
        params = {"sid": shop_id, "cid": customer_id, "email": email}
        referrals = conn.execute(query, params).all()
    return True, email, list(referrals)


# statements built once: building and keying a select cost ~80 us each, of a one-customer
# re-plan that runs a dozen of them (issue 18, item 4.3)
_CUSTOMER_EMAIL = select(customers.c.id, customers.c.email).where(
    customers.c.shop_id == bindparam("sid"), customers.c.id == bindparam("cid")
)


def _own_referrals(by_email: bool) -> Select[tuple[str, Any]]:
    """The referral inputs whose advocate is ``:cid`` or whose friend is ``:cid`` (or has
    the email ``:email``, when ``by_email``): through the kind index, the JSON fields
    compared in the database, not every referral's data decoded here."""
    t = loyalty_inputs
    cid: BindParameter[str] = bindparam("cid")
    names = [t.c.customer_id == cid, t.c.data["friend_id"].as_string() == cid]
    if by_email:
        names.append(t.c.data["friend_email"].as_string() == bindparam("email"))
    return select(t.c.customer_id, t.c.data).where(
        t.c.shop_id == bindparam("sid"), t.c.kind == "referral", or_(*names)
    )


_OWN_REFERRALS = {False: _own_referrals(False), True: _own_referrals(True)}


def referral_inputs(shop_id: int) -> Select[tuple[str, Any]]:
    """The shop's referral inputs (advocate ``customer_id``, ``data``), found through the
    ``ix_loyalty_inputs_kind`` index: a shop holds far more birthday inputs than referrals."""
    t = loyalty_inputs
    return select(t.c.customer_id, t.c.data).where(t.c.shop_id == shop_id, t.c.kind == "referral")


def customer_history(
    store: Store, shop_id: int, customer_id: str, with_lines: bool
) -> tuple[dict[str, pl.DataFrame], list[Any]]:
    """One customer's share of :func:`shopsync.store.read.loyalty_tables` (orders, refunds and,
    when asked, line product types; no customers frame), ``earned`` (their share of
    :func:`earned_points`) and their loyalty inputs in order."""
    mine = {"sid": shop_id, "cid": customer_id}
    with store.engine.connect() as conn:
        order_rows = conn.execute(_HISTORY["orders"], mine).all()
        ids = {"sid": shop_id, "ids": [r.id for r in order_rows]}
        refund_rows = conn.execute(_HISTORY["refunds"], ids).all() if ids["ids"] else []
        frames = {
            "orders": frame_of_rows(order_rows, LOYALTY_ORDERS),
            "refunds": frame_of_rows(refund_rows, LOYALTY_REFUNDS),
        }
        if with_lines:
            line_rows = conn.execute(_HISTORY["line_items"], ids).all() if ids["ids"] else []
            frames["line_items"] = frame_of_rows(
                line_rows, [Column("order_id", TEXT), Column("product_type", TEXT)]
            )
        frames["earned"] = _current_earns(
            _earned_of(conn, shop_id, [customer_id]), moved_generations(conn, shop_id, customer_id)
        )
        inputs = conn.execute(_HISTORY["inputs"], mine).all()
    return frames, list(inputs)


def _history_statements() -> dict[str, Select[Any]]:
    """:func:`customer_history`'s statements (``:sid``, ``:cid``, the order ``:ids``), built
    once: a webhook's re-plan runs them each time."""
    sid: BindParameter[int] = bindparam("sid")
    ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
    own = [c.sql for c in LOYALTY_ORDERS]
    return {
        "orders": select(*[orders.c[name] for name in own]).where(
            orders.c.shop_id == sid,
            orders.c.customer_id == bindparam("cid"),
            ~orders.c.test,  # the one purchase rule: read.REAL_ORDERS_SQL
        ),
        "refunds": select(
            refunds.c.order_id, refunds.c.id, refunds.c.created_at, refunds.c.amount
        ).where(refunds.c.shop_id == sid, refunds.c.order_id.in_(ids)),
        "line_items": select(
            line_items.c.order_id, literal_column(LINE_PRODUCT_TYPE).label("product_type")
        ).where(line_items.c.shop_id == sid, line_items.c.order_id.in_(ids)),
        "inputs": select(loyalty_inputs)
        .where(loyalty_inputs.c.shop_id == sid, loyalty_inputs.c.customer_id == bindparam("cid"))
        .order_by(loyalty_inputs.c.occurred_at, loyalty_inputs.c.key),
    }


_HISTORY = _history_statements()
