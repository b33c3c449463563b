"""How the store holds its database: the engine, write transactions, migrations, locks and
leases.

Two writers of one store must never see a half-done state of each other, on either engine:

- **SQLite** takes the database's write lock at the start of every write transaction
  (``BEGIN IMMEDIATE``). Left to itself, pysqlite opens a transaction only at the first
  INSERT/UPDATE/DELETE, so the reads before it ran outside the transaction: two syncs both
  read "order 1 is new", and the second insert failed on the primary key. With the lock
  taken first, the second writer waits (``busy_timeout``) and reads what the first wrote.
  Readers are not blocked (WAL); writers of one file run one at a time, which SQLite does
  anyway. pysqlite also runs DDL outside any transaction, so the same explicit BEGIN is what
  makes a schema upgrade atomic there.
- **PostgreSQL** keeps its row-level concurrency; what must not interleave takes a
  transaction-scoped advisory lock (:func:`exclusive`): the migration of one schema, the
  writes of one shop, one customer's redemption. A transaction lock is released by commit,
  rollback or the death of the session, so a killed process never leaves it held.

A **lease** (:func:`acquire`) is the long-lived counterpart: a named row with a holder and an
expiry on the database's own clock, for work that spans many transactions (one apply per
store). A process that dies stops renewing it and it expires after its ``ttl``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    column,
    create_engine,
    delete,
    event,
    func,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from shopsync._urls import redact
from shopsync.errors import ConfigurationError, StoreError
from shopsync.store.schema import leases
from shopsync.store.urls import shown_url, url_secrets

__all__ = [
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "acquire",
    "begin_write",
    "current_revision",
    "default_holder",
    "describe",
    "exclusive",
    "head_revision",
    "migrating",
    "open_engine",
    "release",
    "renew",
    "upgrade",
]

MIGRATIONS = Path(__file__).parent / "migrations"
"""Alembic's scripts: one revision per schema change."""


# -- the engine --------------------------------------------------------------------------


def open_engine(url: str, *, echo: bool = False) -> Engine:
    """The engine of the store at ``url``; a URL that cannot be opened is a
    :class:`ConfigurationError` that shows no secret."""
    options: dict[str, Any] = {}
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") == "sqlite:"):
        # One in-memory database shared by every thread, instead of one per connection.
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    try:
        engine = create_engine(url, echo=echo, **options)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        detail = redact(str(exc), url_secrets(url))
        if isinstance(exc, ImportError) and url.startswith("postgres"):
            detail = _driver_hint(url, detail)
        raise ConfigurationError(f"cannot open store {shown_url(url)!r}: {detail}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_BUSY_SECONDS = 30.0
"""How long a SQLite connection waits for another's lock before "database is locked"."""


WAL_PAGES = 10_000
"""Pages the WAL grows to before a commit copies them into the database (SQLite's
``wal_autocheckpoint``; its default is 1,000, 4 MB). A bulk backfill of 1M orders spent a
sixth of its CPU in commits, most of it copying the same index pages again at each of
thousands of checkpoints: at 10,000 pages the reader stored 8% more orders per CPU-second
(benchmarks/shopify_read.py's work on one saved bulk file, issue 20). A killed process
loses nothing either way: a commit is in the WAL. With ``synchronous=NORMAL`` SQLite syncs
the WAL to disk only at a checkpoint, so a power cut or an operating-system crash may undo
the commits since the last one: up to 40 MB of WAL now, 4 MB before (the kernel's own
writeback usually writes them within about 30 s); it never corrupts the file."""

WAL_BYTES = 64 << 20
"""What a checkpointed WAL file is cut back to (``journal_size_limit``): without it the file
keeps the size of the largest run of commits between two checkpoints."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_SECONDS * 1000)}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch the file to WAL. SQLite refuses the switch at once, without the busy handler,
    while another connection holds a lock on a file not yet in WAL (processes creating one
    store at once: one of four failed in CI), so it is tried again for the busy timeout."""
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _driver_hint(url: str, detail: str) -> str:
    """What to install (or write) when the PostgreSQL driver cannot be imported: shopsync's
    ``postgres`` extra brings psycopg 3, which SQLAlchemy uses for ``postgresql+psycopg://``
    (a bare ``postgresql://`` asks for psycopg2, which shopsync does not install)."""
    hint = 'the PostgreSQL driver is not installed: pip install "shopsync[postgres]"'
    if not url.startswith("postgresql+psycopg:"):
        scheme = url.split("://", 1)[0]
        hint += f", and write the URL as postgresql+psycopg://... (not {scheme}://)"
    return f"{hint} ({detail})"


_MIGRATION = threading.Lock()
"""Alembic's ``context`` is a module-level proxy: two threads migrating at once would run
each other's environment. One migration per process at a time."""


def begin_write(conn: Connection) -> None:
    """Make ``conn``'s transaction a write transaction from its first statement (SQLite)."""
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def exclusive(conn: Connection, name: str) -> None:
    """Hold ``name`` until ``conn``'s transaction ends; others taking it wait.

    PostgreSQL: a transaction advisory lock on a hash of the name and the current schema (two
    schemas of one database do not wait for each other). SQLite: the write transaction
    (:func:`begin_write`) already excludes every other writer of the file.
    """
    if conn.dialect.name != "postgresql":
        begin_write(conn)
        return
    taken = held_locks(conn)
    if name in taken:  # taken already in this transaction (with a page's BEGIN)
        return
    conn.execute(text(LOCK_SQL.format(":n")), {"n": f"/shopsync/{name}"})
    if not conn.in_nested_transaction():  # a savepoint's rollback would release it
        taken.add(name)


LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || {}, 0))"
"""The statement :func:`exclusive` takes a lock by, ``{}`` its name's place."""


