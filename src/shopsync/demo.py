"""``shopsync demo``: everything end to end against built-in emulated shops, offline.

An emulated Shopify shop and an emulated WooCommerce store, each served by its own process
on 127.0.0.1 (seeded: every run shows the same shops), are synced into a local SQLite store
through the same adapters a real shop uses. Their customers buy by the CDNOW fit of BG/NBD
(:data:`shopsync.testing.CDNOW`) and answer what shopsync sends them with a known true
effect (:data:`DEMO_UPLIFT`, :mod:`shopsync.testing.simulation`). For :data:`WEEKS` weeks
the demo plans every program (the default policy with half the candidates held out, so a
few weeks measure something), applies the plan exactly once to the shops themselves
(discount codes, loyalty fields) and to a JSON Lines file whose marketing actions reach the
simulated customers, lets the simulated clock run a week and syncs again. Then the HTML
report (:mod:`shopsync.report`) is written beside the store with the holdout lift of each
program beside its true value, and the key figures, the actions by program with an
example reason each, what the safety rules held back and the lift against the truth are
printed. Each week, before the plan, each shop's storefront posts its visitors' product views
and adds to cart to the signed event endpoint over HTTP (:mod:`shopsync._demo_browse`), so
browse abandonment is planned from the same events a real shop's pixel would send.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopsync import loyalty
from shopsync._cli_output import apply_summary
from shopsync._demo_browse import browse_endpoint
from shopsync.adapter import connect
from shopsync.core.actions import Action
from shopsync.core.planner import Plan
from shopsync.core.policy import Policy
from shopsync.core.survey_stats import SurveyScore, nps_score
from shopsync.frames import customer_features
from shopsync.outbox import ApplyResult, apply
from shopsync.planning import plan
from shopsync.report import program_table, report_figures, write_report
from shopsync.report.figures import ShopFigures as ReportFigures
from shopsync.sinks import Platform
from shopsync.sinks._base import discount_of
from shopsync.sinks.files import JsonLines
from shopsync.store import Store
from shopsync.store.survey_rows import survey_answer_rows
from shopsync.surveys import answer
from shopsync.sync import RESOURCES, SyncResult, sync
from shopsync.testing._browsing import Posted
from shopsync.testing.behaviour import CDNOW
from shopsync.testing.process import RemoteShop
from shopsync.testing.remote_simulation import Message, RemoteSimulation, simulate_in_processes
from shopsync.testing.simulation import Truth, Uplift

__all__ = ["DEMO_SHOPS", "DEMO_UPLIFT", "DemoResult", "run_demo"]

DEMO_SHOPS: dict[str, dict[str, Any]] = {
    # The Plus plan's API limits, so the write-back of a few hundred actions takes seconds.
    "shopify": {
        "seed": 11,
        "customers": 2500,
        "products": 80,
        "currency": "USD",
        "plan": "plus",
        "checkouts": True,  # abandoned checkouts at Baymard's rate (issue 22)
    },
    "woocommerce": {
        "seed": 12,
        "customers": 2000,
        "products": 60,
        "currency": "EUR",
        # WooCommerce core keeps no marketing consent: the demo store runs Mailchimp for
        # WooCommerce, whose meta the adapter reads (shopsync_woocommerce.consent).
        "consent_plugin": "mailchimp",
        "checkouts": True,
    },
}
"""The demo's two shops: a few thousand customers, whose orders (about three per customer
over three years) follow from the buying model."""

WITH_CHECKOUTS = (*RESOURCES, "checkouts")
"""The demo reads checkouts too (the abandoned-checkout program and its recovery rate)."""

DEMO_UPLIFT: dict[str, Uplift] = {
    "winback": Uplift(0.30, window_days=14),
    "replenishment": Uplift(0.15, window_days=14),
    "review_request": Uplift(0.0, window_days=14),  # a program with no effect at all
}
"""The true effect of each program on the simulated customers (others: none)."""

SEED = 7
"""Seeds the simulated customers' answers and their buying after the generation."""
WEEKS = 4
"""Weekly rounds of sync, plan, apply and a simulated week."""
HORIZON = dt.timedelta(days=14)
"""How long after a plan an order counts as a return, in the report's lift."""
SIMULATED_DAYS = 7 * (WEEKS - 1) + HORIZON.days + 1
"""The weekly rounds, then on until the last plan's horizon has passed (and a day, for
an order after it), so every plan date is measured."""
DEMO_POLICY = Policy.model_validate(
    {
        "holdout": {"share": "0.5"},
        "shipping": {"platform_sends": {"shopify": False, "woocommerce": False}},
        "education": {"series": [{"name": "coffee", "product_types": ["Coffee"]}]},
        "surveys": {"enabled": True},
    }
)
"""The default policy, with half the candidates held out (default: a tenth) so that four
weekly plans measure a lift with an interval narrow enough to say something; the demo shops
have turned their platforms' own shipping confirmations off (so shopsync sends the shipping
notice), teach coffee buyers with the default education series, and ask the NPS survey."""
SURVEY_ANSWERS = (0.3, (2, 1, 1, 2, 3, 5, 8, 14, 20, 22, 22))
"""How the simulated customers answer a survey: the share who answer, and the weights of the
scores 0-10 (about a third promoters, a fifth detractors: an NPS near +15)."""


