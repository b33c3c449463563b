"""``shopsync quarantine``: records a platform sent that could not be mapped, kept with the
reason; list them, show one with its raw payload, or map them again after a fix."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from shopsync import _cli_inputs as inputs
from shopsync.errors import ConfigurationError

__all__ = ["quarantine_app"]

console = Console(highlight=False)
quarantine_app = typer.Typer(help="Records a platform sent that could not be mapped.")


@quarantine_app.command("list")
def quarantine_list(ctx: typer.Context, db: str = inputs.DB_OPTION) -> None:
    """Open quarantine entries, oldest first."""
    store = inputs.open_store(inputs.options(ctx), db)
    try:
        entries = store.quarantined()
    finally:
        store.close()
    table = Table()
    for column in ("id", "platform", "shop", "resource", "record", "seen", "last seen", "reason"):
        table.add_column(column)
    for q in entries:
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


@quarantine_app.command("show")
def quarantine_show(
    ctx: typer.Context,
    entry: int = typer.Argument(..., help="Entry id."),
    db: str = inputs.DB_OPTION,
) -> None:
    """One entry with its raw payload."""
    store = inputs.open_store(inputs.options(ctx), db)
    try:
        found = [q for q in store.quarantined(include_resolved=True) if q.id == entry]
    finally:
        store.close()
    if not found:
        raise ConfigurationError(
            f"no quarantine entry {entry}: `shopsync quarantine list` shows the open ones"
        )
    q = found[0]
    console.print(f"{q.platform} {q.shop} {q.resource} {q.record_id or '-'}: {q.reason}")
    console.print(f"first seen {q.first_seen:%Y-%m-%d %H:%M}, seen {q.times_seen} times")
    if q.raw.lstrip().startswith(("{", "[")):
        console.print_json(q.raw)
    else:
        console.print(q.raw, markup=False)


@quarantine_app.command("retry")
def quarantine_retry(
    ctx: typer.Context,
    entries: list[int] = typer.Argument(None, help="Entry ids (default: all open)."),
    platform: str = typer.Option(None, help="Only this platform's entries."),
    db: str = inputs.DB_OPTION,
) -> None:
    """Map open entries again: what maps is stored and resolved, the rest stays."""
    from shopsync import quarantine

    store = inputs.open_store(inputs.options(ctx), db)
    try:
        result = quarantine.retry(store, platform=platform, ids=entries or None)
    finally:
        store.close()
    console.print(f"fixed {result.fixed}, still failing {result.still_failing}")
