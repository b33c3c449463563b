"""Whether a shop's moments cover every customer (issue 19, item 4; table ``moment_cover``,
revision 0025).

An incremental plan finds the customers whose program or loyalty moment is due or stale by
the moments' indexes (:func:`shopsync.store.incremental.candidates`); a customer without a
moment at all only a pass over every customer finds. Every write path notes the customers
it stores, and a settle records a moment for each customer whose note it consumes, so once
every customer has both moments or a note, that stays so, and the pass can be skipped:

- :func:`covered`: whether the shop's row says so;
- :func:`settle_cover`: in a settle's transaction, after a plan that made the pass, raise it
  when the store shows it holds (unless it was lowered since the settle read it); lower it
  when the settle records no loyalty moments (or the caller's own moments);
- :func:`lower_cover`: notes cleared without a settle (:func:`shopsync.store.changes.
  clear_changes`, which deletes those customers' moments too), or a settle that records no
  loyalty moments. The next plan makes the pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store.schema import moment_cover

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["Cover", "covered", "lower_cover", "settle_cover"]


@dataclass(frozen=True)
class Cover:
    """What a settle tells :data:`moment_cover` (see :func:`shopsync.store.incremental.settle`)."""

    scanned: bool
    """The plan made the pass over every customer (its candidates not ``by_index``)."""
    loyalty: bool
    """The plan recorded a loyalty moment for every customer whose note it consumed."""


def covered(conn: Connection, shop_id: int, loyalty: bool) -> bool:
    """Whether every customer of the shop has a program moment (and a loyalty one when
    ``loyalty``) or a change note: see :data:`shopsync.store.schema.moment_cover`."""
    row = conn.execute(
        select(moment_cover.c.programs, moment_cover.c.loyalty).where(
            moment_cover.c.shop_id == shop_id
        )
    ).first()
    return row is not None and bool(row[0]) and (bool(row[1]) or not loyalty)


def settle_cover(conn: Connection, shop_id: int, cover: Cover | None) -> None:
    """Lower the shop's cover when this settle may leave a customer without a moment or a
    note; raise it after a plan's pass over every customer when the store shows it holds."""
    if cover is None or not cover.loyalty:
        lower_cover(conn, [shop_id], programs=cover is None)
    if cover is None or not cover.scanned:
        return
    held = conn.execute(
        select(moment_cover.c.programs, moment_cover.c.loyalty, moment_cover.c.lowered).where(
            moment_cover.c.shop_id == shop_id
        )
    ).first()
    if held is not None and held[0] and (held[1] or not cover.loyalty):
        return
    params = {"sid": shop_id}
    whole = conn.execute(text(_UNCOVERED.format(table="program_due", ids=_ALL_IDS)), params)
    programs = whole.first() is None
    loyal = cover.loyalty and programs
    if loyal:
        ids = "SELECT id AS cid FROM customers WHERE shop_id = :sid"
        rows = conn.execute(text(_UNCOVERED.format(table="loyalty_due", ids=ids)), params)
        loyal = rows.first() is None
    if not programs:
        return
    values = {"programs": True, "loyalty": loyal}
    if held is None:  # none yet: a concurrent lowering inserted one, which stands
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(moment_cover).values(shop_id=shop_id, lowered=0, **values)
        conn.execute(insert.on_conflict_do_nothing(index_elements=[moment_cover.c.shop_id]))
    else:  # unless lowered since it was read (a note cleared meanwhile)
        conn.execute(
            moment_cover.update()
            .where(moment_cover.c.shop_id == shop_id, moment_cover.c.lowered == held[2])
            .values(**values)
        )


_ALL_IDS = """
SELECT id AS cid FROM customers WHERE shop_id = :sid
UNION SELECT customer_id FROM orders WHERE shop_id = :sid AND customer_id IS NOT NULL
  AND NOT test
UNION SELECT customer_id FROM checkouts WHERE shop_id = :sid AND customer_id IS NOT NULL
UNION SELECT customer_id FROM browse_events WHERE shop_id = :sid AND customer_id IS NOT NULL"""
"""Every customer a program can plan for, at any moment (what
:func:`~shopsync.store.incremental.plannable_among` keeps, without ``at``)."""

_UNCOVERED = """
SELECT p.cid FROM ({ids}) p
WHERE NOT EXISTS (SELECT 1 FROM {table} m WHERE m.shop_id = :sid AND m.customer_id = p.cid)
  AND NOT EXISTS (SELECT 1 FROM changed_customers n WHERE n.shop_id = :sid
    AND n.customer_id = p.cid)
  AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.shop_id = :sid
    AND t.resource = 'customers' AND t.reason = 'redacted' AND t.id = p.cid)
LIMIT 1"""
"""A customer without a moment in ``table`` nor a change note, the erased aside (who get
nothing): one found, the shop's moments do not cover it."""


def lower_cover(conn: Connection, shop_ids: Iterable[int], *, programs: bool = True) -> None:
    """In the caller's transaction: the shops' moments may no longer cover every customer
    (loyalty's always; the programs' too when ``programs``), until a settle raises it again."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    for shop_id in sorted(set(shop_ids)):
        insert = dialect.insert(moment_cover).values(
            shop_id=shop_id, programs=False, loyalty=False, lowered=1
        )
        old = moment_cover.c
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[old.shop_id],
                set_={
                    "programs": False if programs else old.programs,
                    "loyalty": False,
                    "lowered": old.lowered + 1,
                },
            )
        )