@dataclass
class ShopFigures:
    platform: str
    shop: str
    currency: str
    sync: SyncResult
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
    """The first week's plan."""
    applied: ApplyResult
    """The first week's apply."""
    actions_file: Path
    report: Path
    seconds: float
    applied_summary: str = ""
    """The apply counts as actions and deliveries (an action and a sink that takes it)."""
    plans: list[Plan] = field(default_factory=list)
    """Every week's plan, the first first."""
    plan_dates: list[dt.datetime] = field(default_factory=list)
    truth: dict[tuple[str, str], Truth] = field(default_factory=dict)
    """What the simulated customers really did, per (platform, shop)."""
    figures: list[ReportFigures] = field(default_factory=list)
    """The report's figures (the lift per program beside the truth among them)."""
    satisfaction: dict[tuple[str, str], SurveyScore] = field(default_factory=dict)
    """NPS of every survey answer of the simulated weeks, per (platform, shop)."""
    browse: dict[str, Posted] = field(default_factory=dict)
    """What each platform's storefront posted to the event endpoint over the demo."""


class _Feed(JsonLines):
    """The demo's JSON Lines file stands for an email service's feed: what it takes reaches
    the (simulated) customer, so a marketing action needs consent when it is delivered and
    the outbox records it as marketing sent (the report's lift then counts real sends)."""

    contacts_customer: ClassVar[bool] = True


def output_files(db: Path) -> list[Path]:
    """The files a demo writes beside its store (``.gitignore`` lists them)."""
    return [db, db.with_suffix(".actions.jsonl"), db.with_suffix(".html")]


def run_demo(
    db: Path, console: Console, *, scale: float = 1.0, as_of: dt.datetime | None = None
) -> DemoResult:
    """Run the demo into the SQLite file ``db``; ``scale`` resizes the shops; ``as_of`` is
    when the simulated weeks end (default: now; they run to 00:00 UTC that day, and the
    shops' generated history ends :data:`SIMULATED_DAYS` days before)."""
    started = time.perf_counter()
    now = as_of or dt.datetime.now(dt.timezone.utc)
    today = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    # the simulated weeks end today: the ledger and the report refuse a future date
    start = today - dt.timedelta(days=SIMULATED_DAYS)
    store = Store(f"sqlite:///{db}")
    specs = {
        p: {**_scaled(spec, scale), "end": start, "buying": CDNOW} for p, spec in DEMO_SHOPS.items()
    }
    actions_file = output_files(db)[1]
    actions_file.unlink(missing_ok=True)
    plans: list[Plan] = []
    dates: list[dt.datetime] = []
    first: ApplyResult | None = None
    summary = ""
    with ExitStack() as stack:
        console.print("Starting two emulated shops with simulated customers on 127.0.0.1 ...")
        sims = stack.enter_context(simulate_in_processes(specs, uplift=DEMO_UPLIFT, seed=SEED))
        shops = {p: s.shop for p, s in sims.items()}
        events = stack.enter_context(browse_endpoint(store, sims, lambda: _now(sims)))
        for remote in shops.values():
            console.print(
                f"  {remote.platform:12} {remote.url}  {remote.customers:,} customers, "
                f"{remote.orders:,} orders"
            )
        reports = {p: _sync(remote, store, console) for p, remote in shops.items()}
        adapters = [
            stack.enter_context(_closing(connect(r.platform, **r.settings))) for r in shops.values()
        ]
        platform_sinks = [Platform(a, tags=False) for a in adapters]
        jsonl = _Feed(actions_file, root=actions_file.parent)
        sinks = [*platform_sinks, jsonl]
        console.print(
            f"Planning, applying and living {WEEKS} simulated weeks (the default policy, half "
            "the candidates held out) ..."
        )
        actions: dict[str, Action] = {}
        rng = random.Random(SEED)
        coded: set[str] = set()
        told: set[str] = set()
        for week in range(WEEKS):
            at = _now(sims)
            events.post_week(sims, days=7)  # the week's storefront events, then the plan
            planned = plan(store, DEMO_POLICY, at)
            applied = apply(planned, store, sinks, now=at)
            if first is None:
                first, summary = applied, apply_summary(applied, list(planned), sinks)
            plans.append(planned)
            dates.append(at)
            actions.update((a.idempotency_key, a) for a in planned)
            _deliver(
                sims, applied, actions, coded, told, jsonl.name, {s.name for s in platform_sinks}
            )
            _answer_surveys(store, applied, actions, jsonl.name, at, rng)
            for sim in sims.values():
                sim.advance(days=7)
            _quiet_sync(shops.values(), store)
            console.print(
                f"  week {week + 1}, {at:%Y-%m-%d}: {len(planned):,} actions planned, "
                f"{applied.delivered:,} deliveries"
            )
        # live on until the last plan's horizon has passed, so every plan date is measured
        for sim in sims.values():
            sim.advance(days=SIMULATED_DAYS - 7 * WEEKS)
        _quiet_sync(shops.values(), store)
        events.post_week(sims, days=SIMULATED_DAYS - 7 * WEEKS)  # the report's own plan
        truth_of = {(sims[p].shop.platform, reports[p].shop): sims[p].truth() for p in sims}
        end = _now(sims)
    tiers: dict[tuple[str, str], dict[str, str | None]] = {}
    figures = []
    for remote in shops.values():
        shop = reports[remote.platform].shop
        derived = loyalty.update_ledger(store, remote.platform, shop, as_of=end)
        tiers[(remote.platform, shop)] = derived.tiers
        figures.append(_figures(store, remote, reports[remote.platform], end))
    console.print("Writing the HTML report ...")
    computed = report_figures(
        store,
        as_of=end,
        policy=DEMO_POLICY,
        tiers=tiers,
        lift_on=dates,
        horizon=HORIZON,
        truth=truth_of,
    )
    html = write_report(store, output_files(db)[2], as_of=end, figures=computed)
    satisfaction = {}
    for platform, shop in store.shops():
        given = [a.score for a in survey_answer_rows(store, platform, shop) if a.scale == "nps"]
        if given:
            satisfaction[(platform, shop)] = nps_score(given, shop)
    store.close()
    assert first is not None  # WEEKS >= 1
    result = DemoResult(
        shops=figures,
        plan=plans[0],
        applied=first,
        actions_file=actions_file,
        report=html,
        seconds=time.perf_counter() - started,
        applied_summary=summary,
        plans=plans,
        plan_dates=dates,
        truth=truth_of,
        figures=computed,
        satisfaction=satisfaction,
        browse=dict(events.posted),
    )
    _print(console, result, db)
    return result


