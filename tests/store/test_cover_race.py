"""The moment cover under two processes at once (issue 19, item 1/2).

Process A (a spawned child) makes an incremental plan with the pass over every customer and
applies it, so its settle raises the shop's ``moment_cover``; this process (B) writes at one
exact point of A's: after A's plan read its rows, or after the settle's check, before its
raise. A stops at the point by a cursor hook and goes on by a queue; B's write is a sync
page or a webhook with a new customer, an order of a customer A planned, a new customer whose
note another worker clears (:func:`changes.clear_changes`), an order of a customer A planned
that such a worker plans alone, applies and clears, or an erasure. When B waits for a
lock A holds (SQLite's write lock: A's settle began with ``BEGIN IMMEDIATE``; PostgreSQL's
moments lock, or a row A wrote), A goes on and B lands after A's commit.

Then: the cover is raised only if every customer has both moments or a change note (the
erased aside), and every customer a full plan gives an action the outbox does not hold yet
is among the next incremental plan's customers (now, and once the replenishment moments
come). A cover left raised over a customer with neither would hide that customer from every
later incremental plan; so would a moment A derived before the customer's order, written
after a worker cleared that order's note.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import sqlite3
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from shopsync.incremental import IncrementalPlan
from shopsync.models import Customer
from shopsync.outbox import apply
from shopsync.planning import plan, plan_customer
from shopsync.sinks import JsonLines
from shopsync.store import Store, _rows, changes
from shopsync.store.incremental import lower_cover, recorded_keys
from shopsync.testing.generator import generate_shop
from tests.core.retention_helpers import customer, order
from tests.store.test_moment_cover import DAY, HOUR, POLICY, T0, _spied_plan

P, SHOP = "shopify", "race.example"
LATE = "late-one"
"""The customer B writes: a full plan gives it a review request at once."""

CASES = [("planned", op) for op in ("page", "webhook", "order", "handled", "erase")]
CASES += [("checked", "clear")]
"""(A's point, B's write): one case a write kind, between A's plan read and its settle, and a
clear at A's raise; each fails under some one-line change of the store (CHANGELOG, issue 19).
A write at the settle's other points waits for A's commit, or is a note its check passes.
Cut: a worker clearing a new customer's note between A's read and its settle (the note stays,
handled: it fails under what "handled" fails under, the worker's clear deleting it)."""


_RAISE = ("UPDATE MOMENT_COVER", "INSERT INTO MOMENT_COVER")
"""How settle_cover's raise begins (the only write of the cover A makes, loyalty on)."""


def _serve(jobs: Any, go: Any, out: Any) -> None:  # pragma: no cover - the spawned child
    """Process A: run each job of ``jobs`` until None (one child for every case: its imports
    cost about 2 s of CPU, more than a case's own work)."""
    for url, point, at, root in iter(jobs.get, None):
        _process_a(url, point, at, root, go, out)


def _process_a(
    url: str, point: str, at: dt.datetime, root: str, go: Any, out: Any
) -> None:  # pragma: no cover - runs in the spawned child
    """Plan incrementally at ``at`` and apply, stopping once at ``point`` until ``go``."""
    try:
        store = Store(url, migrate=False)
        stopped: list[str] = []

        def stop(name: str) -> None:
            if name == point and not stopped:
                stopped.append(name)
                out.put(("reached", name))
                go.get(timeout=120)

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith(_RAISE):
                stop("checked")  # its check found every customer covered: the raise

        event.listen(store.engine, "before_cursor_execute", before)
        planned, found = _spied_plan(store, at, POLICY, platform=P, shop=SHOP)
        assert isinstance(planned, IncrementalPlan)
        stop("planned")
        apply(planned, store, [JsonLines("out.jsonl", root=root)], now=at)
        store.close()
        out.put(("done", [f.by_index for f in found], sorted(planned.customers), stopped))
    except BaseException:
        out.put(("error", traceback.format_exc()))


class _Child:
    """Process A, spawned once for the module; a failed case starts another."""

    def __init__(self) -> None:
        self.process: Any = None

    def start(self) -> None:
        spawn = mp.get_context("spawn")  # not fork: Polars' thread pool does not survive a fork
        self.jobs, self.go, self.out = spawn.Queue(), spawn.Queue(), spawn.Queue()
        self.process = spawn.Process(target=_serve, args=(self.jobs, self.go, self.out))
        self.process.start()

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.jobs.put(None)
        self.process.join(120)
        self.process = None


@pytest.fixture(scope="module")
def child() -> Iterator[_Child]:
    made = _Child()
    yield made
    made.stop()


def _shop(store: Store) -> int:
    state = generate_shop(platform=P, shop=SHOP, seed=5, customers=10, orders=30, end=T0, years=1)
    store.upsert([*state.products.values(), *state.customers.values(), *state.orders.values()])
    return store.shop_id(P, SHOP)


def _late() -> list[Any]:
    """A customer of long ago with an order a month old: its review request is due."""
    return [
        customer(LATE, created=T0 - 100 * DAY).model_copy(update={"shop": SHOP}),
        order("late-order", LATE, T0 - 30 * DAY, ptype="Coffee").model_copy(update={"shop": SHOP}),
    ]


def _write(store: Store, op: str, victim: str, root: Path) -> None:
    """B's write (this process)."""
    if op == "page":  # a sync page: the upsert notes what it changed
        store.upsert(_late())
    elif op == "webhook":  # what a delivery writes in its transaction (webhooks.handle)
        with store.transaction() as tx:
            store.upsert(_late(), conn=tx, same_stamp=False)
            changes.mark_changed(store, tx, P, SHOP, [LATE], T0)
    elif op == "order":  # a customer A planned from its note changes again: noted again
        made = order("again", victim, T0 - 30 * DAY).model_copy(update={"shop": SHOP})
        store.upsert([made])
    elif op == "handled":  # the victim orders: a worker plans it alone, applies, clears
        made = order("handled", victim, T0 + 2 * HOUR, ptype="Coffee")
        store.upsert([made.model_copy(update={"shop": SHOP})])
        alone = plan_customer(store, POLICY, T0 + 2 * HOUR, P, SHOP, victim)
        apply(alone.actions, store, [JsonLines("out.jsonl", root=root)], now=T0 + 2 * HOUR)
        mine = [c for c in changes.changed(store, limit=10**6) if c.customer_id == victim]
        assert len(mine) == 1 and changes.clear_changes(store, mine) == 1
    elif op == "clear":  # a worker clears the new customer's note, recording no moment
        store.upsert(_late())
        mine = [c for c in changes.changed(store, limit=10**6) if c.customer_id == LATE]
        assert len(mine) == 1 and changes.clear_changes(store, mine) == 1
    else:
        store.redact_customer(P, SHOP, victim)


def _far_off(store: Store, shop_id: int) -> str:
    """A customer whose moments are both not due by +40 days, noted (renamed) for A to plan."""
    quiet = "SELECT customer_id FROM {} WHERE shop_id = :s AND (due_at IS NULL OR due_at > :at)"
    at = _rows.to_micros(T0 + 40 * DAY)
    with store.engine.connect() as conn:
        found = [
            set(conn.execute(text(quiet.format(table)), {"s": shop_id, "at": at}).scalars())
            for table in ("program_due", "loyalty_due")
        ]
    who = min(found[0] & found[1])
    held = store.get(Customer, P, SHOP, who)
    assert held is not None
    store.upsert([held.model_copy(update={"first_name": "Renamed", "updated_at": T0 + HOUR})])
    return who


def _beside(store: Store, work: Any, may_wait: bool) -> tuple[threading.Thread, list[Any], bool]:
    """Run ``work`` in a thread; return once it is done or, when ``may_wait``, once it waits
    for a lock A holds: PostgreSQL says so (``pg_stat_activity``); on SQLite, its
    ``BEGIN IMMEDIATE`` (A's settle holds the write lock from its own)."""
    errors: list[Any] = []
    state: dict[str, Any] = {"pid": None, "begun": False}
    sqlite = store.engine.dialect.name == "sqlite"

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # shown by the caller
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() != worker.ident:
            return
        if sqlite:
            state["begun"] = state["begun"] or statement.startswith("BEGIN IMMEDIATE")
        else:
            state["pid"] = int(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(store.engine, "before_cursor_execute", before)
    monitor = None if sqlite else create_engine(store.engine.url, isolation_level="AUTOCOMMIT")
    waited = False
    try:
        worker.start()
        while worker.is_alive() and not waited:
            worker.join(0.005)
            if not may_wait or not worker.is_alive():
                continue
            if sqlite:
                waited = bool(state["begun"])
            elif state["pid"] is not None and monitor is not None:
                with monitor.connect() as conn:
                    kind = conn.execute(
                        text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                        {"p": state["pid"]},
                    ).scalar()
                waited = kind == "Lock"
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        if monitor is not None:
            monitor.dispose()
    return worker, errors, waited


def _write_locked(store: Store) -> bool:
    """SQLite: whether another connection holds the file's write lock (asked without waiting)."""
    probe = sqlite3.connect(str(store.engine.url.database), timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc), exc
        return True
    finally:
        probe.close()


def _cover(store: Store, shop_id: int) -> tuple[bool, bool] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            text("SELECT programs, loyalty FROM moment_cover WHERE shop_id = :s"), {"s": shop_id}
        ).first()
    return None if row is None else (bool(row[0]), bool(row[1]))


def _unpromised(store: Store, shop_id: int) -> tuple[set[str], set[str]]:
    """The customers the cover promises a program (a loyalty) moment or a note for, and
    which have neither: read here table by table, not by the store's own check."""
    held = _cover(store, shop_id)
    with store.engine.connect() as conn:

        def ids(sql: str) -> set[str]:
            return {r[0] for r in conn.execute(text(sql), {"s": shop_id}) if r[0] is not None}

        people = ids("SELECT id FROM customers WHERE shop_id = :s")
        anyone = people | ids("SELECT customer_id FROM orders WHERE shop_id = :s AND NOT test")
        anyone |= ids("SELECT customer_id FROM checkouts WHERE shop_id = :s")
        anyone |= ids("SELECT customer_id FROM browse_events WHERE shop_id = :s")
        erased = ids(
            "SELECT id FROM tombstones WHERE shop_id = :s AND resource = 'customers'"
            " AND reason = 'redacted'"
        )
        noted = ids("SELECT customer_id FROM changed_customers WHERE shop_id = :s")
        programs = (
            anyone - erased - noted - ids("SELECT customer_id FROM program_due WHERE shop_id = :s")
        )
        loyalty = (
            people - erased - noted - ids("SELECT customer_id FROM loyalty_due WHERE shop_id = :s")
        )
    return (
        programs if held is not None and held[0] else set(),
        loyalty if held is not None and held[1] else set(),
    )


@pytest.mark.parametrize(("point", "op"), CASES)
def test_a_write_at_any_point_of_a_settle_leaves_no_customer_missed(
    store: Store, store_url: str, tmp_path: Path, child: _Child, point: str, op: str
) -> None:
    shop_id = _shop(store)
    # a settled plan raised the cover, a worker's clearing lowered it
    first = plan(store, POLICY, T0, platform=P, shop=SHOP, only_changed=True)
    apply(first, store, [JsonLines("out.jsonl", root=tmp_path)], now=T0)
    assert _cover(store, shop_id) == (True, True)
    with store.transaction() as conn:
        lower_cover(conn, [shop_id])
    at = T0 + HOUR
    noted = sorted(c.customer_id for c in changes.changed(store, limit=10**6))
    assert noted  # (a delivery that starts a clock notes its customer)
    victim = noted[0]  # A plans it from its note
    if op == "handled":
        victim = _far_off(store, shop_id)
    store.engine.dispose()
    if child.process is None:
        child.start()
    child.jobs.put((store_url, point, at, str(tmp_path)))
    try:
        first_word = child.out.get(timeout=120)
        assert first_word == ("reached", point), first_word
        if store.engine.dialect.name == "sqlite":  # A's settle holds the write lock from its start
            assert _write_locked(store) == (point != "planned")
        worker, errors, waited = _beside(
            store, lambda: _write(store, op, victim, tmp_path), may_wait=point != "planned"
        )
        child.go.put(True)
        worker.join(120)
        assert not worker.is_alive() and not errors, errors
        done = child.out.get(timeout=120)
        assert done[0] == "done", done[1]
    except BaseException:
        child.stop(kill=True)  # wherever it stands: the next case starts another
        raise
    assert done[1] == [False], "A did not make the pass over every customer"
    assert op != "handled" or victim in done[2]  # A read it before its order
    # SQLite: A's settle holds the write lock; PostgreSQL: B waits for a note row A removed,
    # or the moments (an erasure, a clear); else B's commit lands inside A's settle
    sqlite = store.engine.dialect.name == "sqlite"
    assert waited == (point != "planned" and (sqlite or op in ("order", "erase", "clear")))
    # the cover's promise, and the raise (lowered: the new customer has neither)
    assert _unpromised(store, shop_id) == (set(), set()), _cover(store, shop_id)
    assert _cover(store, shop_id) == ((False, False) if op == "clear" else (True, True))
    if op == "erase":  # no moment written back for the erased
        with store.engine.connect() as conn:
            for table in ("program_due", "loyalty_due"):
                sql = f"SELECT count(*) FROM {table} WHERE shop_id = :s AND customer_id = :c"
                assert conn.execute(text(sql), {"s": shop_id, "c": victim}).scalar() == 0
    # no customer missed: now, and when the replenishment moments come
    days = (1, 25, 30, 40) if op == "handled" else (40,)
    for when in (at, *(at + d * DAY for d in days)):
        inc = plan(store, POLICY, when, platform=P, shop=SHOP, only_changed=True)
        assert isinstance(inc, IncrementalPlan)
        full = plan(store, POLICY, when, platform=P, shop=SHOP, update_ledger=False)
        held = recorded_keys(store, shop_id, [a.idempotency_key for a in full])
        wanted = {a.customer_id for a in full if a.idempotency_key not in held}
        assert wanted <= set(inc.customers), (wanted - set(inc.customers), _cover(store, shop_id))
        theirs = sorted(a.idempotency_key for a in full if a.customer_id in inc.customers)
        assert sorted(inc.keys) == theirs  # the full plan restricted to them
        if op in ("page", "webhook", "clear") and when == at:
            assert LATE in wanted  # a review request: what makes the check above bite
        if op == "order" and when == at:
            assert victim in inc.customers  # changed since A read it: planned again
        if op == "handled" and when == at + 25 * DAY:
            assert victim in wanted  # the order's review request: what makes this bite
        assert victim not in wanted or op != "erase"
