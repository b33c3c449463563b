"""``shopsync consent``: marketing consent recorded outside the platform (see
:mod:`shopsync.consent`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console

from shopsync import _cli_inputs as inputs
from shopsync.errors import ConfigurationError

__all__ = ["consent_app"]

console = Console(highlight=False)
consent_app = typer.Typer(help="Marketing consent from an imported list or double opt-ins.")


def _shop(options: inputs.Options, target: str | None, db: str | None) -> tuple[str, str]:
    """(platform, shop) of a configured shop, or of the store's only shop."""
    where = inputs.where(inputs.configured(options, target))
    if where:
        return where["platform"], where["shop"]
    store = inputs.open_store(options, db, filled=True)
    try:
        shops = store.shops()
    finally:
        store.close()
    if len(shops) != 1:
        raise ConfigurationError(
            f"name the shop (a shop of shopsync.toml): the store holds {len(shops)} shops"
        )
    return shops[0]


@consent_app.command("import")
def consent_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with a header: email,state,date,source."),
    target: str = typer.Argument(None, help="A shop of shopsync.toml (default: the only one)."),
    db: str = inputs.DB_OPTION,
    channel: str = typer.Option("email", help="email or sms."),
    timezone: str = typer.Option(
        None, help="Zone of dates written without an offset (an IANA name such as Europe/Paris)."
    ),
) -> None:
    """Record the consents of a list for the stored customers (sync first)."""
    from zoneinfo import ZoneInfo

    from shopsync.consent import consent_summary, import_consent

    options = inputs.options(ctx)
    platform, shop = _shop(options, target, db)
    zone: dt.tzinfo | None = None
    if timezone:
        try:
            zone = ZoneInfo(timezone)
        except (ValueError, KeyError):
            raise ConfigurationError(f"--timezone {timezone!r} is not an IANA zone") from None
    store = inputs.open_store(options, db, filled=True)
    try:
        report = import_consent(store, platform, shop, file, channel=channel, timezone=zone)
        summary = consent_summary(store.consent_counts(platform, shop))
    finally:
        store.close()
    console.print(
        f"{report.rows:,} rows: {report.applied:,} applied, {report.unchanged:,} already held, "
        f"{report.older:,} older than the store's, {report.unmatched:,} without a customer, "
        f"{len(report.errors):,} refused",
        markup=False,
    )
    for line, reason in report.errors[:20]:
        console.print(f"  line {line}: {reason}", markup=False)
    console.print(summary, markup=False)
    if report.errors:
        raise typer.Exit(1)


@consent_app.command("status")
def consent_status(
    ctx: typer.Context,
    target: str = typer.Argument(None, help="A shop of shopsync.toml (default: the only one)."),
    db: str = inputs.DB_OPTION,
) -> None:
    """How many customers can be e-mailed, and why the others cannot."""
    from shopsync.consent import consent_summary

    options = inputs.options(ctx)
    platform, shop = _shop(options, target, db)
    store = inputs.open_store(options, db, filled=True)
    try:
        console.print(consent_summary(store.consent_counts(platform, shop)), markup=False)
    finally:
        store.close()
