"""The work queue of ``shopsync worker``: one table, claimed under a lock, leased by time.

Why not a queue library: what the workers need is small (a handful of job kinds, one
running job per lock key, retry after a dead worker) and every piece of it is one SQL
statement in the store the workers already share, on both engines (docs/scaling.md weighs
procrastinate and pgqueuer against it).

- **Enqueue** inserts a ``queued`` row; a second enqueue of the same (kind, shop) while one
  is queued joins it (a unique partial index), so a webhook storm makes one job, not
  thousands. A scheduled job carries its ``slot`` (the period it is for): many workers
  making the same schedule insert it once.
- **Claim** runs in one transaction holding a store-wide advisory lock (:func:`exclusive`),
  so two workers never both see "no job with this lock key is running" and start two. It
  writes the row only as it read it: a late worker's finish or heartbeat (no claim lock)
  committed in between is not overwritten by a takeover.
  The claimed row becomes ``running``, ``locked_by`` the worker, ``locked_until`` a ttl
  ahead on the database's clock. Claims take milliseconds, so serialising them costs little
  (docs/scaling.md has the figures); the jobs themselves run in parallel.
- **Heartbeat** pushes ``locked_until`` ahead while the job runs; a worker that dies stops
  it, and once ``locked_until`` passes, the next claim takes the job over (a retry, counted
  in ``attempts``), or records it failed when it already died ``max_attempts`` times.
- **Settle**: ``done``, ``failed`` with the reason (never retried), or back to ``queued``
  with a delay for a retryable error. Every settle checks ``locked_by``: a worker whose job
  was taken over cannot settle it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, func, insert, literal, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store import _rows
from shopsync.store._engine import _db_now, begin_write, exclusive
from shopsync.store.schema import jobs

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "Job",
    "claim",
    "counts",
    "enqueue",
    "failed_jobs",
    "finish",
    "heartbeat",
    "leases_held",
    "prune",
    "record_refused",
    "release_for_retry",
    "running",
]

ACTIVE = ("queued", "running")
SECOND = 1_000_000


@dataclass(frozen=True)
class Job:
    """A claimed job: what to run, for which shop, on which attempt."""

    id: int
    kind: str
    shop: str
    payload: str
    attempts: int
    max_attempts: int
    worker: str


def enqueue(
    store: Store,
    kind: str,
    shop: str,
    payload: str,
    lock_key: str,
    *,
    slot: str | None = None,
    delay: float = 0.0,
    max_attempts: int = 5,
) -> tuple[int, bool]:
    """Queue a job; returns ``(id, created)``. An already queued job of the same kind and
    shop is returned instead (``created`` False), as is the job already made for ``slot``."""
    with store.transaction() as conn:
        now = _db_now(conn)
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(jobs)
            .values(
                kind=kind,
                shop=shop,
                payload=payload,
                status="queued",
                lock_key=lock_key,
                attempts=0,
                max_attempts=max_attempts,
                slot=slot,
                run_after=now + int(delay * SECOND),
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(jobs.c.id)
        )
        made = conn.execute(statement).scalar()
        if made is not None:
            return int(made), True
        same = (
            or_(jobs.c.status == "queued", jobs.c.slot == slot)
            if slot
            else (jobs.c.status == "queued")
        )
        found = conn.execute(
            select(jobs.c.id).where(jobs.c.kind == kind, jobs.c.shop == shop, same).limit(1)
        ).scalar()
        return int(found or 0), False


def record_refused(store: Store, kind: str, shop: str, payload: str, reason: str) -> int:
    """Record a job refused at the door (malformed), so that it shows in the queue's history."""
    with store.transaction() as conn:
        now = _db_now(conn)
        return int(
            conn.execute(
                insert(jobs)
                .values(
                    kind=kind[:32],
                    shop=shop[:255],
                    payload=payload[:10_000],
                    status="refused",
                    lock_key="",
                    attempts=0,
                    max_attempts=0,
                    run_after=now,
                    created_at=now,
                    finished_at=now,
                    error=reason,
                )
                .returning(jobs.c.id)
            ).scalar_one()
        )


def claim(store: Store, worker: str, ttl: float, kinds: tuple[str, ...] = ()) -> Job | None:
    """The next due job whose lock key no live job holds, now ``running`` for ``worker``.

    A ``running`` job whose ``locked_until`` passed belonged to a worker that died: it is
    taken over here, or recorded failed if it has used up its attempts."""
    while True:
        with store.transaction() as conn:
            begin_write(conn)
            exclusive(conn, "jobs/claim")
            row = conn.execute(_next(conn, kinds)).first()
            if row is None:
                return None
            now = int(row.now)
            # A worker's finish or heartbeat (which take no claim lock) may have committed
            # since the read: the row is written only as it was read, else read again.
            as_read = (
                jobs.c.id == row.id,
                jobs.c.status == row.status,
                jobs.c.attempts == row.attempts,
                jobs.c.locked_by.is_not_distinct_from(row.locked_by),
                jobs.c.locked_until.is_not_distinct_from(row.locked_until),
            )
            if row.status == "running" and row.attempts >= row.max_attempts:
                conn.execute(
                    update(jobs)
                    .where(*as_read)
                    .values(
                        status="failed",
                        finished_at=now,
                        locked_by=None,
                        error=f"the worker running it stopped {row.attempts} times "
                        f"(last: {row.locked_by}); not retried again",
                    )
                )
                continue
            taken = conn.execute(
                update(jobs)
                .where(*as_read)
                .values(
                    status="running",
                    attempts=jobs.c.attempts + 1,
                    locked_by=worker,
                    locked_until=now + int(ttl * SECOND),
                )
            )
            if not taken.rowcount:
                continue
            return Job(
                int(row.id),
                str(row.kind),
                str(row.shop),
                str(row.payload),
                int(row.attempts) + 1,
                int(row.max_attempts),
                worker,
            )


