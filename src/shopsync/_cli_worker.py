"""``shopsync worker`` and ``shopsync enqueue``: run the shops of shopsync.toml on their
schedule, shared by any number of workers through the store (see :mod:`shopsync.worker`)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from shopsync import _cli_inputs as inputs
from shopsync.config import JOB_KINDS as KINDS

__all__ = ["enqueue_command", "worker_command"]

console = Console(highlight=False)


def worker_command(
    ctx: typer.Context,
    db: str = inputs.DB_OPTION,
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Stop when no job is due (a cron step) instead of running on."
    ),
    no_schedule: bool = typer.Option(
        False, "--no-schedule", help="Only run queued jobs; make none from the schedule."
    ),
) -> None:
    """Run sync, plan and apply for the configured shops on their schedule ([worker] table);
    start as many as you like against one PostgreSQL store. Ctrl-C or SIGTERM stops after
    the job in hand."""
    from shopsync.store import Store
    from shopsync.worker import run

    options = inputs.options(ctx)
    config = options.require_config()
    store = Store(options.store_url(db))
    if store.engine.dialect.name == "sqlite":
        console.print(
            "note: the store is SQLite, so this worker is single-process: run one worker for "
            "it, or use a PostgreSQL store to share the work between workers.",
            markup=False,
        )
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("shopsync.worker").setLevel(logging.INFO)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = run(config, store, stop=stop, until_idle=until_idle, schedule=not no_schedule)
    finally:
        store.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    console.print(
        f"worker {report.worker}: {report.done} done, {report.failed} failed, "
        f"{report.retried} to retry",
        markup=False,
    )
    for error in report.errors:
        console.print(f"failed: {error}", markup=False, soft_wrap=True)


def enqueue_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help=f"Job kind: {', '.join(KINDS)}."),
    shop: str = typer.Argument(..., help="A shop of shopsync.toml."),
    payload: str = typer.Option("{}", help="Job options as JSON, e.g. '{\"full\": true}'."),
    db: str = inputs.DB_OPTION,
) -> None:
    """Queue a job for the workers (it joins a job already queued for that shop)."""
    from shopsync.store import Store
    from shopsync.worker import enqueue

    options = inputs.options(ctx)
    config = options.require_config()
    store = Store(options.store_url(db))
    try:
        job, created = enqueue(store, kind, shop, payload, config=config)
    finally:
        store.close()
    state = "queued" if created else "already queued"
    console.print(f"job {job}: {kind} {shop} {state}", markup=False)
