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


def main() -> None:
    """Entry point: ShopSyncError becomes a one-paragraph message and exit code 1."""
    try:
        app()
    except ShopSyncError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None
