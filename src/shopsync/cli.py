"""The ``shopsync`` command line."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from shopsync.errors import ConfigurationError, ShopSyncError
from shopsync.store import Store

app = typer.Typer(
    name="shopsync",
    help="Sync a Shopify or WooCommerce shop into a local store and run retention programs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@app.command()
def demo(
    db: Path = typer.Option(Path("shopsync-demo.db"), help="SQLite file the demo writes."),
    scale: float = typer.Option(1.0, help="Shop size relative to the default (0.1: a tenth)."),
) -> None:
    """Run shopsync end to end against two built-in emulated shops (offline)."""
    from shopsync.demo import run_demo

    if db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)  # a demo starts from scratch
    run_demo(db, console, scale=scale)


@app.command()
def version() -> None:
    """Print the installed version."""
    from shopsync import __version__

    console.print(__version__)


@app.command("emulate")
def emulate_command(
    platform: str = typer.Argument(..., help="Emulator to serve, e.g. shopify or woocommerce."),
    seed: int = typer.Option(1, help="Seed of the generated shop (same seed, same shop)."),
    customers: int = typer.Option(500, help="Customer accounts to generate."),
    orders: int = typer.Option(2000, help="Orders to generate."),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 picks a free one)."),
) -> None:
    """Serve an emulated shop on 127.0.0.1 until Ctrl-C, for your own tests."""
    import time

    from shopsync.testing import emulate

    with emulate(platform, seed=seed, customers=customers, orders=orders, port=port) as shop:
        console.print(f"emulated {platform} shop [bold]{shop.state.shop}[/bold] at {shop.url}")
        console.print("settings for shopsync.connect (a local test shop: secrets shown):")
        for key, value in shop.settings.items():
            shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            console.print(f"  {key} = {shown!r}", highlight=False)
        console.print("Ctrl-C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")


DB_OPTION = typer.Option(
    "sqlite:///shopsync.db", "--db", help="Store URL (SQLite file or PostgreSQL)."
)


def _settings(pairs: list[str]) -> dict[str, str]:
    """``key=value`` pairs; ``key=env:NAME`` reads the value from the environment, so
    secrets stay out of shell history and process listings."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"setting {key or pair!r} must look like key=value")
        if value.startswith("env:"):
            name = value[4:]
            if name not in os.environ:
                raise ConfigurationError(f"setting {key!r} names ${name}, which is not set")
            value = os.environ[name]
        settings[key] = value
    return settings


