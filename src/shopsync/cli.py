"""The ``shopsync`` command line.

Shops, the store and the policy come from ``shopsync.toml`` (:mod:`shopsync.config`; the one
in the current folder, or ``--config``), and every command also takes them explicitly
(``--db``, ``--policy``, ``shopsync sync shopify -s key=value``). A failure is one paragraph
on stderr saying what happened and what to do, with exit code 1; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from shopsync import _cli_inputs as inputs
from shopsync import _cli_output as output
from shopsync._cli_consent import consent_app
from shopsync._cli_errors import ParagraphErrors, config_sources, explain, using
from shopsync._cli_postgres import postgres_app
from shopsync._cli_quarantine import quarantine_app
from shopsync._cli_tombstones import tombstones_app
from shopsync._cli_worker import enqueue_command, worker_command
from shopsync.config import CONFIG_FILE
from shopsync.errors import AuthenticationError, ConfigurationError, ShopSyncError

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens a store, not for --help
    from shopsync.store import Store

console = Console(highlight=False)
app = typer.Typer(
    name="shopsync",
    help="Sync a Shopify or WooCommerce shop into a local store and run retention programs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ParagraphErrors,
)


@app.callback()
def _global(
    ctx: typer.Context,
    config: Path = typer.Option(
        None,
        "--config",
        envvar="SHOPSYNC_CONFIG",
        help=f"Configuration file (default: ./{CONFIG_FILE} when present).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logging."),
) -> None:
    ctx.obj = inputs.Options(config, debug)
    output.fit_to_output(console)
    if debug:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("shopsync").setLevel(logging.DEBUG)


# -- shared pieces ---------------------------------------------------------------------------

POLICY_OPTION = typer.Option(
    None,
    help=f"retention.toml with the policy (default: [policy] of {CONFIG_FILE}, else defaults).",
)
AS_OF_OPTION = typer.Option(None, "--as-of", help="As of this instant (default: now).")


# -- commands --------------------------------------------------------------------------------


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
            console.print(f"  {key} = {shown!r}", markup=False)
        console.print("from the shell (the credentials stay out of the command line):")
        for line in _shell_lines(platform, shop.settings):
            console.print(f"  {line}", markup=False, soft_wrap=True)
        console.print("Ctrl-C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")


def _shell_lines(platform: str, settings: dict[str, Any]) -> list[str]:
    """``export`` lines for the credentials and a ``shopsync sync`` line that reads them
    with ``env:``, the form the CLI asks for (a literal credential gets a warning)."""
    import shlex

    from shopsync.config import is_credential

    exports, options = [], []
    for key, value in settings.items():
        text = str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
        if is_credential(key):
            name = f"SHOPSYNC_EMULATED_{key.upper()}"
            exports.append(f"export {name}={shlex.quote(text)}")
            options.append(f"-s {key}=env:{name}")
        else:
            options.append(f"-s {shlex.quote(f'{key}={text}')}")
    return [*exports, f"shopsync sync {platform} {' '.join(options)}"]


@app.command("check")
def check_command(
    ctx: typer.Context,
    shops: list[str] = typer.Argument(None, help="Shops of the configuration (default: all)."),
) -> None:
    """Reach each configured shop, and compare the access it granted with what shopsync needs."""
    from shopsync.check import check_access

    config = inputs.options(ctx).require_config()
    names = shops or sorted(config.shops)
    if not names:
        raise ConfigurationError(
            f"{config.path} configures no shop: add a [shops.<name>] table (see docs/config.md)"
        )
    failed = []
    for name in names:
        shop = config.shop(name)
        result = check_access(shop)
        for line in result.lines():
            console.print(line, markup=False, soft_wrap=True)
        if isinstance(result.error, AuthenticationError):
            for source in config_sources(shop):  # which setting to fix, and where it is read
                console.print(f"  refused credentials: {source}", markup=False, soft_wrap=True)
        if not result.ok:
            failed.append(name)
    if failed:
        typer.echo(
            f"error: {len(failed)} of {len(names)} shops cannot be used as configured "
            f"({', '.join(failed)}): fix what is reported above and run shopsync check again.",
            err=True,
        )
        raise typer.Exit(1)


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    target: str = typer.Argument(
        None,
        help=f"A shop of {CONFIG_FILE}, or an adapter name with --setting (default: every shop).",
    ),
    setting: list[str] = typer.Option(
        [], "--setting", "-s", help="Adapter setting key=value (value env:NAME reads $NAME)."
    ),
    db: str = inputs.DB_OPTION,
    full: bool = typer.Option(False, help="Ignore the checkpoints and read everything."),
    resource: list[str] = typer.Option(
        [], "--resource", "-r", help="Only these resources (default: all)."
    ),
    wait: float = typer.Option(
        0.0, "--wait", help="Seconds to wait for another sync of the shop (default: refuse)."
    ),
) -> None:
    """Bring the store up to date with a shop (incremental, resumable)."""
    options = inputs.options(ctx)
    targets = inputs.targets(options, target, setting)
    failed = []
    store: Store | None = None
    try:
        for each in targets:
            try:
                with using(each.shop, each.sources):
                    adapter = each.connect()  # settings first: a bad one creates no store
                    try:
                        store = store or inputs.store_to_fill(options, db)
                        _sync_one(adapter, store, full=full, resources=resource, wait=wait)
                    finally:
                        adapter.close()
            except ShopSyncError as exc:
                if len(targets) == 1 or options.debug:
                    raise
                typer.echo(f"error: {explain(exc)}", err=True)
                failed.append(each.label)
    finally:
        if store is not None:
            store.close()
    if failed:
        typer.echo(f"error: not synced: {', '.join(failed)} (see above)", err=True)
        raise typer.Exit(1)


def _sync_one(
    adapter: Any, store: Store, *, full: bool, resources: list[str], wait: float = 0.0
) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from shopsync.sync import RESOURCES, sync

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

        report = sync(
            adapter,
            store,
            resources=resources or RESOURCES,
            full=full,
            on_page=on_page,
            lock_wait=wait,
        )
    table = Table(title=f"{adapter.platform} {adapter.shop} in {report.duration:.1f}s")
    columns_by_header = {
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
    for header in columns_by_header:
        table.add_column(header, justify="right")
    for name, r in report.resources.items():
        table.add_row(name, *(f"{getattr(r, c):,}" for c in columns_by_header.values()))
    console.print(table)
    for warning in report.warnings:  # e.g. Shopify's 60-day order window
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    from shopsync.consent import consent_summary

    # loud when nobody can be e-mailed (a WooCommerce store without a consent source)
    counts = store.consent_counts(adapter.platform, adapter.shop)
    console.print(consent_summary(counts), markup=False, soft_wrap=True)


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    target: str = typer.Argument(None, help=f"Only this shop of {CONFIG_FILE} (default: all)."),
    db: str = inputs.DB_OPTION,
    as_of: str = AS_OF_OPTION,
    policy: Path = POLICY_OPTION,
    examples: int = typer.Option(3, help="Example reasons to show per program."),
) -> None:
    """What every program would do now, and why (nothing is sent)."""
    from rich.table import Table

    from shopsync.planning import plan

    options = inputs.options(ctx)
    moment = inputs.moment(as_of)
    where = inputs.where(inputs.configured(options, target))
    store = inputs.open_store(options, db, filled=True)
    try:
        result = plan(
            store,
            inputs.policy_for(options, policy),
            moment,
            platform=where.get("platform"),
            shop=where.get("shop"),
        )
        consent = _consent_lines(store, where)
    finally:
        store.close()
    table = Table(title=f"plan as of {result.as_of:%Y-%m-%d %H:%M} UTC")
    table.add_column("action")
    table.add_column("planned", justify="right")
    for kind, count in result.counts.items():
        table.add_row(kind, f"{count:,}")
    console.print(table)
    held = ", ".join(f"{why} {count:,}" for why, count in result.held_counts.items())
    console.print(f"held back (not sent): {held or 'nothing'}", markup=False)
    for kind in result.counts:
        for action in [a for a in result if a.kind == kind][:examples]:
            console.print(f"  {kind} {action.customer_id}: {action.reason}", markup=False)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    for used in result.models:  # which stored shop-level models the plan used (issue 19)
        console.print(f"models: {used.describe()}", markup=False, soft_wrap=True)
    for line in consent:
        console.print(line, markup=False, soft_wrap=True)


def _consent_lines(store: Store, where: dict[str, str]) -> list[str]:
    """Per shop, who marketing can reach (loud when nobody: see shopsync.consent)."""
    from shopsync.consent import consent_summary

    pairs = [(where["platform"], where["shop"])] if where else store.shops()
    return [
        f"{platform} {shop}: {consent_summary(store.consent_counts(platform, shop))}"
        for platform, shop in pairs
    ]


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    target: str = typer.Argument(
        None, help=f"A shop of {CONFIG_FILE}: plan it and write back to it (tags, codes, points)."
    ),
    db: str = inputs.DB_OPTION,
    jsonl: Path = typer.Option(None, help="Append the actions to this JSON Lines file."),
    csv: Path = typer.Option(None, help="Append the actions to this CSV file."),
    platform: str = typer.Option(None, help="Write back to this platform (tags, codes, points)."),
    setting: list[str] = typer.Option(
        [], "--setting", "-s", help="The platform adapter's settings, key=value (env:NAME)."
    ),
    as_of: str = AS_OF_OPTION,
    policy: Path = POLICY_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be sent, to whom and where; send nothing."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --dry-run: print the deliveries as JSON, for scripts."
    ),
) -> None:
    """Plan, then deliver each action exactly once to the sinks named."""
    from shopsync.adapter import connect
    from shopsync.outbox import apply
    from shopsync.planning import plan
    from shopsync.sinks import Csv, JsonLines, Platform

    options = inputs.options(ctx)
    if as_json and not dry_run:
        raise ConfigurationError("--json lists a dry run: add --dry-run")
    shop = inputs.configured(options, target)
    if not (jsonl or csv or platform or (shop is not None and shop.write_back)):
        off = f" (shop {target!r} has write_back = false)" if shop is not None else ""
        raise ConfigurationError(
            f"name at least one sink{off}: a shop to write back to, --jsonl, --csv or --platform"
        )
    where = inputs.where(shop)
    moment = inputs.moment(as_of)
    store = inputs.open_store(options, db, filled=True)
    adapters: list[Any] = []
    sources = inputs.setting_sources(setting) if platform else ()
    try:
        if platform:
            with using(None, sources):
                adapters.append(connect(platform, **inputs.settings_from(setting)))
        if shop is not None and shop.write_back:
            adapters.append(shop.connect())
        sinks: list[Any] = [Platform(adapter) for adapter in adapters]
        if jsonl:
            sinks.append(JsonLines(jsonl, root=jsonl.parent))
        if csv:
            sinks.append(Csv(csv, root=csv.parent))
        with using(shop, sources):
            rules = inputs.policy_for(options, policy)
            planned = plan(
                store, rules, moment, platform=where.get("platform"), shop=where.get("shop")
            )
            # the outbox keeps the policy: a later apply without one holds to the same rules
            only = [(where["platform"], where["shop"])] if where.get("shop") else None
            report = apply(
                planned, store, sinks, now=moment, dry_run=dry_run, policy=rules, shops=only
            )
    finally:
        store.close()
        for adapter in adapters:
            adapter.close()
    summary = output.apply_summary(report, list(planned), sinks)
    reasons = {a.idempotency_key: a.reason for a in planned}
    if as_json:
        typer.echo(output.deliveries_json(report.deliveries, reasons))
        typer.echo(summary, err=True)
        return
    if dry_run and report.deliveries:
        title = f"dry run as of {moment:%Y-%m-%d %H:%M} UTC"
        console.print(output.deliveries_table(report.deliveries, title, reasons))
    console.print(summary, markup=False)


@app.command("report")
def report_command(
    ctx: typer.Context,
    db: str = inputs.DB_OPTION,
    out: Path = typer.Option(Path("shopsync-report.html"), "--out", help="HTML file to write."),
    as_of: str = AS_OF_OPTION,
    policy: Path = POLICY_OPTION,
) -> None:
    """Write an HTML report of the store: customers, programs, what was sent and why."""
    from shopsync.report import write_report

    options = inputs.options(ctx)
    moment = inputs.moment(as_of)
    store = inputs.open_store(options, db, filled=True)
    try:
        written = write_report(store, out, as_of=moment, policy=inputs.policy_for(options, policy))
    finally:
        store.close()
    console.print(f"wrote {written}", markup=False)


@app.command("backtest")
def backtest_command(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="First step (ISO date)."),
    end: str = typer.Option(..., "--to", help="End, exclusive (ISO date)."),
    step: str = typer.Option("7d", help="Time between plans: 12h, 7d, 2w..."),
    horizon: str = typer.Option("30d", help="How long after a step a return counts."),
    target: str = typer.Option(None, "--shop", help=f"Only this shop of {CONFIG_FILE}."),
    db: str = inputs.DB_OPTION,
    policy: Path = POLICY_OPTION,
) -> None:
    """Replay the programs over past data: what they would have planned, and who came back."""
    from rich.progress import BarColumn, Progress, TextColumn

    from shopsync.backtest import backtest

    options = inputs.options(ctx)
    first, last = inputs.moment(start, "--from"), inputs.moment(end, "--to")
    every, within = inputs.duration(step, "--step"), inputs.duration(horizon, "--horizon")
    where = inputs.where(inputs.configured(options, target))
    store = inputs.open_store(options, db, filled=True)
    total = max(math.ceil((last - first) / every), 0) if every else 0
    try:
        columns = (TextColumn("{task.description}"), BarColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("backtest", total=total)

            def on_step(at: dt.datetime) -> None:
                progress.update(task, advance=1, description=f"planning as of {at:%Y-%m-%d}")

            result = backtest(
                store,
                inputs.policy_for(options, policy),
                first,
                last,
                step=every,
                horizon=within,
                on_step=on_step,
                **where,
            )
    finally:
        store.close()
    console.print(str(result), markup=False)


outbox_app = typer.Typer(help="Actions recorded for delivery, and what became of them.")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    db: str = inputs.DB_OPTION,
    status: str = typer.Option(None, help="Only this status (pending, done, parked, cancelled)."),
    limit: int = typer.Option(50, help="At most this many rows."),
) -> None:
    """Outbox rows, newest first."""
    from rich.table import Table

    from shopsync.outbox import list_outbox

    store = inputs.open_store(inputs.options(ctx), db)
    try:
        rows = list_outbox(store, status=status)  # type: ignore[arg-type]
        everything = list_outbox(store) if status and not rows else rows
    finally:
        store.close()
    if not rows:
        if status and everything:
            counts = output.status_counts(everything)
            console.print(f"no {status} rows; the outbox holds {counts}", markup=False)
        else:
            console.print("the outbox is empty: `shopsync apply` records what it delivers")
        return
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
    console.print(table)
    if len(rows) > limit:
        which = f" {status}" if status else ""
        console.print(f"{limit:,} of {len(rows):,}{which} rows shown (newest first; --limit)")


app.add_typer(quarantine_app, name="quarantine")
app.add_typer(consent_app, name="consent")
app.add_typer(tombstones_app, name="tombstones")
app.add_typer(postgres_app, name="postgres")
app.command("worker")(worker_command)
app.command("enqueue")(enqueue_command)


def main() -> None:
    """Entry point of the ``shopsync`` script."""
    app()
