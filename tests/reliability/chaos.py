"""Machinery of the chaos tests: forked children killed at random points, and a tally.

A chaos run is a sync or an apply in a child process that the parent may SIGKILL. Children
come from a fork server that imported shopsync once, so a run costs a fork (milliseconds)
instead of a fresh interpreter, and no child inherits the parent's emulator threads. A child
reports progress (one event per committed page or settled row) through a pipe; the parent
kills it after a chosen number of events plus a short pause, or after a chosen time, or lets
it finish. Scheduled callbacks let the parent act while the child runs (change the shop,
drain a rate-limit bucket).

``SHOPSYNC_CHAOS_RUNS`` sets the number of runs on SQLite (default 60: per platform for sync,
shared by the two platforms for apply; the documented figures come from 200),
``SHOPSYNC_CHAOS_PG_RUNS`` on PostgreSQL (default 20, and never more than the SQLite runs: the
engine's own paths, locks and upgrades are met in that many; the reliability figures on
PostgreSQL come from 200), ``SHOPSYNC_CHAOS_SEED`` the seed every random choice derives from;
a failing test names them, which replays the same plan of faults, kills and changes (thread
timing still varies between replays). The suite's defaults were 120 and 40 until the suite
neared its 15 minutes; with the fixed seed, 60 runs still meet every fault, ten kinds of
merchant change and kills in several phases of a run (the tests assert it); a race
with a narrow window (a kill between two commits) is likelier met by a longer storm. Each test
prints its figures in one line (``kills_after_<event>``: where the kills landed) and saves them
as ``<test name>.json`` in its ``tmp_path``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.apply.helpers import SmtpServer, _Collect, free_port

RUNS = int(os.environ.get("SHOPSYNC_CHAOS_RUNS", "60"))
PG_RUNS = int(os.environ.get("SHOPSYNC_CHAOS_PG_RUNS", str(min(RUNS, 20))))


def runs_on(engine: str) -> int:
    """How many chaos runs a test makes on this store engine."""
    return RUNS if engine == "sqlite" else PG_RUNS


SEED = int(os.environ.get("SHOPSYNC_CHAOS_SEED", "20260302"))
PRELOAD = [
    "pytest",
    "shopsync",
    "shopsync.sync",
    "shopsync.outbox",
    "shopsync.sinks",
    "shopsync.sinks.files",
    "shopsync.sinks.platform",
    "shopsync.sinks.webhook",
    "shopsync.loyalty",
    "sqlite3",
    "netrc",
    "encodings.unicode_escape",
    "shopsync_shopify.adapter",
    "shopsync_woocommerce.adapter",
    "tests.apply.helpers",
    "tests.reliability.chaos",
]

Emit = Callable[[Any], None]


def _context() -> Any:
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _child(conn: Connection, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run the target; every message says what it is and the CPU seconds used so far."""
    try:
        result = target(lambda payload: conn.send(("event", payload, _cpu())), *args)
    except BaseException:
        conn.send(("error", traceback.format_exc(), _cpu()))
    else:
        conn.send(("finished", result, _cpu()))
    finally:
        conn.close()


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL a child: after ``events`` progress events and ``pause`` seconds more,
    or ``at`` seconds after its start, whichever comes first."""

    events: int | None = None
    pause: float = 0.0
    at: float | None = None

    @classmethod
    def draw(
        cls, rng: random.Random, expected_events: int, spare: float = 0.25, within: float = 0.25
    ) -> Kill | None:
        """A random kill point for a run of about ``expected_events`` events: mostly after
        one of them, else at a time up to ``within`` seconds; None (no kill) with
        probability ``spare``."""
        roll = rng.random()
        if roll < spare:
            return None
        if roll < spare + (1 - spare) / 4:
            return cls(at=rng.uniform(0.0, within))
        return cls(events=rng.randint(1, max(expected_events, 1)), pause=rng.uniform(0, 0.015))


@dataclass
class Outcome:
    """How one child ended: ``finished`` (with its result), ``killed`` (by us, before it
    finished) or ``error`` (it raised: the traceback); ``cpu`` is the CPU time it reported
    last (user + system seconds)."""

    events: int = 0
    finished: bool = False
    killed: bool = False
    result: Any = None
    error: str | None = None
    cpu: float = 0.0
    messages: list[Any] = field(default_factory=list)

    def take(self, receiver: Connection, *, count: bool = True) -> bool:
        """Read one message; False when the child has said its last word (or is gone)."""
        try:
            tag, payload, self.cpu = receiver.recv()
        except (EOFError, OSError):
            return False
        if tag == "finished":
            self.finished, self.result = True, payload
            return False
        if tag == "error":
            self.error = payload
            return False
        if count:
            self.events += 1
            self.messages.append(payload)
        return True


def run_child(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    kill: Kill | None,
    *,
    during: list[tuple[float, Callable[[], None]]] | None = None,
    timeout: float = 120.0,
) -> Outcome:
    """Run ``target(emit, *args)`` in a forked child; kill it as ``kill`` says.

    ``during`` holds (seconds after start, callback) pairs the parent runs while the child
    is alive. A kill counts only if the child had not finished by then.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, target, args), daemon=True)
    started = time.monotonic()
    process.start()
    sender.close()
    pending = sorted(during or [], key=lambda item: item[0])
    outcome = Outcome()
    try:
        while True:
            now = time.monotonic() - started
            while pending and pending[0][0] <= now:
                pending.pop(0)[1]()
            if kill is not None and kill.at is not None and now >= kill.at:
                break
            if now > timeout:
                raise AssertionError(f"child {target.__name__} still running after {timeout}s")
            deadlines = [timeout] + [at for at, _ in pending[:1]]
            if kill is not None and kill.at is not None:
                deadlines.append(kill.at)
            if not receiver.poll(max(min(deadlines) - now, 0.0)):
                continue
            if not outcome.take(receiver):
                break  # finished, failed, or gone without a word (judged by the exit code)
            if kill is not None and kill.events is not None and outcome.events >= kill.events:
                time.sleep(kill.pause)
                break
        if not (outcome.finished or outcome.error):
            process.kill()
        process.join(timeout=30)
        if process.exitcode is None:  # pragma: no cover - a child that ignores SIGKILL
            raise AssertionError("child did not exit after SIGKILL")
        if process.exitcode == 0:  # it may have finished just before the kill was due
            while not (outcome.finished or outcome.error) and receiver.poll(0):
                if not outcome.take(receiver, count=False):
                    break
        outcome.killed = process.exitcode == -signal.SIGKILL and not outcome.finished
        if not (outcome.finished or outcome.killed or outcome.error):
            outcome.error = f"child exited with code {process.exitcode} without a word"
    finally:
        receiver.close()
        if process.is_alive():  # only when the loop above raised
            process.kill()
            process.join(timeout=30)
        process.close()
    return outcome


