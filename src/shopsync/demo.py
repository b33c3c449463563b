"""``shopsync demo``: everything end to end against built-in emulated shops, offline.

An emulated Shopify shop and an emulated WooCommerce store, each served by its own process
on 127.0.0.1 (seeded: every run shows the same shops), are synced into a local SQLite store
through the same adapters a real shop uses; the loyalty ledger is brought up to date; every
program is planned with the default policy; the plan is applied exactly once to the shops
themselves (discount codes, loyalty fields) and to a JSON Lines file; the HTML report
(:mod:`shopsync.report`) is written beside the store; and the key figures, the actions by
program with an example reason each, and what the safety rules held back are printed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopsync import loyalty
from shopsync._cli_output import apply_summary
from shopsync.adapter import connect
from shopsync.core.planner import Plan
from shopsync.core.policy import Policy
from shopsync.frames import customer_features
from shopsync.outbox import ApplyReport, apply
from shopsync.planning import plan
from shopsync.report import write_report
from shopsync.sinks import JsonLines, Platform
from shopsync.store import Store
from shopsync.sync import SyncReport, sync
from shopsync.testing.process import RemoteShop, emulate_in_processes

__all__ = ["DEMO_SHOPS", "DemoResult", "run_demo"]

DEMO_SHOPS: dict[str, dict[str, Any]] = {
    # The Plus plan's API limits, so the write-back of a few hundred actions takes seconds.
    "shopify": {
        "seed": 11,
        "customers": 2500,
        "orders": 11000,
        "products": 80,
        "currency": "USD",
        "plan": "plus",
    },
    "woocommerce": {
        "seed": 12,
        "customers": 2000,
        "orders": 9000,
        "products": 60,
        "currency": "EUR",
        # WooCommerce core keeps no marketing consent: the demo store runs Mailchimp for
        # WooCommerce, whose meta the adapter reads (shopsync_woocommerce.consent).
        "consent_plugin": "mailchimp",
    },
}
"""The demo's two shops: a few thousand customers and tens of thousands of orders."""


@dataclass
class ShopFigures:
    platform: str
    shop: str
    currency: str
    sync: SyncReport
    customers: int
    buyers: int
    repeat_rate: float
    average_order_value: float
    net_revenue: float
    points_pending: int
    points_approved: int


@dataclass
class DemoResult:
    shops: list[ShopFigures]
    plan: Plan
    applied: ApplyReport
    actions_file: Path
    report: Path
    seconds: float
    applied_summary: str = ""
    """The apply counts as actions and deliveries (an action and a sink that takes it)."""


def output_files(db: Path) -> list[Path]:
    """The files a demo writes beside its store (``.gitignore`` lists them)."""
    return [db, db.with_suffix(".actions.jsonl"), db.with_suffix(".html")]


def run_demo(
    db: Path, console: Console, *, scale: float = 1.0, as_of: dt.datetime | None = None
) -> DemoResult:
    """Run the demo into the SQLite file ``db``; ``scale`` resizes the shops."""
    started = time.perf_counter()
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    store = Store(f"sqlite:///{db}")
    figures = []
    tiers: dict[tuple[str, str], dict[str, str | None]] = {}
    with ExitStack() as stack:
        console.print("Starting two emulated shops on 127.0.0.1 ...")
        shops = stack.enter_context(
            emulate_in_processes({p: _scaled(spec, scale) for p, spec in DEMO_SHOPS.items()})
        )
        for remote in shops.values():
            console.print(
                f"  {remote.platform:12} {remote.url}  {remote.customers:,} customers, "
                f"{remote.orders:,} orders"
            )
        for remote in shops.values():
            report = _sync(remote, store, console)
            derived = loyalty.update_ledger(store, remote.platform, report.shop, as_of=as_of)
            tiers[(remote.platform, report.shop)] = derived.tiers
            figures.append(_figures(store, remote, report, as_of))
        console.print("Planning with the default policy ...")
        planned = plan(store, Policy(), as_of)
        actions_file = output_files(db)[1]
        actions_file.unlink(missing_ok=True)
        adapters = [connect(r.platform, **r.settings) for r in shops.values()]
        sinks = [Platform(a, tags=False) for a in adapters]
        sinks.append(JsonLines(actions_file, root=actions_file.parent))
        console.print(f"Applying {len(planned):,} actions to the shops and to {actions_file} ...")
        applied = apply(planned, store, sinks, now=as_of)
        summary = apply_summary(applied, list(planned), sinks)
        for adapter in adapters:
            adapter.close()
    console.print("Writing the HTML report ...")
    # one replayed plan for the holdout lift keeps the report to a few seconds
    html = write_report(
        store,
        output_files(db)[2],
        as_of=as_of,
        policy=Policy(),
        planned=planned,
        tiers=tiers,
        lift_plans=1,
    )
    store.close()
    result = DemoResult(
        shops=figures,
        plan=planned,
        applied=applied,
        actions_file=actions_file,
        report=html,
        seconds=time.perf_counter() - started,
        applied_summary=summary,
    )
    _print(console, result, db)
    return result


