"""``shopsync worker``: sync, plan and apply the shops of a ``shopsync.toml`` on a schedule,
shared by any number of worker processes through the store's PostgreSQL.

Each worker makes the schedule (a sync of every shop each ``sync_every`` minutes; loyalty,
plan and apply once a day at the shop's local ``apply_hour``; the re-plan of customers that
webhooks changed) as jobs in the store's queue (:mod:`shopsync.store.jobs`): the same period
of the same shop is one job whoever makes it. Then it claims jobs one at a time and runs
them. One shop's sync never runs twice at once and all applies of a store run one at a time
(the claim's lock key, and the store's ``apply`` lease inside :func:`shopsync.outbox.apply`).

A worker that dies stops its heartbeat; once its job's lock has lapsed (``job_ttl``) another
worker takes the job over. A worker that cannot renew its lock for most of ``job_ttl``
(its database connection gone, its process paused) stops itself before the lock lapses
(``fence``), so a job it was running is never run by two workers at once.

Bad jobs do not loop: a shop no longer configured, refused credentials, or a payload that
does not parse fail once and are recorded with the reason (``status = 'failed'``). Retryable
errors (rate limits, a platform 5xx, a store that went away) are retried with a growing
delay up to ``max_attempts`` times.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from shopsync._renamed import old_name
from shopsync.config import JOB_KINDS, Config, ShopConfig
from shopsync.errors import AuthenticationError, ConfigurationError, ShopSyncError, StoreError
from shopsync.store import Store, jobs
from shopsync.store.errors import DatabaseError as SQLAlchemyError  # issue 18: no SQLAlchemy here
from shopsync.store.jobs import Job
from shopsync.store.leases import default_holder

__all__ = ["KINDS", "JobRefused", "WorkerResult", "enqueue", "enqueue_on_result", "run", "tick"]

log = logging.getLogger("shopsync.worker")

KINDS = JOB_KINDS
"""The job kinds (:data:`shopsync.config.JOB_KINDS`)."""


KEEP_FINISHED = dt.timedelta(days=7)
"""How long finished jobs stay in the table (failed and refused ones stay until removed)."""


class JobRefused(ConfigurationError):
    """A job that cannot be queued as given (unknown kind or shop, malformed payload)."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncPayload(_Payload):
    full: bool = False
    """Read everything, ignoring the checkpoints."""


_PAYLOADS: dict[str, type[_Payload]] = {"sync": SyncPayload, "apply": _Payload, "changes": _Payload}


def _lock_key(kind: str, shop: str) -> str:
    # A store has one outbox and one apply lease: its applies run one at a time.
    return f"sync:{shop}" if kind == "sync" else "apply"