@dataclass
class Tally:
    """What a chaos test measured, printed as one line and saved as JSON."""

    name: str
    seed: int = SEED
    runs: int = 0
    kills: int = 0
    """Kills that landed: the child died of SIGKILL before finishing."""
    finished: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    """Anything else worth quoting (changes made, duplicates, retries...)."""
    differences: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    cpu: float = field(default_factory=time.process_time)
    """The parent's CPU time at the start; children add what they report."""

    def record(self, outcome: Outcome) -> None:
        self.runs += 1
        self.kills += outcome.killed
        if outcome.killed:  # where it died: after an event of which kind (a phase of the run)
            last = outcome.messages[-1] if outcome.messages else "start"
            self.counts[f"kills_after_{last}"] += 1
        self.finished += outcome.finished
        self.cpu -= outcome.cpu
        if outcome.error:
            self.errors.append(f"run {self.runs}: {outcome.error}")

    def figures(self) -> dict[str, Any]:
        return {
            "test": self.name,
            "seed": self.seed,
            "runs": self.runs,
            "kills_landed": self.kills,
            "finished": self.finished,
            "faults_injected": sum(self.faults.values()),
            "faults": dict(sorted(self.faults.items())),
            **dict(sorted(self.counts.items())),
            "errors": len(self.errors),
            "differences": len(self.differences),
            "seconds": round(time.monotonic() - self.started, 1),
            "cpu_seconds": round(time.process_time() - self.cpu, 1),
        }

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.figures().items())

    def save(self, folder: Path) -> Path:
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(self.figures(), indent=2, sort_keys=True) + "\n")
        return path

    def replay(self) -> str:
        """How to run this test again with the same random choices."""
        runs = f"SHOPSYNC_CHAOS_RUNS={RUNS} SHOPSYNC_CHAOS_PG_RUNS={PG_RUNS}"
        return f"SHOPSYNC_CHAOS_SEED={self.seed} {runs}"


# ----------------------------------------------------------------------------- children


