"""How the command line reports a failure: one paragraph saying what happened and what
to do, exit code 1; ``--debug`` lets the traceback through instead."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from shopsync.config import CONFIG_FILE, ShopConfig, is_credential
from shopsync.errors import (
    AuthenticationError,
    NotFoundError,
    PlatformError,
    ShopSyncError,
    StoreError,
    TransportError,
)

__all__ = ["ParagraphErrors", "config_sources", "explain", "using"]


class ParagraphErrors(TyperGroup):
    """Turns an error into one paragraph and exit code 1 (a traceback with ``--debug``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (ShopSyncError, OSError) as exc:
            if ctx.params.get("debug"):
                raise
            typer.echo(f"error: {explain(exc)}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            # The store never loaded (``--help``, click's own exits): exc cannot be a database
            # error, and loading it now would pull SQLAlchemy into a light command.
            if ctx.params.get("debug") or "shopsync.store" not in sys.modules:
                raise
            from shopsync.store.errors import is_database_error

            if not is_database_error(exc):
                raise
            typer.echo(f"error: {explain(exc)}", err=True)
            raise typer.Exit(1) from None


def explain(exc: BaseException) -> str:
    """One paragraph: what went wrong, and what to do about it."""
    shop: ShopConfig | None = getattr(exc, "_shop", None)
    which = f" of shop {shop.name!r}" if shop else ""
    check = f"`shopsync check {shop.name}`" if shop else "`shopsync check`"
    if isinstance(exc, AuthenticationError):
        held = getattr(exc, "_sources", None) or config_sources(shop)
        where = f" ({'; '.join(held)})" if held else ""
        return (
            f"the shop refused the credentials{which}: {exc}. Check that they{where} are the "
            "shop's current ones (a token or key may have been rotated, revoked or given "
            f"fewer permissions) and run {check} to see what is granted."
        )
    if isinstance(exc, TransportError):
        return (
            f"could not reach the shop{which}: {exc}. Check its URL and that this machine can "
            f"reach it, then run {check}; a sync resumes where it stopped."
        )
    if isinstance(exc, NotFoundError):
        return f"{exc}. Check the shop's URL or domain{which} in the configuration."
    if isinstance(exc, PlatformError):
        again = " It is usually passing: try again later." if exc.retryable else ""
        return f"the shop answered with an error{which}: {exc}.{again}"
    if isinstance(exc, StoreError):
        return f"the store refused the operation: {exc}."
    if isinstance(exc, ShopSyncError):
        return str(exc)
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}:{name}. Check the path and its permissions."
    import sqlite3

    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if isinstance(getattr(exc, "orig", None), sqlite3.Error):  # a local file has no server
        return (
            f"the store could not be used: {cause}. Check --db or [store] url in {CONFIG_FILE}, "
            "that the file's directory exists and is writable, and that no other program "
            "keeps the database locked."
        )
    return (
        f"the store could not be used: {cause}. Check --db or [store] url in {CONFIG_FILE}, "
        "and that the database server is running and reachable."
    )


def config_sources(shop: ShopConfig | None) -> list[str]:
    """Where each credential of a configured shop comes from: the setting, as written, and
    the environment variable or secret it names, so a refused token leads to its source."""
    if shop is None:
        return []
    found = []
    for key, value in shop.settings.items():
        if not is_credential(key):
            continue
        kind, _, name = str(value).partition(":")
        origin = {"env": f"${name}", "secret": f"the secret {name!r}"}.get(kind)
        read = f", read from {origin}" if origin else ""
        found.append(f'shops.{shop.name}.{key} = "{value}"{read}')
    return found


@contextmanager
def using(shop: ShopConfig | None, sources: tuple[str, ...] = ()) -> Iterator[None]:
    """Name ``shop`` (and where its credentials came from: ``sources``, for settings given
    on the command line) in the explanation of a shopsync error raised inside."""
    try:
        yield
    except ShopSyncError as exc:
        if shop is not None and getattr(exc, "_shop", None) is None:
            exc._shop = shop  # type: ignore[attr-defined]
        if sources and getattr(exc, "_sources", None) is None:
            exc._sources = list(sources)  # type: ignore[attr-defined]
        raise