def _parse(kind: str, payload: str) -> _Payload:
    if kind not in _PAYLOADS:
        raise JobRefused(f"unknown job kind {kind!r} (kinds: {', '.join(KINDS)})")
    try:
        return _PAYLOADS[kind].model_validate_json(payload or "{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        raise JobRefused(f"malformed {kind} job payload: {problems}") from None


def enqueue(
    store: Store,
    kind: str,
    shop: str,
    payload: Mapping[str, Any] | str | None = None,
    *,
    config: Config | None = None,
    delay: float = 0.0,
) -> tuple[int, bool]:
    """Queue a job for the workers; returns ``(job id, created)`` (False: it joined a job
    already queued for that shop). A job that cannot run (unknown kind, a shop ``config``
    does not have, a malformed payload) is recorded as refused and raises :class:`JobRefused`."""
    text = payload if isinstance(payload, str) else json.dumps(dict(payload or {}))
    try:
        _parse(kind, text)
        if config is not None and shop not in config.shops:
            listed = ", ".join(sorted(config.shops)) or "none"
            raise JobRefused(f"no shop named {shop!r} is configured (configured: {listed})")
    except JobRefused as exc:
        jobs.record_refused(store, kind, shop, text, str(exc))
        raise
    attempts = config.worker.max_attempts if config is not None else 5
    return jobs.enqueue(
        store, kind, shop, text, _lock_key(kind, shop), delay=delay, max_attempts=attempts
    )


def enqueue_on_result(store: Store, config: Config) -> Callable[[Any], None]:
    """An ``on_result`` for :func:`shopsync.webhooks.wsgi_app`: a delivery that changed
    customers queues a ``changes`` job for its shop (one per shop while queued), so the
    request only verifies and writes, and planning and sending run on a worker."""
    names = _names(config)

    def on_result(result: Any) -> None:
        name = names.get(result.shop)
        if result.status == "applied" and result.customer_ids and name is not None:
            try:
                enqueue(store, "changes", name, config=config)
            except (SQLAlchemyError, StoreError) as exc:
                # The delivery is stored with its notes; the next schedule tick queues them.
                log.warning("changes of %s not queued (the schedule will): %s", name, exc)

    return on_result


def _names(config: Config) -> dict[str, str]:
    """The configured name of each shop, by the shop's own name on its platform."""
    names = {}
    for name, shop in config.shops.items():
        try:
            adapter = shop.connect()  # builds the client only; no request is sent
        except ShopSyncError:
            continue  # a missing credential: this shop's jobs fail and say so
        names[adapter.shop] = name
        adapter.close()
    return names


# -- schedule ----------------------------------------------------------------------------


def tick(store: Store, config: Config, at: dt.datetime) -> list[int]:
    """Make the jobs the schedule asks for at ``at`` (idempotent: many workers, one job per
    period); returns the ids of the jobs made."""
    made = []
    settings = config.worker
    for name in sorted(config.shops):
        own = settings.shops.get(name)
        every = (own.sync_every if own and own.sync_every else settings.sync_every) * 60
        period = math.floor(at.timestamp() / every)
        made.append(_scheduled(store, config, "sync", name, f"every {every:g}s #{period}"))
        zone = ZoneInfo((own.timezone if own and own.timezone else None) or settings.timezone)
        local = at.astimezone(zone)
        hour = own.apply_hour if own and own.apply_hour is not None else settings.apply_hour
        if local.hour >= hour:
            made.append(_scheduled(store, config, "apply", name, f"day {local.date()}"))
    return [job for job in made if job]


def _scheduled(store: Store, config: Config, kind: str, name: str, slot: str) -> int:
    job, created = jobs.enqueue(
        store,
        kind,
        name,
        "{}",
        _lock_key(kind, name),
        slot=slot,
        max_attempts=config.worker.max_attempts,
    )
    return job if created else 0


def _changed_shops(store: Store, config: Config, names: Mapping[str, str]) -> None:
    """Queue a ``changes`` job for each shop that has customers noted by webhook intake."""
    from shopsync.store.changes import changed

    for shop in sorted({change.shop for change in changed(store)}):
        if shop in names:
            jobs.enqueue(
                store,
                "changes",
                names[shop],
                "{}",
                "apply",
                max_attempts=config.worker.max_attempts,
            )


# -- running -----------------------------------------------------------------------------


@dataclass
class WorkerResult:
    """What one :func:`run` did."""

    worker: str
    done: int = 0
    failed: int = 0
    retried: int = 0
    errors: list[str] = field(default_factory=list)


class _Heartbeat:
    """Keeps a running job's lock ahead of the clock, and fences the worker that cannot.

    A watchdog apart from the beat: a renewal that hangs (a network partition, a row lock,
    SQLite's busy wait) neither succeeds nor fails, so only the time since the last success
    can tell that the lock is about to lapse."""

    def __init__(self, store: Store, job: Job, ttl: float, fence: bool) -> None:
        self.store, self.job, self.ttl, self.fence = store, job, ttl, fence
        self.lost = False
        self._last = time.monotonic()
        self._error = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._beat, daemon=True, name=f"job-{job.id}"),
            threading.Thread(target=self._watch, daemon=True, name=f"job-{job.id}-watch"),
        ]

    def __enter__(self) -> _Heartbeat:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.ttl)  # a beat stuck in the store is left behind (daemon)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 5):
            try:
                if not jobs.heartbeat(self.store, self.job, self.ttl):
                    self._lose("another worker took it over")
                    return
                self._last = time.monotonic()
            except (SQLAlchemyError, StoreError) as exc:
                self._error = type(exc).__name__  # the pool reconnects on the next beat

    def _watch(self) -> None:
        while not self._stop.wait(self.ttl / 10):
            silent = time.monotonic() - self._last
            if silent > self.ttl * 0.6:
                cause = self._error or "the store did not answer"
                self._lose(f"its lock could not be renewed for {silent:.1f} s ({cause})")
                return

    def _lose(self, reason: str) -> None:
        with self._lock:
            if self.lost or self._stop.is_set():
                return
            self.lost = True
        log.error("job %s (%s %s): %s", self.job.id, self.job.kind, self.job.shop, reason)
        if self.fence:  # stop before the lock lapses: never two workers on one job
            logging.shutdown()
            os._exit(75)