def _now(sims: Mapping[str, RemoteSimulation]) -> dt.datetime:
    """The simulated time, the same in every shop (they advance together)."""
    return max(s.now for s in sims.values())


@contextmanager
def _closing(adapter: Any) -> Iterator[Any]:
    try:
        yield adapter
    finally:
        adapter.close()


def _deliver(
    sims: Mapping[str, RemoteSimulation],
    applied: ApplyResult,
    actions: Mapping[str, Action],
    coded: set[str],
    told: set[str],
    feed: str,
    platforms: set[str],
) -> None:
    """The marketing actions the JSON Lines feed took in this apply reach their customers
    (as if an email service sent the feed), each once, with its code when the platform
    created it; the simulation learns of a message from nothing else."""
    coded.update(
        d.idempotency_key for d in applied.deliveries if d.sink in platforms and d.status == "done"
    )
    out: dict[str, list[Message]] = {}
    for d in applied.deliveries:
        action = actions.get(d.idempotency_key)
        if d.sink != feed or d.status != "done" or action is None or not action.marketing:
            continue
        if d.idempotency_key in told:
            continue
        told.add(d.idempotency_key)
        found = discount_of(action) if d.idempotency_key in coded else None
        out.setdefault(action.platform, []).append(
            Message(
                action.customer_id,
                action.kind,
                action.idempotency_key,
                code=found.code if found else None,
                value=found.value if found else None,
                percent=Decimal(found.percent) if found and found.percent else None,
            )
        )
    for platform, messages in out.items():
        sims[platform].receive(messages)


def _answer_surveys(
    store: Store,
    applied: ApplyResult,
    actions: Mapping[str, Action],
    feed: str,
    at: dt.datetime,
    rng: random.Random,
) -> None:
    """Some customers whose survey the feed took answer it the next day, through the same
    path as a click on the survey app (:func:`shopsync.surveys.answer`)."""
    share, weights = SURVEY_ANSWERS
    for d in applied.deliveries:
        action = actions.get(d.idempotency_key)
        if d.sink != feed or d.status != "done" or action is None:
            continue
        if action.kind != "survey_request" or rng.random() >= share:
            continue
        survey = {
            "platform": action.platform,
            "shop": action.shop,
            "customer_id": action.customer_id,
            "order_id": str(action.facts["order_id"]),
            "scale": str(action.facts["scale"]),
            "survey_key": action.idempotency_key,
        }
        score = rng.choices(range(11), weights=weights)[0]
        answer(store, survey, score, now=at + dt.timedelta(days=1))