def _next(conn: Any, kinds: tuple[str, ...]) -> Any:
    """One statement (each round trip counts under load): a dead worker's job first (running
    rows are few), else the first due queued job whose key is free, with the database's
    clock as ``now``. The clock is an uncorrelated subquery, read once per branch as a value:
    compared to the volatile ``clock_timestamp()`` itself, no index could be used, and every
    claim read the whole table, history included (docs/scaling.md: the claim's figures)."""
    now = select(_db_now(conn)).scalar_subquery()
    other = jobs.alias("other")
    free = ~exists().where(
        other.c.status == "running",
        other.c.lock_key == jobs.c.lock_key,
        other.c.locked_until >= now,
        other.c.id != jobs.c.id,
    )
    running = (jobs.c.status == "running", jobs.c.locked_until < now)
    queued = (jobs.c.status == "queued", jobs.c.run_after <= now)
    narrow = (jobs.c.kind.in_(kinds),) if kinds else ()
    chosen = [
        select(jobs, now.label("now"), literal(rank).label("rank"))
        .where(*due, free, *narrow)
        .order_by(order, jobs.c.id)
        .limit(1)
        for rank, due, order in ((0, running, jobs.c.locked_until), (1, queued, jobs.c.run_after))
    ]
    both = union_all(*(query.subquery().select() for query in chosen)).subquery()
    return select(both).order_by(both.c.rank).limit(1)


def _mine(job: Job) -> Any:
    return and_(jobs.c.id == job.id, jobs.c.locked_by == job.worker, jobs.c.status == "running")


def heartbeat(store: Store, job: Job, ttl: float) -> bool:
    """Push the job's lock ``ttl`` seconds ahead; False if it is no longer this worker's."""
    with store.engine.connect() as conn, conn.begin():
        begin_write(conn)
        now = _db_now(conn)
        changed = conn.execute(
            update(jobs).where(_mine(job)).values(locked_until=now + int(ttl * SECOND))
        )
        return bool(changed.rowcount)


def finish(store: Store, job: Job, *, error: str | None = None) -> bool:
    """Record the job ``done`` (or ``failed`` with ``error``, for good); False if it was
    taken over meanwhile."""
    with store.engine.connect() as conn, conn.begin():
        begin_write(conn)
        now = _db_now(conn)
        changed = conn.execute(
            update(jobs)
            .where(_mine(job))
            .values(status="failed" if error else "done", finished_at=now, error=error)
        )
        return bool(changed.rowcount)


def release_for_retry(store: Store, job: Job, reason: str, delay: float) -> bool:
    """Put the job back in the queue ``delay`` seconds from now (a retryable failure); if a
    twin was queued meanwhile it does the same work, and this one is recorded superseded."""
    with store.engine.connect() as conn, conn.begin():
        begin_write(conn)
        exclusive(conn, "jobs/claim")
        now = _db_now(conn)
        twin = conn.execute(
            select(jobs.c.id).where(
                jobs.c.kind == job.kind, jobs.c.shop == job.shop, jobs.c.status == "queued"
            )
        ).scalar()
        if twin is not None:
            values: dict[str, Any] = {
                "status": "superseded",
                "finished_at": now,
                "error": f"{reason}; job {twin} does the same work",
            }
        elif job.attempts >= job.max_attempts:
            values = {"status": "failed", "finished_at": now, "error": f"{reason} (gave up)"}
        else:
            values = {
                "status": "queued",
                "run_after": now + int(delay * SECOND),
                "locked_by": None,
                "locked_until": None,
                "error": reason,
            }
        return bool(conn.execute(update(jobs).where(_mine(job)).values(**values)).rowcount)


def counts(store: Store) -> dict[str, int]:
    """How many jobs are in each status."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status))
        return {str(status): int(n) for status, n in rows}


def running(store: Store) -> list[tuple[int, str, str, str]]:
    """``(id, kind, shop, locked_by)`` of every running job (live or abandoned)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.kind, jobs.c.shop, jobs.c.locked_by).where(
                jobs.c.status == "running"
            )
        )
        return [(int(r.id), str(r.kind), str(r.shop), str(r.locked_by)) for r in rows]


def failed_jobs(store: Store) -> list[tuple[int, str, str, str, str]]:
    """``(id, kind, shop, status, error)`` of every failed or refused job, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.kind, jobs.c.shop, jobs.c.status, jobs.c.error)
            .where(jobs.c.status.in_(("failed", "refused")))
            .order_by(jobs.c.id)
        )
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def prune(store: Store, older_than: dt.timedelta) -> int:
    """Delete finished jobs older than ``older_than`` (failed ones are kept for a person)."""
    cutoff = _rows.to_micros(dt.datetime.now(dt.timezone.utc) - older_than)
    with store.transaction() as conn:
        result = conn.execute(
            delete(jobs).where(
                jobs.c.status.in_(("done", "superseded")), jobs.c.finished_at < cutoff
            )
        )
        return int(result.rowcount)


def leases_held(store: Store) -> list[tuple[str, str]]:
    """``(name, holder)`` of every lease row (expired or not): none once all work stopped."""
    from shopsync.store.schema import leases

    with store.engine.connect() as conn:
        rows = conn.execute(select(leases.c.name, leases.c.holder).order_by(leases.c.name))
        return [(str(r.name), str(r.holder)) for r in rows]
