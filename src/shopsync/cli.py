"""The ``shopsync`` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from shopsync.errors import ShopSyncError
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
) -> None:
    """Run shopsync end to end against the built-in emulated shop."""
    store = Store(f"sqlite:///{db}")
    try:
        console.print(f"store: [bold]{db}[/bold], schema version {store.schema_version()}")
    finally:
        store.close()


@app.command()
def version() -> None:
    """Print the installed version."""
    from shopsync import __version__

    console.print(__version__)


def main() -> None:
    """Entry point: ShopSyncError becomes a one-paragraph message and exit code 1."""
    try:
        app()
    except ShopSyncError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