def _quiet_sync(shops: Iterable[RemoteShop], store: Store) -> None:
    for remote in shops:
        adapter = connect(remote.platform, **remote.settings)
        try:
            sync(adapter, store, resources=WITH_CHECKOUTS)
        finally:
            adapter.close()


def _scaled(spec: dict[str, Any], scale: float) -> dict[str, Any]:
    out = dict(spec)
    for key in ("customers", "products"):
        out[key] = max(5, int(spec[key] * scale))
    return out


def _sync(remote: RemoteShop, store: Store, console: Console) -> SyncResult:
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

        report = sync(adapter, store, on_page=on_page, resources=WITH_CHECKOUTS)
    adapter.close()
    return report


def _figures(
    store: Store, remote: RemoteShop, report: SyncResult, as_of: dt.datetime
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
    programs = Table(title="planned actions, by program (the first week's plan)")
    programs.add_column("action")
    programs.add_column("planned", justify="right")
    programs.add_column("example reason")
    for kind, count in result.plan.counts.items():
        example = next(a for a in result.plan if a.kind == kind)
        programs.add_row(kind, f"{count:,}", example.reason)
    console.print(programs)
    _print_lift(console, result)
    recovery = [
        f"{f.platform} {r.rate:.1%} of {r.checkouts:,}"
        for f in result.figures
        if (r := f.checkout_recovery) is not None and r.rate is not None
    ]
    if recovery:
        console.print(
            "abandoned checkouts recovered within 7 days (last 30 days): " + ", ".join(recovery),
            markup=False,
        )
    for platform, posted in result.browse.items():
        console.print(
            f"browse events, {platform}: {posted.stored:,} stored from {posted.bodies:,} carts "
            f"({posted.identified:,} of identified visitors), posted signed to the event "
            "endpoint over HTTP",
            markup=False,
        )
    reminded = sum(p.counts.get("browse_abandonment", 0) for p in result.plans)
    console.print(f"browse reminders planned over the {WEEKS} weeks: {reminded:,}", markup=False)
    held = ", ".join(f"{why} {n:,}" for why, n in result.plan.held_counts.items())
    console.print(f"held back by the safety rules: {held or 'nothing'}")
    for (platform, name), nps in result.satisfaction.items():
        console.print(
            f"NPS survey, {platform} {name}: {nps.value:+.0f} (95% interval {nps.low:+.0f} to "
            f"{nps.high:+.0f}), {nps.n:,} answers ({nps.promoters:,} promoters, "
            f"{nps.detractors:,} detractors; simulated answers)",
            markup=False,
        )
    codes = sum(
        1
        for d in result.applied.deliveries
        if d.status == "done" and ((d.result or {}).get("discount") or {}).get("created")
    )
    applied = result.applied_summary or str(result.applied)
    console.print(
        f"applied in the first week: {applied}; discount codes created on the platforms: {codes}"
    )
    console.print(f"store: {db}   actions: {result.actions_file}   ({result.seconds:.0f} s in all)")
    console.print(f"report: {result.report}  (open it in a browser; it works offline)")


def _print_lift(console: Console, result: DemoResult) -> None:
    """The report's lift per program beside the simulation's truth, one table per shop."""
    for f in result.figures:
        rows = program_table(f)
        lift = f.lift.lift
        title = f"holdout lift by program, {f.platform} {f.shop}"
        if not rows or lift is None:
            console.print(f"{title}: not measurable ({f.lift.note})", markup=False)
            continue
        table = Table(
            title=title + (" (simulation: the true values are known)" if f.lift.simulated else "")
        )
        for n, header in enumerate(rows[0]):
            table.add_column(header, justify="left" if n == 0 else "right")
        for row in rows[1:]:
            table.add_row(*row)
        table.add_row(
            "all marketing",
            f"{lift.treated:,} ({lift.treated_returned:,})",
            f"{lift.holdout:,} ({lift.holdout_returned:,})",
            f"{100 * lift.difference:+.1f} ({100 * lift.low:+.1f} to {100 * lift.high:+.1f})",
            *([""] * (len(rows[0]) - 4)),
        )
        console.print(table)
    days = result.figures[0].lift.horizon.days if result.figures else HORIZON.days
    console.print(
        f"Lift = share of a program's candidates who ordered within {days} days of a weekly "
        "plan, treated minus held out, in points; true = the same difference without sampling "
        "error, from the simulation's record of the returns only a message caused.",
        markup=False,
    )