def sync_child(
    emit: Emit, factory: Any, settings: dict[str, Any], store_url: str, full: bool = False
) -> Any:
    """One sync (``full``: ignoring the checkpoints), an event per committed page.
    ``factory`` is the adapter class (what ``shopsync.connect`` finds through the entry
    points, looked up once by the parent)."""
    import shopsync
    from shopsync.sync import sync

    adapter = factory(**settings)
    store = shopsync.Store(store_url, migrate=False)  # the parent made the schema
    try:
        report = sync(
            adapter, store, full=full, on_page=lambda resource, page, so_far: emit(resource)
        )
    finally:
        store.close()
    return {k: report.total(k) for k in ("pages", "retries", "throttle_waits", "updated")}


def apply_child(emit: Emit, job: dict[str, Any]) -> Any:
    """One apply of the plan ``job`` describes through all four sinks, an event per settled
    row, naming its sink's kind."""
    import shopsync
    from shopsync.outbox import apply
    from shopsync.sinks import Brand, Email, JsonLines, Webhook

    adapter = job["factory"](**job["settings"])
    store = shopsync.Store(job["store"], migrate=False)  # the parent made the schema
    sinks = [
        adapter,
        JsonLines("actions.jsonl", root=job["dir"]),
        Webhook(
            job["webhook"], WEBHOOK_SECRET, retry_policy=job["retries"], timeout=job["timeout"]
        ),
        Email(
            "127.0.0.1",
            job["smtp_port"],
            sender="shop@acme.example",
            security="none",
            timeout=5,
            brand=Brand(name="Acme", address="1 Main St, Springfield"),
            unsubscribe_url="https://acme.example/unsubscribe",
            unsubscribe_secret="unsubscribe-secret-0123456789",
        ),
    ]
    try:
        report = apply(
            plan_actions(job["platform"], adapter.shop, job["plan"]),
            store,
            sinks,
            now=job["now"],
            backoff=job["backoff"],
            on_delivery=lambda delivery: emit(delivery.sink.split(":", 1)[0]),
        )
    finally:
        for sink in sinks[1:]:
            sink.close()
        store.close()
    return {"delivered": report.delivered, "failed": report.failed, "parked": report.parked}


WEBHOOK_SECRET = "webhook-secret-0123456789"


def plan_actions(platform: str, shop: str, spec: list[tuple[str, str, int]]) -> list[Any]:
    """Actions from (kind, customer id, n) triples: ``reward`` (a discount code), ``tier`` (a
    change to gold), ``upgrade`` (a later change from gold to platinum, due ``n`` seconds
    after the first) or ``nudge`` (a marketing message)."""
    import datetime as dt

    from tests.apply.helpers import NOW, nudge, reward, tier

    made: list[Any] = []
    for kind, customer_id, n in spec:
        if kind == "reward":
            made.append(reward(platform, shop, customer_id, n))
        elif kind == "tier":
            made.append(tier(platform, shop, customer_id))
        elif kind == "upgrade":
            made.append(
                tier(
                    platform,
                    shop,
                    customer_id,
                    due_at=NOW + dt.timedelta(seconds=n),
                    reason="entered the platinum tier",
                    idempotency_key=f"loyalty_tier_change:{shop}:{customer_id}:platinum",
                    from_tier="gold",
                    to_tier="platinum",
                )
            )
        else:
            made.append(nudge(customer_id, n, shop=shop, platform=platform))
    return made


# ----------------------------------------------------------------------------- flaky SMTP

SMTP_FAULTS = ("451_before_accept", "421_after_accept", "450_recipient")


class _Flaky(_Collect):
    """The apply tests' collecting SMTP handler, answering from ``script`` first: a 451 that
    keeps nothing, a 421 after the message was kept (the sender cannot tell it arrived), or a
    450 for the recipient; then it accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list[str] = []
        self.injected: Counter[str] = Counter()

    def _next(self, stage: str) -> str | None:
        if self.script and self.script[0].endswith(stage):
            fault = self.script.pop(0)
            self.injected[fault] += 1
            return fault
        return None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self._next("recipient"):
            return "450 4.2.1 mailbox busy, try later"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self._next("accept")
        if fault == "451_before_accept":
            return "451 4.3.0 local error, try again"
        answer = await super().handle_DATA(server, session, envelope)
        if fault == "421_after_accept":
            return "421 4.4.2 connection timed out"
        return answer


@contextmanager
def flaky_smtp() -> Iterator[tuple[SmtpServer, _Flaky]]:
    """A loopback SMTP server whose failures a test scripts (see :class:`_Flaky`)."""
    from aiosmtpd.controller import Controller

    handler = _Flaky()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler), handler
    finally:
        controller.stop()
