"""What an incremental plan reads and settles (issue 19; the planning is in
:mod:`shopsync.incremental`).

- :func:`recorded_keys`: which idempotency keys the outbox already holds (any sink, any
  status). A candidate whose key is recorded was planned before and the outbox will never
  deliver it twice, so it does not make its customer part of the next incremental plan.
- :func:`not_due`: the customers whose loyalty notices time alone will not change by ``at``
  (their ``loyalty_due`` row, derived by ``at`` with the same loyalty settings, is not due).
- :func:`program_not_due`: the same for the programs' candidates (``program_due``, revision
  0022): customers whose recorded moment, derived with the same settings tag, is not due.
- :func:`next_rows`: per customer, the first row dated after ``at`` of the tables a read
  cuts at ``at`` (orders, consent, reviews, unsubscriptions, checkouts, browse events,
  outbox deliveries): what time alone will show a later plan. A message the outbox has not
  delivered yet counts as at once.
- :func:`candidates`: the shop's customers an incremental plan must look at (ids only,
  from indexes and the moment tables, none of their rows): those without their customer
  row, and those whose program or loyalty moment is due, absent or of another tag; once the
  shop's ``moment_cover`` holds (revision 0025), from the moments' indexes alone (the due
  and the stale ones; a customer without a moment is noted); :func:`plannable_among` sorts
  noted ids.
- :func:`settle`: after a successful apply, in one transaction: the change notes the plan
  consumed are removed (each only if its ``seq`` is still the one read, so a change that
  landed meanwhile stays noted: revision 0026 gives each write of a note a value of its
  own), and the planned customers' loyalty and program due moments are written (a row
  derived as of a later moment becomes due at once), but for customers erased since the
  plan read them. Notes of shops since removed go too. The shop's ``moment_cover`` is
  raised after a plan's pass over every customer once the store shows it holds, and
  lowered by a settle that records no loyalty moments (:mod:`shopsync.store.moment_cover`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, case, delete, exists, func, or_, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store import _engine
from shopsync.store._copy import chunks
from shopsync.store._idset import id_array, id_table, in_set, set_sql
from shopsync.store.changes import Change, noted_at
from shopsync.store.moment_cover import Cover, covered, lower_cover, settle_cover
from shopsync.store.schema import (
    browse_events,
    changed_customers,
    checkouts,
    consent_history,
    loyalty_due,
    loyalty_inputs,
    orders,
    outbox,
    program_due,
    reviews,
    shops,
    suppressions,
    tombstones,
)
from shopsync.store.schema import customers as customer_rows
from shopsync.store.times import to_micros

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shopsync.store import Store

__all__ = [
    "Candidates",
    "Cover",
    "candidates",
    "delivered",
    "lower_cover",
    "next_rows",
    "not_due",
    "orphan_notes",
    "pending_notes",
    "plannable_among",
    "program_not_due",
    "program_tagged",
    "recorded_keys",
    "referral_parties",
    "settle",
    "shop_made",
    "uncounted",
]

_CHUNK = 500
_WHOLE_SHOP = 20_000
"""Above this many customers, :func:`next_rows` reads the shop's later rows in one pass
instead of looking each customer up by the index (when the shop's size is not given)."""
_WHOLE_SHARE = 16
"""Above one customer in this many of the shop, the same: the pass grows with the shop, the
index with the customers (at 100k customers / 1M orders, SQLite: the pass 0.10 CPU-s, the
index 0.015 ms a customer; even at ~6%)."""


def recorded_keys(store: Store, shop_id: int, keys: Iterable[str]) -> set[str]:
    """The ``keys`` the shop's outbox holds a row for."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = select(outbox.c.idempotency_key).where(
                outbox.c.shop_id == shop_id, outbox.c.idempotency_key.in_(chunk)
            )
            found.update(row[0] for row in conn.execute(query))
    return found


def shop_made(store: Store, shop_id: int) -> int | None:
    """When the shop's row was created (micros), None when it is gone: a shop removed and
    created again can get the same id (SQLite), and a plan of the old shop must record no
    moment for the new one's customers."""
    query = select(shops.c.created_at).where(shops.c.shop_id == shop_id)
    with store.engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else int(found)


def pending_notes(store: Store, shop_id: int, platform: str, shop: str) -> list[Change]:
    """Every change note of the shop (the customers changed since they were last settled),
    those a worker handled too (:func:`~shopsync.store.changes.clear_changes`)."""
    query = select(
        changed_customers.c.customer_id, changed_customers.c.seq, changed_customers.c.changed_at
    ).where(changed_customers.c.shop_id == shop_id)
    with store.engine.connect() as conn:
        return [
            Change(platform, shop, r.customer_id, int(r.seq), noted_at(int(r.changed_at)))
            for r in conn.execute(query)
        ]


def orphan_notes(store: Store) -> int:
    """Change notes of shops the store no longer holds (removed while the note waited)."""
    query = select(changed_customers.c.customer_id).where(
        changed_customers.c.shop_id.not_in(select(shops.c.shop_id))
    )
    with store.engine.connect() as conn:
        return len(conn.execute(query).all())


def referral_parties(store: Store, shop_id: int) -> set[str]:
    """Every customer a recorded referral names (advocate, friend by id or by e-mail): a
    friend's order changes the advocate's points, so they are planned together."""
    from shopsync.store._consent import customer_ids_by_email

    found: set[str] = set()
    emails: set[str] = set()
    query = select(loyalty_inputs.c.customer_id, loyalty_inputs.c.data).where(
        loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.kind == "referral"
    )
    with store.engine.connect() as conn:
        for advocate, data in conn.execute(query):
            found.add(advocate)
            if data.get("friend_id"):
                found.add(str(data["friend_id"]))
            if data.get("friend_email"):
                emails.add(str(data["friend_email"]))
        if emails:
            for ids in customer_ids_by_email(conn, shop_id, emails).values():
                found.update(ids)
    return found


def not_due(store: Store, shop_id: int, at: int, settings: str) -> set[str]:
    """Customers whose loyalty notices time alone leaves unchanged through ``at``."""
    return _not_due(store, loyalty_due, shop_id, at, settings)


def program_not_due(store: Store, shop_id: int, at: int, settings: str) -> set[str]:
    """Customers whose program candidates time alone leaves unchanged through ``at``."""
    return _not_due(store, program_due, shop_id, at, settings)


def program_tagged(store: Store, shop_id: int, at: int, settings: str) -> set[str]:
    """Customers with a program moment derived by ``at`` under the tag ``settings`` (due or
    not): the others have none, or one another tag made stale."""
    query = select(program_due.c.customer_id).where(
        program_due.c.shop_id == shop_id,
        program_due.c.settings == settings,
        program_due.c.derived_at <= at,
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(query)}


def _not_due(store: Store, table: Table, shop_id: int, at: int, settings: str) -> set[str]:
    query = select(table.c.customer_id).where(
        table.c.shop_id == shop_id,
        table.c.settings == settings,
        table.c.derived_at <= at,
        or_(table.c.due_at.is_(None), table.c.due_at > at),
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(query)}


def next_rows(
    store: Store, shop_id: int, at: int, ids: Iterable[str], customers: int | None = None
) -> dict[str, int]:
    """Per customer of ``ids``, the first moment after ``at`` of a row a read as of ``at``
    leaves out (see the module docstring); ``at`` itself for an undelivered message.
    ``customers``: how many the shop has (they decide between the index and one pass)."""
    consent_at = case(
        (
            and_(
                consent_history.c.consent_updated_at.is_not(None),
                consent_history.c.consent_updated_at < consent_history.c.observed_at,
            ),
            consent_history.c.consent_updated_at,
        ),
        else_=consent_history.c.observed_at,
    )
    dated: list[tuple[Table, Any]] = [
        (orders, orders.c.created_at),
        (consent_history, consent_at),
        (reviews, reviews.c.reviewed_at),
        (suppressions, suppressions.c.created_at),
        (checkouts, checkouts.c.created_at),
        (browse_events, browse_events.c.occurred_at),
        (outbox, outbox.c.finished_at),
    ]
    wanted = sorted(set(ids))
    found: dict[str, int] = {}

    def keep(rows: Iterable[Any]) -> None:
        for cid, when in rows:
            if cid is not None and when is not None:
                found[cid] = min(found.get(cid, when), int(when))

    if customers is None:
        whole = len(wanted) > _WHOLE_SHOP
    else:
        whole = len(wanted) * _WHOLE_SHARE > customers
    pending = outbox.c.status == "pending"
    with store.engine.connect() as conn:
        if whole:
            for table, when in dated:
                query = select(table.c.customer_id, func.min(when)).where(
                    table.c.shop_id == shop_id, when > at
                )
                keep(conn.execute(query.group_by(table.c.customer_id)))
            waiting = select(outbox.c.customer_id).where(outbox.c.shop_id == shop_id, pending)
            keep((row[0], at) for row in conn.execute(waiting.distinct()))
        else:  # an index probe a table an id: the first row after ``at``, for the ids
            # that have one (most have none: fetching a row of nulls for each cost more than
            # the probes, 3.6 s of 27 at 43,657 ids of a 10M-order shop)
            p = id_table(wanted, conn.dialect.name, "cid")
            for table, when in dated:
                later = and_(table.c.shop_id == shop_id, table.c.customer_id == p.c.cid, when > at)
                first = select(func.min(when)).where(later).scalar_subquery()
                keep(conn.execute(select(p.c.cid, first).where(exists().where(later))))
            mine = and_(outbox.c.shop_id == shop_id, outbox.c.customer_id == p.c.cid)
            waiting = select(p.c.cid).where(exists().where(mine, pending))
            keep((row[0], at) for row in conn.execute(waiting))
    if whole:
        chosen = set(wanted)
        return {cid: when for cid, when in found.items() if cid in chosen}
    return found


def _current(alias: str, tag: str) -> str:
    """1 when the moment row ``alias`` exists, was derived by ``:at`` under ``:tag``."""
    return f"{alias}.settings = :{tag} AND {alias}.derived_at <= :at"


def _flag(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


@dataclass
class Candidates:
    """What :func:`candidates` found (each a set of customer ids of the shop)."""

    unknown: set[str] = field(default_factory=set)
    """Plannable without their customer row by ``at`` (deleted, or erased)."""
    stale: set[str] = field(default_factory=set)
    """Plannable with no program moment derived by ``at`` under the tag."""
    program: set[str] = field(default_factory=set)
    """Plannable whose program moment is due, absent or of another tag."""
    loyalty: set[str] = field(default_factory=set)
    """Customers (by ``at``) whose loyalty moment is due, absent or of another tag."""
    customers: int = 0
    """How many customers the shop has by ``at``."""
    by_index: bool = False
    """Found from the moments' indexes alone (the shop's moment cover held)."""


_ROWS_OF = """
SELECT d.cid FROM (
SELECT DISTINCT customer_id AS cid FROM orders WHERE shop_id = :sid
  AND customer_id IS NOT NULL AND created_at <= :at
UNION ALL SELECT DISTINCT customer_id FROM checkouts WHERE shop_id = :sid
  AND customer_id IS NOT NULL AND created_at <= :at
UNION ALL SELECT DISTINCT customer_id FROM browse_events WHERE shop_id = :sid
  AND customer_id IS NOT NULL AND occurred_at <= :at
) d WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.shop_id = :sid AND c.id = d.cid
  AND c.created_at <= :at)"""
"""Ids with orders (test ones too: the covering index alone is read), checkouts or browse
events by ``:at`` but no customer row by then: a superset of the unknown plannable ones."""


_MOMENTS = """
SELECT customer_id, {current} FROM {table} WHERE shop_id = :sid AND due_at <= :at
UNION ALL SELECT customer_id, 0 FROM {table} WHERE shop_id = :sid AND settings < :{tag}
UNION ALL SELECT customer_id, 0 FROM {table} WHERE shop_id = :sid AND settings > :{tag}
UNION ALL SELECT customer_id, 0 FROM {table} WHERE shop_id = :sid AND settings = :{tag}
  AND derived_at > :at"""
"""The moment rows of ``table`` due by ``:at`` (with 1 when current: derived by then under
the tag) and those stale (another tag, or derived later), each a range of an index of
revision 0025: as many rows read as found."""


def _by_index(
    conn: Connection, params: dict[str, Any], found: Candidates, loyalty: bool
) -> Candidates:
    """:func:`candidates` from the moments alone. A customer without a moment has a change
    note (the cover's promise), so it is planned as noted; a row of a customer not plannable
    by ``at`` is among them too (a superset: planning one more customer changes nothing)."""
    moments = _MOMENTS.format(
        current=_flag(_current("pd", "ptag")), table="program_due pd", tag="ptag"
    )
    for cid, current in conn.execute(text(moments), params):
        found.program.add(cid)
        if not current:
            found.stale.add(cid)
    if loyalty:
        rows = _MOMENTS.format(current="1", table="loyalty_due", tag="ltag")
        found.loyalty.update(row[0] for row in conn.execute(text(rows), params))
    found.by_index = True
    return found


def candidates(
    store: Store, shop_id: int, at: int, program_tag: str, loyalty_tag: str | None
) -> Candidates:
    """The plannable customers (:data:`_PLANNABLE`) an incremental plan must look at, read
    without their rows (indexes and the moment tables): see :class:`Candidates`.
    ``loyalty_tag`` None: the loyalty moments are not asked for. When the shop's moments
    cover every customer (:func:`~shopsync.store.moment_cover.covered`), from the moments'
    indexes alone; else from a pass over every customer (and every order's customer), which
    the settle then covers."""
    current = _current("pd", "ptag")
    due = f"{current} AND (pd.due_at IS NULL OR pd.due_at > :at)"
    loyal = _current("ld", "ltag") + " AND (ld.due_at IS NULL OR ld.due_at > :at)"
    customers_sql = f"""
SELECT * FROM (
SELECT c.id AS cid, {_flag(current)} AS tagged, {_flag(due)} AS quiet,
  {_flag(loyal) if loyalty_tag is not None else "1"} AS loyal
FROM customers c
LEFT JOIN program_due pd ON pd.shop_id = :sid AND pd.customer_id = c.id
LEFT JOIN loyalty_due ld ON ld.shop_id = :sid AND ld.customer_id = c.id
WHERE c.shop_id = :sid AND c.created_at <= :at
) x WHERE x.quiet = 0 OR x.loyal = 0"""
    moments_sql = f"""
SELECT pd.customer_id, {_flag(current)}, {_flag(due)} FROM program_due pd
WHERE pd.shop_id = :sid AND pd.customer_id IN ({set_sql(store.engine.dialect.name)})"""
    count = "SELECT count(*) FROM customers WHERE shop_id = :sid AND created_at <= :at"
    params = {"sid": shop_id, "at": at, "ptag": program_tag, "ltag": loyalty_tag or ""}
    found = Candidates()
    with store.engine.connect() as conn:
        found.customers = int(conn.execute(text(count), params).scalar_one())
        if covered(conn, shop_id, loyalty_tag is not None):
            return _by_index(conn, params, found, loyalty_tag is not None)
        for cid, tagged, quiet, loyal in conn.execute(text(customers_sql), params):
            if not tagged:
                found.stale.add(cid)
            if not quiet:
                found.program.add(cid)
            if not loyal:
                found.loyalty.add(cid)
        maybe = {row[0] for row in conn.execute(text(_ROWS_OF), params)}
    if not maybe:
        return found
    _, found.unknown = plannable_among(store, shop_id, at, maybe)  # real orders only
    tagged_ids: set[str] = set()
    quiet_ids: set[str] = set()
    with store.engine.connect() as conn:
        rows = conn.execute(text(moments_sql), {**params, "ids": id_array(found.unknown)})
        for cid, tagged, quiet in rows:
            if tagged:
                tagged_ids.add(cid)
            if quiet:
                quiet_ids.add(cid)
    found.stale |= found.unknown - tagged_ids
    found.program |= found.unknown - quiet_ids
    return found


def plannable_among(
    store: Store, shop_id: int, at: int, ids: Collection[str]
) -> tuple[set[str], set[str]]:
    """Of ``ids``: those with their customer row by ``at``, and those plannable by ``at``
    (the first and those with orders, real ones, checkouts or browse events by then: a
    deleted customer keeps them). An index probe a table an id, which stops at its first row
    (a union of the rows read every order of every id: at 10M orders, 13.7k ids, 1.3 CPU-s
    against 0.06)."""
    if not ids:
        return set(), set()
    p = id_table(ids, store.engine.dialect.name, "cid")

    def has(table: Table, key: Any, when: Any, *more: Any) -> Any:
        """Whether ``table`` has a row of the id by ``at``: an index probe, its first row."""
        return exists().where(table.c.shop_id == shop_id, key == p.c.cid, when <= at, *more)

    known_now = has(customer_rows, customer_rows.c.id, customer_rows.c.created_at)
    query = select(p.c.cid, case((known_now, 1), else_=0)).where(
        or_(
            known_now,
            has(orders, orders.c.customer_id, orders.c.created_at, orders.c.test.is_(False)),
            has(checkouts, checkouts.c.customer_id, checkouts.c.created_at),
            has(browse_events, browse_events.c.customer_id, browse_events.c.occurred_at),
        )
    )
    known: set[str] = set()
    plannable: set[str] = set()
    with store.engine.connect() as conn:
        for cid, is_known in conn.execute(query):
            plannable.add(cid)
            if is_known:
                known.add(cid)
    return known, plannable


def delivered(store: Store, shop_id: int, keys: Collection[str]) -> dict[str, int]:
    """Key -> first delivery (micros) of the marketing rows of ``keys`` the outbox holds done:
    what the frequency cap counts (the plan's read of the outbox window reads the same)."""
    wanted = sorted(set(keys))
    found: dict[str, int] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            query = (
                select(outbox.c.idempotency_key, func.min(outbox.c.finished_at))
                .where(
                    outbox.c.shop_id == shop_id,
                    outbox.c.idempotency_key.in_(wanted[start : start + _CHUNK]),
                    outbox.c.status == "done",
                    outbox.c.marketing == 1,
                    outbox.c.finished_at.is_not(None),
                )
                .group_by(outbox.c.idempotency_key)
            )
            found.update((key, int(first)) for key, first in conn.execute(query))
    return found


def uncounted(store: Store, shop_id: int, keys: Collection[str]) -> set[str]:
    """The ``keys`` the outbox holds only rows the frequency cap never counts for: every
    row of the key is for a sink that does not contact the customer (``marketing`` 0),
    whether delivered yet or not."""
    wanted = sorted(set(keys))
    found: set[str] = set()
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            query = (
                select(outbox.c.idempotency_key)
                .where(
                    outbox.c.shop_id == shop_id,
                    outbox.c.idempotency_key.in_(wanted[start : start + _CHUNK]),
                )
                .group_by(outbox.c.idempotency_key)
                .having(func.max(outbox.c.marketing) == 0)
            )
            found.update(conn.execute(query).scalars())
    return found


def settle(
    store: Store,
    shop_id: int,
    notes: Sequence[Change],
    due: Mapping[str, int | None],
    derived_at: int,
    settings: str,
    programs: Mapping[str, int | None] | None = None,
    program_settings: str = "",
    made: int | None = None,
    cover: Cover | None = None,
) -> int:
    """Clear the consumed ``notes`` and record the loyalty ``due`` moments and the
    ``programs`` ones (customer -> micros or None) derived as of ``derived_at``, each with
    its settings tag, in one transaction (none for a customer erased since); returns the
    notes removed. ``made``: the shop's :func:`shop_made` when planned (a shop created
    again since settles nothing). ``cover``: what the plan recorded, for the shop's
    :data:`moment_cover` (None: a caller recording moments of its own choice lowers it)."""
    removed = 0
    with store.transaction() as conn:
        hold_moments(conn, shop_id)  # the tombstones read below stay final until the end
        same = select(shops.c.shop_id).where(shops.c.shop_id == shop_id)
        if made is not None:
            same = same.where(shops.c.created_at == made)
        held = conn.execute(same).first()
        conn.execute(
            delete(changed_customers).where(
                changed_customers.c.shop_id.not_in(select(shops.c.shop_id))
            )
        )
        if held is None:
            return 0  # the shop was removed since it was planned (and maybe created again)
        # A few statements, not one a note: the shop's writers wait for this transaction
        # (one a note took 80 s at 100,000 notes on a loaded machine, 0.8 ms each).
        # A note is the one read when its seq and its moment are: every write of a note
        # takes a new value of the store's sequence (a note removed since by another settle
        # and written again, even in the same microsecond, is a change this plan did not
        # read), but an older process left running after revision 0026 writes seq + 1, a
        # value the sequence hands out next: the moment tells those apart. A worker's clear
        # negates the moment (handled: this plan read it all the same).
        col = changed_customers.c
        stamp = case((col.changed_at < 0, -1 - col.changed_at), else_=col.changed_at)
        seen = sorted({(n.customer_id, n.seq, to_micros(n.changed_at)) for n in notes})
        for chunk in chunks(seen, _SETTLE_CHUNK):
            result = conn.execute(
                delete(changed_customers).where(
                    col.shop_id == shop_id,
                    col.customer_id.in_([cid for cid, _, _ in chunk]),  # (indexed)
                    tuple_(col.customer_id, col.seq, stamp).in_(chunk),
                )
            )
            removed += int(result.rowcount)
        programs = programs or {}
        erased = _erased_among(conn, shop_id, {*due, *programs})  # since planned: no moment
        due = {cid: when for cid, when in due.items() if cid not in erased}
        programs = {cid: when for cid, when in programs.items() if cid not in erased}
        _record(conn, loyalty_due, shop_id, due, derived_at, settings)
        _record(conn, program_due, shop_id, programs, derived_at, program_settings)
        settle_cover(conn, shop_id, cover)
    return removed


_SETTLE_CHUNK = 240
"""Notes a settle's statement clears (four parameters each: within SQLite's oldest limit)."""


def hold_moments(conn: Connection, shop_id: int) -> None:
    """Hold the shop's loyalty and program moments until the transaction ends: a settle
    takes it before it reads the tombstones and writes moments, an erasure or a shop's
    removal (whose deletes a moment written after them would outlive) right after the
    shop's writer lock, a worker's clearing of notes (which deletes moments) first. Sync
    pages and webhooks never wait for a settle."""
    _engine.exclusive(conn, f"moments:{shop_id}")


def _erased_among(conn: Any, shop_id: int, ids: Collection[str]) -> set[str]:
    """Which of ``ids`` an erasure tombstoned (an erasure removes their moments: none is
    written back for them)."""
    if not ids:
        return set()
    t = tombstones
    query = select(t.c.id).where(
        t.c.shop_id == shop_id,
        t.c.resource == "customers",
        t.c.reason == "redacted",
        in_set(t.c.id, ids, conn.dialect.name),
    )
    return set(conn.execute(query).scalars())


def _record(
    conn: Any,
    table: Table,
    shop_id: int,
    due: Mapping[str, int | None],
    derived_at: int,
    settings: str,
) -> None:
    """Upsert the ``due`` moments. A row derived as of a later moment keeps its derivation
    and tag but becomes due by ``derived_at``: a back-dated plan consumed its customer's
    change notes, which the later row never saw, and its own moment may rest on another
    policy. The next plan then plans the customer again."""
    rows = [
        {
            "shop_id": shop_id,
            "customer_id": cid,
            "due_at": when,
            "derived_at": derived_at,
            "settings": settings,
        }
        for cid, when in sorted(due.items())
    ]
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), _CHUNK):
        insert = dialect.insert(table)
        new, old = insert.excluded, table.c
        later = old.derived_at <= new.derived_at
        statement = insert.on_conflict_do_update(
            index_elements=[old.shop_id, old.customer_id],
            set_={
                "due_at": case(
                    (later, new.due_at),
                    (old.due_at <= new.derived_at, old.due_at),
                    else_=new.derived_at,
                ),
                "derived_at": case((later, new.derived_at), else_=old.derived_at),
                "settings": case((later, new.settings), else_=old.settings),
            },
        )
        conn.execute(statement, rows[start : start + _CHUNK])