@app.command("sync")
def sync_command(
    platform: str = typer.Argument(..., help="Adapter name: shopify, woocommerce, ..."),
    setting: list[str] = typer.Option(
        [], "--setting", "-s", help="Adapter setting key=value (value env:NAME reads $NAME)."
    ),
    db: str = DB_OPTION,
    full: bool = typer.Option(False, help="Ignore the checkpoints and read everything."),
    resource: list[str] = typer.Option(
        [], "--resource", "-r", help="Only these resources (default: all)."
    ),
) -> None:
    """Bring the store up to date with a shop (incremental, resumable)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from shopsync.adapter import connect
    from shopsync.sync import RESOURCES, sync

    adapter = connect(platform, **_settings(setting))
    store = Store(db)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def on_page(name: str, page: Any, report: Any) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name)
            progress.update(
                tasks[name],
                description=f"{name}: {report.seen:,} records, {report.pages:,} pages",
            )

        report = sync(adapter, store, resources=resource or RESOURCES, full=full, on_page=on_page)
    table = Table(title=f"{platform} {adapter.shop} in {report.duration:.1f}s")
    columns = {
        "read": "seen",
        "new": "inserted",
        "changed": "updated",
        "same": "unchanged",
        "bad": "quarantined",
        "gone": "deleted",
        "calls": "requests",
        "retries": "retries",
    }
    table.add_column("resource")
    for header in columns:
        table.add_column(header, justify="right")
    for name, r in report.resources.items():
        table.add_row(name, *(f"{getattr(r, c):,}" for c in columns.values()))
    console.print(table)
    store.close()
    adapter.close()


def _as_of(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"--as-of {value!r} is not an ISO date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _policy(path: Path | None) -> Any:
    from shopsync.core.policy import Policy

    return Policy.from_toml(path) if path else Policy()


@app.command("plan")
def plan_command(
    db: str = DB_OPTION,
    as_of: str = typer.Option(None, "--as-of", help="Plan as of this instant (default: now)."),
    policy: Path = typer.Option(None, help="retention.toml with the policy (default: defaults)."),
    examples: int = typer.Option(3, help="Example reasons to show per program."),
) -> None:
    """What every program would do now, and why (nothing is sent)."""
    from rich.table import Table

    from shopsync.core.planner import plan

    store = Store(db)
    result = plan(store, _policy(policy), _as_of(as_of))
    store.close()
    table = Table(title=f"plan as of {result.as_of:%Y-%m-%d %H:%M} UTC")
    table.add_column("action")
    table.add_column("planned", justify="right")
    for kind, count in result.counts.items():
        table.add_row(kind, f"{count:,}")
    console.print(table)
    held = ", ".join(f"{why} {count:,}" for why, count in result.held_counts.items())
    console.print(f"held back (not sent): {held or 'nothing'}", highlight=False)
    for kind in result.counts:
        for action in [a for a in result if a.kind == kind][:examples]:
            console.print(f"  {kind} {action.customer_id}: {action.reason}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


@app.command("apply")
def apply_command(
    db: str = DB_OPTION,
    jsonl: Path = typer.Option(None, help="Append the actions to this JSON Lines file."),
    csv: Path = typer.Option(None, help="Append the actions to this CSV file."),
    platform: str = typer.Option(None, help="Write back to this platform (tags, codes, points)."),
    setting: list[str] = typer.Option(
        [], "--setting", "-s", help="The platform adapter's settings, key=value (env:NAME)."
    ),
    as_of: str = typer.Option(None, "--as-of", help="Plan as of this instant (default: now)."),
    policy: Path = typer.Option(None, help="retention.toml with the policy (default: defaults)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be sent; send nothing."),
) -> None:
    """Plan, then deliver each action exactly once to the sinks named."""
    from shopsync.adapter import connect
    from shopsync.core.planner import plan
    from shopsync.outbox import apply
    from shopsync.sinks import Csv, JsonLines, Platform

    sinks: list[Any] = []
    if jsonl:
        sinks.append(JsonLines(jsonl, root=jsonl.parent))
    if csv:
        sinks.append(Csv(csv, root=csv.parent))
    if platform:
        sinks.append(Platform(connect(platform, **_settings(setting))))
    if not sinks:
        raise ConfigurationError("name at least one sink: --jsonl, --csv or --platform")
    moment = _as_of(as_of)
    store = Store(db)
    report = apply(plan(store, _policy(policy), moment), store, sinks, now=moment, dry_run=dry_run)
    store.close()
    console.print(str(report), highlight=False)


outbox_app = typer.Typer(help="Actions recorded for delivery, and what became of them.")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list")
def outbox_list(
    db: str = DB_OPTION,
    status: str = typer.Option(None, help="Only this status (pending, done, parked, cancelled)."),
    limit: int = typer.Option(50, help="At most this many rows."),
) -> None:
    """Outbox rows, newest first."""
    from rich.table import Table

    from shopsync.outbox import list_outbox

    store = Store(db)
    rows = list_outbox(store, status=status)  # type: ignore[arg-type]
    store.close()
    table = Table()
    for column in ("id", "status", "kind", "customer", "sink", "tries", "reason"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: r.id, reverse=True)[:limit]:
        table.add_row(
            str(row.id),
            row.status,
            row.kind,
            row.customer_id,
            row.sink,
            str(row.attempts),
            row.reason or "",
        )
    console.print(table if table.row_count else "the outbox is empty")


quarantine_app = typer.Typer(help="Records a platform sent that could not be mapped.")
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def quarantine_list(db: str = DB_OPTION) -> None:
    """Open quarantine entries, oldest first."""
    from rich.table import Table

    store = Store(db)
    table = Table()
    for column in ("id", "platform", "shop", "resource", "record", "seen", "last seen", "reason"):
        table.add_column(column)
    for q in store.quarantined():
        table.add_row(
            str(q.id),
            q.platform,
            q.shop,
            q.resource,
            q.record_id or "-",
            str(q.times_seen),
            q.last_seen.isoformat(timespec="seconds"),
            q.reason,
        )
    console.print(table if table.row_count else "the quarantine is empty")
    store.close()


@quarantine_app.command("show")
def quarantine_show(
    entry: int = typer.Argument(..., help="Entry id."), db: str = DB_OPTION
) -> None:
    """One entry with its raw payload."""
    store = Store(db)
    found = [q for q in store.quarantined(include_resolved=True) if q.id == entry]
    store.close()
    if not found:
        raise ConfigurationError(f"no quarantine entry {entry}")
    q = found[0]
    console.print(f"{q.platform} {q.shop} {q.resource} {q.record_id or '-'}: {q.reason}")
    console.print(f"first seen {q.first_seen:%Y-%m-%d %H:%M}, seen {q.times_seen} times")
    if q.raw.lstrip().startswith(("{", "[")):
        console.print_json(q.raw)
    else:
        console.print(q.raw, highlight=False)


@quarantine_app.command("retry")
def quarantine_retry(
    entries: list[int] = typer.Argument(None, help="Entry ids (default: all open)."),
    platform: str = typer.Option(None, help="Only this platform's entries."),
    db: str = DB_OPTION,
) -> None:
    """Map open entries again: what maps is stored and resolved, the rest stays."""
    from shopsync import quarantine

    store = Store(db)
    result = quarantine.retry(store, platform=platform, ids=entries or None)
    store.close()
    console.print(f"fixed {result.fixed}, still failing {result.still_failing}")


def main() -> None:
    """Entry point: ShopSyncError becomes a one-paragraph message and exit code 1."""
    try:
        app()
    except ShopSyncError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
