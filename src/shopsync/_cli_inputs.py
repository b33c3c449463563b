"""What the commands are given: the configuration, shops, the store, the policy, instants
and durations, each checked with an error that says how to fix it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from shopsync._cli_errors import using
from shopsync._urls import password_problem, shown_url
from shopsync.config import (
    CONFIG_FILE,
    DEFAULT_STORE_URL,
    Config,
    ShopConfig,
    dereference,
    is_credential,
    load_config,
)
from shopsync.errors import ConfigurationError

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens a store, not for --help
    from shopsync.store import Store

DB_OPTION = typer.Option(
    None,
    "--db",
    help=f"Store URL, or env:NAME (default: [store] url of {CONFIG_FILE}, else shopsync.db).",
)
"""The ``--db`` option every command that opens a store takes."""


@dataclass
class Options:
    """The global options, and the configuration they lead to (read once, when needed)."""

    config_path: Path | None
    debug: bool = False
    _loaded: list[Config | None] = field(default_factory=list)

    def config(self) -> Config | None:
        """``--config``, else ./shopsync.toml when there is one, else None."""
        if not self._loaded:
            path = self.config_path
            if path is None and Path(CONFIG_FILE).is_file():
                path = Path(CONFIG_FILE)
            self._loaded.append(load_config(path) if path is not None else None)
        return self._loaded[0]

    def require_config(self) -> Config:
        config = self.config()
        if config is None:
            raise ConfigurationError(
                f"no {CONFIG_FILE} in this folder: create one with your shops (see "
                "docs/config.md) or pass --config PATH"
            )
        return config

    def store_url(self, db: str | None) -> str:
        if db:
            # --db takes env:NAME; a password written on the command line is refused (it
            # would stay in shell history and process listings), like a literal token.
            problem = password_problem(db, "--db")
            if problem:
                raise ConfigurationError(problem)
            if db.startswith("env:"):
                return dereference(db, "--db", None)
            return db
        config = self.config()
        return config.store_url() if config else DEFAULT_STORE_URL


def options(ctx: typer.Context) -> Options:
    return ctx.obj if isinstance(ctx.obj, Options) else Options(None)


def settings_from(pairs: list[str]) -> dict[str, str]:
    """``key=value`` pairs; ``key=env:NAME`` reads the value from the environment, so
    secrets stay out of shell history and process listings. A credential written literally
    gets the advice a literal one in the configuration file gets (a warning here: the
    emulator's test settings are literal on purpose)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"setting {key or pair!r} must look like key=value")
        if value.startswith("env:"):
            value = dereference(value, f"--setting {key}", None)
        elif is_credential(key):
            variable = key.upper().replace("-", "_")
            typer.echo(
                f"warning: --setting {key}: credentials are never written on the command line "
                f"(shell history and process listings keep them); use {key}=env:{variable} "
                f"(an environment variable) or a shop in {CONFIG_FILE}",
                err=True,
            )
        settings[key] = value
    return settings


def setting_sources(pairs: list[str]) -> tuple[str, ...]:
    """Where each credential given with ``--setting`` came from, for error messages."""
    found = []
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not is_credential(key):
            continue
        if value.startswith("env:"):
            found.append(f"--setting {key}={value}, read from ${value[4:]}")
        else:
            found.append(f"--setting {key}, written on the command line")
    return tuple(found)


@dataclass(frozen=True)
class Target:
    """A shop to talk to: one of the configuration, or an adapter with explicit settings."""

    label: str
    connect: Callable[[], Any]
    shop: ShopConfig | None = None
    sources: tuple[str, ...] = ()
    """Where the credentials of ``--setting`` came from (see :func:`setting_sources`)."""


def targets(options: Options, target: str | None, pairs: list[str]) -> list[Target]:
    """``shopsync sync main`` (a configured shop), ``shopsync sync shopify -s ...`` (an
    adapter), or every configured shop when nothing is named."""
    from shopsync.adapter import available_adapters, connect

    config = options.config()
    shops = config.shops if config else {}
    if target is None:
        if pairs or not shops:
            raise ConfigurationError(
                f"name a shop of {CONFIG_FILE} (shopsync sync main) or an adapter with its "
                "settings (shopsync sync shopify -s shop=... -s access_token=env:TOKEN)"
            )
        return [Target(name, shops[name].connect, shops[name]) for name in sorted(shops)]
    if target in shops and not pairs:
        return [Target(target, shops[target].connect, shops[target])]
    if target in available_adapters():
        settings = settings_from(pairs)
        return [Target(target, lambda: connect(target, **settings), None, setting_sources(pairs))]
    configured = ", ".join(sorted(shops)) or f"none (no {CONFIG_FILE})"
    raise ConfigurationError(
        f"{target!r} is neither a shop of the configuration (configured: {configured}) nor an "
        f"installed adapter ({', '.join(available_adapters())})"
    )


def open_store(options: Options, db: str | None, *, filled: bool = False) -> Store:
    """An existing store (a command that only reads never creates one); ``filled`` also
    refuses a store that holds no shop."""
    url = options.store_url(db)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise ConfigurationError(
            f"there is no store at {path}: run `shopsync sync` first, or point --db (or "
            f"[store] url in {CONFIG_FILE}) at your store"
        )
    from shopsync.store import Store

    store = Store(url)
    if filled and not store.shops():
        store.close()
        raise ConfigurationError(
            f"the store {_shown(url)} holds no shop yet: run `shopsync sync <shop>` to "
            "fill it, or point --db at the store you filled"
        )
    return store


def _shown(url: str) -> str:
    return shown_url(url)


def store_to_fill(options: Options, db: str | None) -> Store:
    """The store a sync writes, created when missing (its folder must exist)."""
    url = options.store_url(db)
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        raise ConfigurationError(
            f"the folder {path.parent} of the store does not exist: create it, or point --db "
            f"(or [store] url in {CONFIG_FILE}) elsewhere"
        )
    from shopsync.store import Store

    return Store(url)


def sqlite_file(url: str) -> Path | None:
    prefix, sep, database = url.partition(":///")
    if not (prefix.startswith("sqlite") and sep and database):
        return None
    if database.startswith((":memory:", "file:")):
        return None
    return Path(database.split("?", 1)[0])


def policy_for(options: Options, path: Path | None) -> Any:
    from shopsync.core.policy import Policy

    if path is not None:
        return Policy.from_toml(path)
    config = options.config()
    return config.policy if config and config.policy else Policy()


def moment(value: str | None, option: str = "--as-of") -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.timezone.utc)
    try:
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{option} {value!r} is not an ISO date or datetime (e.g. 2026-03-01)"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.timezone.utc)


_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def duration(value: str, option: str) -> dt.timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value.lower())
    if not match:
        raise ConfigurationError(f"{option} {value!r} is not a duration like 12h, 7d or 2w")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def configured(options: Options, name: str | None) -> ShopConfig | None:
    if name is None:
        return None
    return options.require_config().shop(name)


def where(shop: ShopConfig | None) -> dict[str, str]:
    """``platform``/``shop`` keywords limiting a plan to one configured shop."""
    if shop is None:
        return {}
    with using(shop):
        adapter = shop.connect()  # builds the client only: no request is sent
    try:
        return {"platform": adapter.platform, "shop": adapter.shop}
    finally:
        adapter.close()