def held_locks(conn: Connection) -> set[str]:
    """The names :func:`exclusive` holds in ``conn``'s transaction (PostgreSQL); one that takes
    a lock outside it (:func:`.page_commit.lazy_commit`) adds its name here."""
    transaction = conn.get_transaction()
    held = conn.info.get("shopsync.locks")
    if held is None or held[0] is not transaction or transaction is None:
        held = conn.info["shopsync.locks"] = (transaction, set())
    names: set[str] = held[1]
    return names


class migrating:
    """One connection in one transaction that runs a schema upgrade, and only one at a time.

    Threads of this process wait for each other; other processes wait on the database (the
    SQLite write lock, a PostgreSQL advisory lock) and then see the schema the first one
    left, so they upgrade nothing twice. The DDL runs inside the transaction on both engines,
    so a process killed half-way leaves the schema as it was.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        _MIGRATION.acquire()
        try:
            conn = self.engine.connect()
            try:
                conn.begin()
                begin_write(conn)
                exclusive(conn, "schema")
            except BaseException:
                conn.close()
                raise
        except BaseException:
            _MIGRATION.release()
            raise
        self._conn = conn
        return conn

    def __exit__(self, kind: Any, value: Any, trace: Any) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if kind is None:
                conn.commit()
            else:
                conn.rollback()
        finally:
            conn.close()
            _MIGRATION.release()


def upgrade(engine: Engine, revision: str, version_table: str) -> None:
    """The body of :meth:`Store.migrate <shopsync.store.Store.migrate>`.

    A store already at the newest revision (every open but the first after an upgrade of
    shopsync) is left without loading Alembic: with Mako and Pygments it put some 15,000
    objects on the heap of every process that opens a store, which each full garbage
    collection then walks (``plan_customer``'s p99). A schema that is not current, or a
    version table that cannot be read, takes Alembic's path, with its lock and errors; a
    database that cannot be reached is the same StoreError, after one attempt."""
    if revision == "head" and _at_head(engine, version_table):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        with migrating(engine) as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            config.attributes["version_table"] = version_table
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise _cannot_open(engine, exc) from None
    except (CommandError, RevisionError) as exc:
        # a version row the scripts do not know: a newer shopsync upgraded the store
        where = shown_url(engine.url.render_as_string(hide_password=False))
        raise StoreError(
            f"cannot open store {where!r}: {exc} (the schema's recorded revision is not one "
            f"this version of shopsync knows, newest {head_revision()!r}: a newer shopsync "
            "may have upgraded the store; run that version)"
        ) from None


def _at_head(engine: Engine, version_table: str) -> bool:
    """Whether the schema is at :func:`scripts_head`, as Alembic records it (one row)."""
    head = scripts_head()
    if head is None:
        return False
    versions = table(version_table, column("version_num"))
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:  # no server: Alembic's path would wait out its timeout again
        raise _cannot_open(engine, exc) from None
    with conn:
        try:
            found = conn.execute(select(versions.c.version_num)).scalars().all()
        except SQLAlchemyError:  # no table yet: Alembic's path creates it
            return False
    return list(found) == [head]


def _cannot_open(engine: Engine, exc: SQLAlchemyError) -> StoreError:
    where = shown_url(engine.url.render_as_string(hide_password=False))
    return StoreError(f"cannot open store {where!r}: {describe(exc, engine.dialect.name)}")


@functools.cache
def scripts_head() -> str | None:
    """The newest revision of the migration scripts, read from their text (the
    ``revision``/``down_revision`` assignments) without Alembic; None unless they form one
    line of revisions with one head, which leaves the question to Alembic."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        try:
            found = dict(_REVISION.findall(script.read_text(encoding="utf-8")))
        except (OSError, UnicodeError):  # an editor's dangling lock link, another encoding
            return None
        try:
            revision, down = (ast.literal_eval(found[k]) for k in ("revision", "down_revision"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(down, str | None):
            return None  # a merge (a tuple of parents): Alembic's to read
        revisions.add(revision)
        downs.update([down] if down else [])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


_REVISION = re.compile(r"^(revision|down_revision)(?:\s*:[^=\n]*)?\s*=\s*(.+?)\s*$", re.M)
"""A script's module-level ``revision = "0007"`` (or annotated) and ``down_revision``."""


def current_revision(engine: Engine, version_table: str) -> str | None:
    """The schema revision the database is at, None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": version_table})
        return context.get_current_revision()


def head_revision() -> str:
    """The newest schema revision this version of shopsync knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def describe(exc: BaseException, dialect: str) -> str:
    """A store failure in words that fit the engine: a local SQLite file has no server."""
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = cause[0] if cause else type(exc).__name__
    if dialect == "sqlite":
        hint = (
            "check that the database file's directory exists and is writable, that the file "
            "is a shopsync SQLite store, and that no other program keeps it locked"
        )
    else:
        hint = "check the store URL, and that the database server is running and reachable"
    return f"{first} ({hint})"


# -- leases ------------------------------------------------------------------------------


class LeaseHeld(StoreError):
    """Someone else holds the lease; ``retryable``: it ends when they finish or die."""

    retryable = True


class LeaseLost(StoreError):
    """A lease this process held expired and was taken by another holder."""

    retryable = True


@dataclass
class Lease:
    """A held lease. :func:`renew` it more often than ``ttl``; :func:`release` it when done.
    ``renewed``: this process's monotonic clock just before the last taking or renewal;
    ``renewed_wall``: its wall clock then."""

    name: str
    holder: str
    ttl: float
    engine: Engine
    renewed: float = field(default_factory=time.monotonic)
    renewed_wall: float = field(default_factory=time.time)

    def renew(self) -> None:
        renew(self)

    def keep(self) -> None:
        """Renew unless a quarter of ``ttl`` has not passed since the last renewal: the lease
        is then certainly still this holder's (no one else can take it before it expires),
        and a loop over many short steps does not write the lease row at every step.

        Judged on both clocks: the monotonic one does not count a suspended machine (a paused
        VM, a laptop asleep) and the wall one jumps; either may say the time has come, and a
        wall clock gone back renews too (SQLite's lease clock is the wall clock)."""
        quarter = self.ttl / 4
        wall = time.time() - self.renewed_wall
        if time.monotonic() - self.renewed >= quarter or not 0 <= wall < quarter:
            renew(self)

    def release(self) -> None:
        release(self)


def _db_now(conn: Connection) -> ColumnElement[Any]:
    """The database's clock in microseconds: every process agrees with it, whatever its own
    clock says."""
    if conn.dialect.name == "postgresql":
        return func.cast(
            func.floor(func.extract("epoch", func.clock_timestamp()) * 1_000_000),
            postgresql.BIGINT,
        )
    return func.cast((func.julianday("now") - 2440587.5) * 86_400_000_000, sqlite.INTEGER)


def default_holder() -> str:
    """Who takes a lease: host, process, and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` was a process of this machine that no longer runs: its lease need
    not wait out the ttl (a crashed cron run is re-run at once). A reused pid reads as
    alive, which only means waiting for the ttl."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _try(engine: Engine, name: str, holder: str, ttl: float) -> tuple[bool, Any]:
    micros = int(ttl * 1_000_000)
    with engine.connect() as conn, conn.begin():
        begin_write(conn)
        now = _db_now(conn)
        current = conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar()
        if current is not None and current != holder and _dead_here(current):
            conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == current)
                .values(expires_at=0)
            )
        insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(leases)
            .values(name=name, holder=holder, acquired_at=now, expires_at=now + micros)
            .on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={"holder": holder, "acquired_at": now, "expires_at": now + micros},
                where=(leases.c.expires_at < now) | (leases.c.holder == holder),
            )
            .returning(leases.c.holder)
        )
        if conn.execute(statement).first() is not None:
            return True, None
        return False, conn.execute(
            select(leases.c.holder, (leases.c.expires_at - now).label("left")).where(
                leases.c.name == name
            )
        ).first()


def acquire(
    engine: Engine,
    name: str,
    *,
    holder: str | None = None,
    ttl: float = 300.0,
    wait: float = 0.0,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Lease:
    """Take the lease ``name`` for ``ttl`` seconds, waiting up to ``wait`` seconds for it.

    Taking it again with the same ``holder`` renews it; an expired lease goes to whoever asks
    next. Raises :class:`LeaseHeld` (retryable) if another holder keeps it past ``wait``.
    """
    if ttl <= 0:
        raise ValueError("a lease needs a positive ttl")
    holder = holder or default_holder()
    deadline = time.monotonic() + wait
    while True:
        asked, asked_wall = time.monotonic(), time.time()  # before the database's clock is read
        try:
            taken, other = _try(engine, name, holder, ttl)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot take lease {name!r}: {describe(exc, engine.dialect.name)}"
            ) from exc
        if taken:
            return Lease(name, holder, ttl, engine, asked, asked_wall)
        if time.monotonic() >= deadline:
            who, left = (other.holder, max(int(other.left), 0) / 1e6) if other else ("?", 0.0)
            raise LeaseHeld(
                f"lease {name!r} is held by {who} for up to {left:.0f} s more; "
                "try again when that run has finished"
            )
        sleep(min(poll, max(deadline - time.monotonic(), 0.0)))


def renew(lease: Lease) -> None:
    """Extend the lease by its ttl from now; raises :class:`LeaseLost` if it was taken."""
    asked, asked_wall = time.monotonic(), time.time()
    with lease.engine.connect() as conn, conn.begin():
        begin_write(conn)
        now = _db_now(conn)
        changed = conn.execute(
            update(leases)
            .where(leases.c.name == lease.name, leases.c.holder == lease.holder)
            .values(expires_at=now + int(lease.ttl * 1_000_000))
        )
        if not changed.rowcount:
            raise LeaseLost(
                f"lease {lease.name!r} expired and was taken by another holder; "
                "this run stops so that the two do not overlap"
            )
    lease.renewed, lease.renewed_wall = asked, asked_wall


def release(lease: Lease) -> None:
    """Give the lease up (a no-op if it was lost meanwhile)."""
    with lease.engine.connect() as conn, conn.begin():
        begin_write(conn)
        conn.execute(
            delete(leases).where(leases.c.name == lease.name, leases.c.holder == lease.holder)
        )