def run(
    config: Config,
    store: Store | None = None,
    *,
    worker: str | None = None,
    stop: threading.Event | None = None,
    until_idle: bool = False,
    schedule: bool = True,
    poll: float = 1.0,
    tick_every: float = 30.0,
    fence: bool = True,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> WorkerResult:
    """Run jobs until ``stop`` is set (or, with ``until_idle``, until none is due).

    ``store`` defaults to the configuration's. ``schedule`` makes the scheduled jobs every
    ``tick_every`` seconds. ``fence``: exit the process (status 75) when a job's lock cannot
    be kept (see the module docstring); pass False only where one worker runs.
    """
    own = store is None
    store = store or Store(config.store_url())
    stop = stop or threading.Event()
    report = WorkerResult(worker or default_holder())
    if store.engine.dialect.name == "sqlite":
        log.warning(
            "the store is SQLite: this worker is single-process (run one worker per store, or "
            "use PostgreSQL to share the work between workers)"
        )
    names = _names(config)
    tick_every = min(tick_every, config.worker.sync_every * 30)  # twice per sync period
    next_tick = 0.0
    try:
        while not stop.is_set():
            if schedule and time.monotonic() >= next_tick:
                _guarded(lambda: _schedule(store, config, clock(), names))
                next_tick = time.monotonic() + tick_every
            job = _guarded(lambda: jobs.claim(store, report.worker, config.worker.job_ttl))
            if job is None:
                if until_idle:
                    break
                stop.wait(poll)
                continue
            _run_job(store, config, job, report, fence, clock)
    finally:
        if own:
            store.close()
    return report


def _schedule(store: Store, config: Config, at: dt.datetime, names: Mapping[str, str]) -> None:
    tick(store, config, at)
    _changed_shops(store, config, names)
    jobs.prune(store, KEEP_FINISHED)


def _guarded(step: Callable[[], Any]) -> Any:
    """Run a queue step; a store that went away is waited out (the next loop tries again)."""
    try:
        return step()
    except (SQLAlchemyError, StoreError) as exc:
        log.warning("store unavailable, trying again: %s", exc)
        time.sleep(0.5)
        return None


def _run_job(
    store: Store,
    config: Config,
    job: Job,
    report: WorkerResult,
    fence: bool,
    clock: Callable[[], dt.datetime],
) -> None:
    ttl = config.worker.job_ttl
    outcome: tuple[str, str | None]
    with _Heartbeat(store, job, ttl, fence):
        try:
            _perform(store, config, job, clock(), ttl)
            outcome = ("done", None)
        except JobRefused as exc:
            outcome = ("failed", str(exc))
        except AuthenticationError as exc:
            outcome = ("failed", f"the shop refused the credentials (revoked?): {exc}")
        except ConfigurationError as exc:
            outcome = ("failed", str(exc))
        except (SQLAlchemyError, StoreError, OSError) as exc:
            outcome = (
                "retry",
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            )
        except ShopSyncError as exc:
            outcome = ("retry" if exc.retryable else "failed", str(exc))
        except Exception as exc:  # an unknown failure: retried, up to max_attempts
            outcome = ("retry", f"{type(exc).__name__}: {exc}")
    status, reason = outcome
    log.info("job %s %s %s: %s %s", job.id, job.kind, job.shop, status, reason or "")
    for _ in range(5):  # settling survives a dropped connection; else the lock lapses
        try:
            if status == "done":
                jobs.finish(store, job)
                report.done += 1
            elif status == "failed":
                jobs.finish(store, job, error=reason)
                report.failed += 1
                report.errors.append(f"{job.kind} {job.shop}: {reason}")
            else:
                jobs.release_for_retry(store, job, reason or "", min(300.0, 2.0**job.attempts))
                report.retried += 1
            return
        except SQLAlchemyError:
            time.sleep(0.2)


def _perform(store: Store, config: Config, job: Job, now: dt.datetime, ttl: float) -> None:
    payload = _parse(job.kind, job.payload)
    if job.shop not in config.shops:
        raise ConfigurationError(
            f"shop {job.shop!r} is no longer configured in {config.path or 'the configuration'}"
        )
    shop = config.shop(job.shop)
    adapter = shop.connect()
    try:
        if job.kind == "sync":
            from shopsync.core.policy import Policy
            from shopsync.sync import RESOURCES, sync

            assert isinstance(payload, SyncPayload)
            # checkouts are read when the policy reminds of them (adapters that can read them)
            wanted = (config.policy or Policy()).abandoned_checkout.enabled
            resources = (*RESOURCES, "checkouts") if wanted else RESOURCES
            # a hand-run sync of the shop: wait for it, then back to the queue (SyncRunning)
            sync(
                adapter,
                store,
                resources=resources,
                full=payload.full,
                lock_wait=ttl,
                lock_ttl=ttl,
            )
        elif job.kind == "apply":
            _apply(store, config, shop, adapter, now, ttl)
        else:
            _changes(store, config, shop, adapter, now, ttl)
    finally:
        adapter.close()


def _sinks(config: Config, shop: ShopConfig, adapter: Any) -> list[Any]:
    from pathlib import Path

    from shopsync.sinks import JsonLines, Platform

    sinks: list[Any] = [Platform(adapter)] if shop.write_back else []
    if config.worker.jsonl:
        path = Path(config.worker.jsonl.replace("{shop}", shop.name))
        if not path.is_absolute() and config.path is not None:
            path = config.path.parent / path
        sinks.append(JsonLines(path, root=path.parent))
    return sinks


def _deliver(
    store: Store,
    config: Config,
    shop: ShopConfig,
    adapter: Any,
    actions: Any,
    now: dt.datetime,
    ttl: float,
) -> None:
    """Record and deliver ``actions`` through the shop's sinks, and only this shop's rows:
    sinks are named by kind, so another shop's pending rows share their names."""
    from shopsync.core.policy import Policy
    from shopsync.outbox import apply

    sinks = _sinks(config, shop, adapter)
    if sinks:
        apply(
            actions,
            store,
            sinks,
            now=now,
            policy=config.policy or Policy(),  # the one its plans use (``plan``'s default)
            lease_ttl=ttl,
            lease_wait=ttl,
            shops=[(adapter.platform, adapter.shop)],
        )


def _apply(
    store: Store, config: Config, shop: ShopConfig, adapter: Any, now: dt.datetime, ttl: float
) -> None:
    from shopsync.planning import plan

    planned = plan(store, config.policy, now, platform=adapter.platform, shop=adapter.shop)
    _deliver(store, config, shop, adapter, planned, now, ttl)


def _changes(
    store: Store, config: Config, shop: ShopConfig, adapter: Any, now: dt.datetime, ttl: float
) -> None:
    """Plan and deliver what changed: the library's incremental plan (:mod:`shopsync.incremental`),
    so a worker and ``shopsync.plan(..., only_changed=True)`` plan alike (the noted customers
    and those whose time-based rules fired). :func:`shopsync.outbox.apply` clears the notes
    the plan read (:meth:`IncrementalPlan.settle`) after it has recorded the plan's actions in
    the outbox and delivered them; a crash before leaves every note for the next job, and
    the outbox sends nothing twice. A shop without sinks keeps its notes: nothing was queued."""
    from shopsync.planning import plan

    if not (shop.write_back or config.worker.jsonl):  # no sink (see ``_sinks``)
        return
    planned = plan(
        store, config.policy, now, platform=adapter.platform, shop=adapter.shop, only_changed=True
    )
    _deliver(store, config, shop, adapter, planned, now, ttl)


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