def _scaled(spec: dict[str, Any], scale: float) -> dict[str, Any]:
    out = dict(spec)
    for key in ("customers", "orders", "products"):
        out[key] = max(5, int(spec[key] * scale))
    return out


def _sync(remote: RemoteShop, store: Store, console: Console) -> SyncReport:
    adapter = connect(remote.platform, **remote.settings)
    columns = (
        TextColumn("{task.description:32}"),
        BarColumn(),
        TextColumn("{task.completed:>7,} records"),
        TimeElapsedColumn(),
    )
    totals = {"customers": remote.customers, "orders": remote.orders}  # products: unknown
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, Any] = {}

        def on_page(resource: str, page: Any, report: Any) -> None:
            if resource not in tasks:
                for done in tasks.values():  # the previous resource is finished
                    progress.update(done, total=progress.tasks[done].completed)
                    progress.stop_task(done)
                tasks[resource] = progress.add_task(
                    f"{remote.platform} {resource}", total=totals.get(resource)
                )
            progress.update(tasks[resource], completed=report.seen)

        report = sync(adapter, store, on_page=on_page)
    adapter.close()
    return report


def _figures(
    store: Store, remote: RemoteShop, report: SyncReport, as_of: dt.datetime
) -> ShopFigures:
    frame = customer_features(store, remote.platform, report.shop, as_of)
    buyers = frame.filter(pl.col("paid_orders") > 0)
    orders = int(buyers["paid_orders"].sum() or 0)
    revenue = float(buyers["net_spend"].sum() or 0)
    points = loyalty.shop_balance(store, remote.platform, report.shop)
    return ShopFigures(
        platform=remote.platform,
        shop=report.shop,
        currency=str(frame["currency"].drop_nulls().mode().first() if buyers.height else "-"),
        sync=report,
        customers=frame.height,
        buyers=buyers.height,
        repeat_rate=(buyers.filter(pl.col("paid_orders") > 1).height / buyers.height)
        if buyers.height
        else 0.0,
        average_order_value=revenue / orders if orders else 0.0,
        net_revenue=revenue,
        points_pending=points.pending,
        points_approved=points.approved,
    )


def _print(console: Console, result: DemoResult, db: Path) -> None:
    table = Table(title="shopsync demo")
    table.add_column("")
    for shop in result.shops:
        table.add_column(f"{shop.platform}\n{shop.shop}", justify="right")
    rows: list[tuple[str, Callable[[ShopFigures], str]]] = [
        ("records synced", lambda s: f"{s.sync.records:,}"),
        ("quarantined", lambda s: f"{s.sync.total('quarantined'):,}"),
        ("sync seconds", lambda s: f"{s.sync.duration:.1f}"),
        ("customers", lambda s: f"{s.customers:,}"),
        ("buyers", lambda s: f"{s.buyers:,}"),
        ("repeat-purchase rate, all time", lambda s: f"{s.repeat_rate:.0%}"),
        ("average order value, all time", lambda s: f"{s.average_order_value:,.2f} {s.currency}"),
        ("net revenue, all time", lambda s: f"{s.net_revenue:,.0f} {s.currency}"),
        ("points pending / approved", lambda s: f"{s.points_pending:,} / {s.points_approved:,}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(shop) for shop in result.shops))
    console.print(table)
    console.print(
        "The rates above cover every order (all time, net of refunds); the report's tiles of "
        "the same names cover the twelve months up to the last month end, so they differ.",
        markup=False,
    )
    programs = Table(title="planned actions, by program")
    programs.add_column("action")
    programs.add_column("planned", justify="right")
    programs.add_column("example reason")
    for kind, count in result.plan.counts.items():
        example = next(a for a in result.plan if a.kind == kind)
        programs.add_row(kind, f"{count:,}", example.reason)
    console.print(programs)
    held = ", ".join(f"{why} {n:,}" for why, n in result.plan.held_counts.items())
    console.print(f"held back by the safety rules: {held or 'nothing'}")
    codes = sum(
        1
        for d in result.applied.deliveries
        if d.status == "done" and ((d.result or {}).get("discount") or {}).get("created")
    )
    applied = result.applied_summary or str(result.applied)
    console.print(f"applied: {applied}; discount codes created on the platforms: {codes}")
    console.print(f"store: {db}   actions: {result.actions_file}   ({result.seconds:.0f} s in all)")
    console.print(f"report: {result.report}  (open it in a browser; it works offline)")
