"""``shopsync report``: one self-contained HTML file with the retention charts of every shop.

The file holds its CSS and its charts (SVG drawn in Python by :mod:`.charts`) and refers to
nothing outside itself, so it opens offline and can be mailed as is. Each shop of the store
gets a section: cohort retention, lifecycle stages, RFM groups, loyalty tiers and the points
liability, planned actions by program and due day, retention and repeat rates, order value
and CLV over time, and the holdout lift. The figures come from :mod:`.figures`. Example::

    shopsync.report.write_report(store, Path("report.html"), as_of=now)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from shopsync._currencies import EXPONENTS
from shopsync.backtest import wilson
from shopsync.core.planner import Plan
from shopsync.core.policy import Policy
from shopsync.planning import plan
from shopsync.report import charts
from shopsync.report.figures import ShopFigures, shop_figures

if TYPE_CHECKING:
    from shopsync.store import Store
    from shopsync.testing.simulation import Truth

__all__ = ["money", "program_table", "render", "report_figures", "write_report"]

CHARTS = (
    "cohorts",
    "stages",
    "rfm",
    "tiers",
    "liability",
    "actions",
    "rates",
    "values",
    "lift",
    "surveys",
)
"""The chart names; each shop's chart ``k`` has the id ``shop{n}-{k}``."""


@dataclass(frozen=True)
class Panel:
    title: str
    how: str
    """One line on how to read the chart."""
    svg: Markup
    note: str = ""
    table: list[list[str]] = field(default_factory=list)
    """A table under the chart: a header row, then rows (empty: none)."""


@dataclass(frozen=True)
class Section:
    anchor: str
    figures: ShopFigures
    tiles: list[tuple[str, str]]
    panels: list[Panel]


def money(amount: Decimal | None, currency: str) -> str:
    """``1,234.50 EUR``, rounded half-up to the currency's minor unit; a dash for None."""
    if amount is None:
        return "–"
    digits = EXPONENTS.get(currency, 2)
    value = amount.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    return f"{value:,.{digits}f} {currency}".strip()


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1%}"


def _tiles(f: ShopFigures) -> list[tuple[str, str]]:
    last = f.months[-1] if f.months else None
    aov = last.average_order_value if last else None
    clv = last.clv if last else None
    tiles = [
        ("customers", f"{f.customers:,}"),
        ("customers with an order", f"{f.buyers:,}"),
        ("paid orders", f"{f.orders:,}"),
        ("net revenue", money(f.net_revenue, f.currency)),
        ("retention rate, 12 months", _pct(last.retention_rate if last else None)),
        ("repeat purchase rate, 12 months", _pct(last.repeat_rate if last else None)),
        ("average order value, 12 months", money(aov, f.currency)),
        ("mean CLV so far", money(clv, f.currency)),
        ("mean predicted CLV, next 12 months", money(f.predicted_clv, f.currency)),
    ]
    if f.contactable is not None:
        tiles.append(("customers who can be e-mailed", f"{f.contactable:,}"))
    if f.checkout_recovery is not None and f.checkout_recovery.checkouts:  # issue 22
        r = f.checkout_recovery
        tiles.append(
            (f"abandoned-checkout recovery, {r.days} days", f"{_pct(r.rate)} of {r.checkouts:,}")
        )
    if f.loyalty is not None:
        owed = f.loyalty.value(f.loyalty.approved + f.loyalty.pending)
        tiles.append(("points liability", money(owed, f.currency)))
    return tiles


def _cohorts(f: ShopFigures, cid: str) -> Panel:
    table = f.cohorts
    months = [c for c in table.columns if c.startswith("m") and c != "m0"]
    rows = table["cohort"].to_list()
    values = [[r[c] for c in months] for r in table.iter_rows(named=True)]
    notes = [f" ({n:,} customers)" for n in table["customers"].to_list()]
    labels = [f"{cohort} · {n:,}" for cohort, n in zip(rows, table["customers"], strict=True)]
    svg = charts.heatmap(
        cid,
        "Monthly cohort retention",
        labels,
        [f"+{c[1:]}" for c in months],
        values,
        row_notes=notes,
    )
    return Panel(
        "Cohort retention by month",
        "Each row is the customers whose first order fell in that month (and how many); a cell "
        "is the share of them who ordered again k months later. Darker is better.",
        svg,
    )


def _counts(cid: str, title: str, how: str, counts: Mapping[str, int]) -> Panel:
    items = [(name.replace("_", " "), float(n)) for name, n in counts.items()]
    return Panel(title, how, charts.bars(cid, title, items, colours=charts.PALETTE[:1]))


def _loyalty_panels(f: ShopFigures, anchor: str) -> list[Panel]:
    loyal = f.loyalty
    if loyal is None:
        off = charts.bars(f"{anchor}-tiers", "Loyalty tiers", [("program off", 0.0)])
        empty = charts.shares(f"{anchor}-liability", "Points liability", [("no points", 0, "-")])
        how = "The loyalty program is switched off in the policy."
        return [Panel("Loyalty tiers", how, off), Panel("Points liability", how, empty)]
    tiers = charts.bars(
        f"{anchor}-tiers",
        "Customers per loyalty tier",
        [(name, float(n)) for name, n in loyal.tiers.items()],
        colours=charts.PALETTE[1:2],
    )
    parts = [
        ("approved", float(loyal.approved), money(loyal.value(loyal.approved), f.currency)),
        ("pending", float(loyal.pending), money(loyal.value(loyal.pending), f.currency)),
    ]
    liability = charts.shares(f"{anchor}-liability", "Points liability", parts, unit=" points")
    return [
        Panel(
            "Loyalty tiers",
            "Customers by the VIP tier they hold today, lowest first (tiers are earned on the "
            "policy's qualifying spend or points).",
            tiers,
        ),
        Panel(
            "Points liability",
            f"Points customers can spend (approved) or will be able to once the return window "
            f"closes (pending), and their worth as discounts at {loyal.points_per_unit} points "
            f"per 1 {f.currency}.",
            liability,
        ),
    ]


def _actions(f: ShopFigures, cid: str) -> Panel:
    due = f.actions
    labels = [
        f"{due.start + dt.timedelta(days=i):%b %d}" + ("+" if i == due.days - 1 else "")
        for i in range(max(due.days, 1))
    ]
    series = {k.replace("_", " "): v for k, v in due.counts.items()} or {"none": [0] * len(labels)}
    held = ", ".join(f"{rule.replace('_', ' ')} {n:,}" for rule, n in due.held.items())
    return Panel(
        f"Planned actions by program and due day ({due.total:,})",
        "Each column is the actions due that day, coloured by program; the first column also "
        "holds everything already due, the last everything due later.",
        charts.columns(cid, "Planned actions by due day", labels, series),
        f"Held back by the safety rules: {held or 'nothing'}.",
    )


def _rates(f: ShopFigures, cid: str) -> Panel:
    labels = [m.label for m in f.months]
    series = {
        "retention rate": [m.retention_rate for m in f.months],
        "repeat purchase rate": [m.repeat_rate for m in f.months],
    }
    return Panel(
        "Retention and repeat purchase rate",
        "Each point covers the twelve months up to that month's end: retention = share of the "
        "customers active at the start still active at the end; repeat = share of buyers with "
        "two or more orders.",
        charts.lines(
            cid,
            "Retention and repeat rates",
            labels,
            series,
            fmt=_pct,
            axis_fmt=lambda v: f"{v:.0%}",
            top_value=1.0,
        ),
    )


def _values(f: ShopFigures, cid: str) -> Panel:
    labels = [m.label for m in f.months]
    series = {
        "average order value (12 months)": [
            None if m.average_order_value is None else float(m.average_order_value)
            for m in f.months
        ],
        "mean CLV so far": [None if m.clv is None else float(m.clv) for m in f.months],
    }
    digits = EXPONENTS.get(f.currency, 2)

    def fmt(v: float) -> str:
        return money(Decimal(str(round(v, digits))), f.currency)

    return Panel(
        f"Order value and customer value ({f.currency})",
        "Average net order value over the twelve months up to each month end, and the mean "
        "net spend so far of every customer with an order at that date.",
        charts.lines(
            cid,
            "Order value and CLV",
            labels,
            series,
            fmt=fmt,
            axis_fmt=lambda v: f"{v:,.0f} {f.currency}",
        ),
    )


def _lift(f: ShopFigures, cid: str) -> Panel:
    lift = f.lift.lift
    rows: list[tuple[str, float, float, float]] = []
    if lift is not None:
        for name, n, k in (
            ("treated", lift.treated, lift.treated_returned),
            ("holdout", lift.holdout, lift.holdout_returned),
        ):
            if n:
                lo, hi = wilson(k, n)
                rows.append((f"{name} ({k:,} of {n:,})", k / n, lo, hi))
        if lift.treated and lift.holdout:
            rows.append(("difference", lift.difference, lift.low, lift.high))
    edges = [v for r in rows for v in r[1:]]
    low = math.floor(min([0.0, *edges]) * 10) / 10
    high = max(math.ceil(max([0.1, *edges]) * 10) / 10, low + 0.1)
    svg = charts.intervals(
        cid, "Holdout lift", rows, low=low, high=high, fmt=lambda v: f"{v:+.0%}", reference=0.0
    )
    measured = lift is not None and lift.treated and lift.holdout
    note = f.lift.note if measured else f"Not measurable yet: {f.lift.note}."
    if f.lift.programs:
        note += (
            ". By program: the same comparison among the customers that program had as "
            "candidates (planned, delayed by a cap, or held out) at those plan dates; a customer "
            "can be a candidate of several programs"
        )
    if f.lift.simulated:
        note += (
            ". Simulation: this shop is emulated and its customers answer with a configured "
            "effect; the true lift is what the measured one estimates, from the simulation's "
            "record of which returns only a message caused"
        )
    return Panel(
        "Holdout lift",
        "Share of customers who ordered within the horizon after being planned a marketing "
        "action (treated) or held back in the control group (holdout), with 95% intervals; "
        "a difference whose interval crosses the dashed zero line is not yet a proven effect.",
        svg,
        note[:1].upper() + note[1:],
        program_table(f),
    )


def _surveys(f: ShopFigures, cid: str) -> Panel:
    scores = f.surveys[-12:]
    nps = not scores or scores[0].scale == "nps"
    rows = [(f"{s.group} · {s.n:,}", s.value, s.low, s.high) for s in scores]
    svg = charts.intervals(
        cid,
        "NPS by month" if nps else "CSAT by month",
        rows,
        low=-100.0 if nps else 0.0,
        high=100.0,
        fmt=lambda v: f"{v:+.0f}" if nps else f"{v:.0f}%",
        reference=0.0 if nps else None,
    )
    note = "" if scores else "No survey answers yet (the survey program is off, or unanswered)."
    how = (
        "Net Promoter Score (% promoters 9-10 minus % detractors 0-6) of the answers given each "
        "month, with how many answered and its 95% interval from the multinomial variance"
        if nps
        else "Share of satisfied answers (4 or 5 of 5) each month, with how many answered and "
        "its 95% Wilson interval"
    )
    table: list[list[str]] = []
    if f.survey_cohorts:
        name = "NPS" if nps else "CSAT"
        table.append(["first order in", "answers", name, "95% interval"])
        for c in f.survey_cohorts[-12:]:
            cells = [f"{v:+.0f}" if nps else f"{v:.0f}%" for v in (c.value, c.low, c.high)]
            table.append([c.group, f"{c.n:,}", cells[0], f"{cells[1]} to {cells[2]}"])
    return Panel("Customer satisfaction", how + "; below, by cohort.", svg, note, table)


def _points(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:+.1f}"


def program_table(f: ShopFigures) -> list[list[str]]:
    """The lift per marketing program: measured, and with a simulation the truth beside it
    (a header row first; empty when no program had an observed candidate)."""
    if not f.lift.programs:
        return []
    header = ["program", "treated (back)", "holdout (back)", "measured lift, points (95% CI)"]
    if f.lift.simulated:
        header += [
            "true lift, points (simulation)",
            "uplift set (simulation)",
            "extra orders, their revenue (simulation)",
            "discounts, of which on orders that came anyway (simulation)",
        ]
    rows = [header]
    for p in f.lift.programs:
        lift = p.lift
        row = [
            p.kind.replace("_", " "),
            f"{lift.treated:,} ({lift.treated_returned:,})",
            f"{lift.holdout:,} ({lift.holdout_returned:,})",
            f"{_points(lift.difference)} ({_points(lift.low)} to {_points(lift.high)})",
        ]
        if f.lift.simulated:
            t = p.truth
            row.append(_points(p.true_difference))
            if t is None:  # none of its messages reached anyone
                row += ["–", "no message", "–"]
            else:
                row += [
                    f"{t.uplift.probability:.0%} within {t.uplift.window_days:g} days",
                    f"{t.incremental_orders:,}, {money(t.incremental_revenue.amount, f.currency)}",
                    f"{money(t.discount_cost.amount, f.currency)}, "
                    f"{money(t.discount_on_baseline.amount, f.currency)}",
                ]
        rows.append(row)
    return rows


def _section(f: ShopFigures, n: int) -> Section:
    anchor = f"shop{n}"
    panels = [
        _cohorts(f, f"{anchor}-cohorts"),
        _counts(
            f"{anchor}-stages",
            "Lifecycle stages",
            "Customers by where they are in their life with the shop today; at risk and lapsed "
            "are measured against each customer's own buying rhythm.",
            f.stages,
        ),
        _counts(
            f"{anchor}-rfm",
            "RFM groups",
            "Customers by recency, frequency and money scores (quintiles within the shop), "
            "grouped as Shopify names them.",
            f.rfm,
        ),
        *_loyalty_panels(f, anchor),
        _actions(f, f"{anchor}-actions"),
        _rates(f, f"{anchor}-rates"),
        _values(f, f"{anchor}-values"),
        _lift(f, f"{anchor}-lift"),
        _surveys(f, f"{anchor}-surveys"),
    ]
    return Section(anchor, f, _tiles(f), panels)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("shopsync.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    return env


def render(shops: list[ShopFigures], as_of: dt.datetime) -> str:
    """The report's HTML for already computed figures."""
    try:
        release = version("shopsync")
    except PackageNotFoundError:  # running from a source tree that is not installed
        release = ""
    sections = [_section(f, n) for n, f in enumerate(shops, start=1)]
    template = _environment().get_template("report.html.j2")
    return template.render(sections=sections, as_of=as_of, release=release)


def report_figures(
    store: Store,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    planned: Plan | None = None,
    tiers: Mapping[tuple[str, str], Mapping[str, str | None]] | None = None,
    lift_plans: int = 4,
    lift_on: Sequence[dt.datetime] | None = None,
    horizon: dt.timedelta = dt.timedelta(days=30),
    truth: Mapping[tuple[str, str], Truth] | None = None,
) -> list[ShopFigures]:
    """The figures of every shop in ``store``, as :func:`write_report` takes them."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    as_of = as_of.astimezone(dt.timezone.utc)
    policy = policy or Policy()
    if planned is None:
        planned = plan(store, policy, as_of)
    return [
        shop_figures(
            store,
            platform,
            shop,
            as_of=as_of,
            policy=policy,
            planned=planned,
            tiers=(tiers or {}).get((platform, shop)),
            lift_plans=lift_plans,
            lift_on=lift_on,
            horizon=horizon,
            truth=(truth or {}).get((platform, shop)),
        )
        for platform, shop in store.shops()
    ]


def write_report(
    store: Store,
    path: Path,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    planned: Plan | None = None,
    tiers: Mapping[tuple[str, str], Mapping[str, str | None]] | None = None,
    lift_plans: int = 4,
    lift_on: Sequence[dt.datetime] | None = None,
    horizon: dt.timedelta = dt.timedelta(days=30),
    truth: Mapping[tuple[str, str], Truth] | None = None,
    figures: list[ShopFigures] | None = None,
) -> Path:
    """Write the report of every shop in ``store`` as of ``as_of`` (aware) to ``path``.

    ``planned`` reuses a plan of the whole store made at ``as_of`` with ``policy``, and
    ``tiers`` the tiers :func:`shopsync.loyalty.update_ledger` derived then, per
    ``(platform, shop)``;
    without them the report works them out itself (a few seconds on a large shop).
    ``lift_plans`` is how many weekly plans the holdout comparison replays per shop: more
    give a tighter interval, and each costs about as much as one plan; ``lift_on`` gives
    the plan dates instead, and ``horizon`` how long after each a return counts.
    ``truth`` is the :class:`~shopsync.testing.simulation.Truth` of simulated shops, per
    ``(platform, shop)``: their lift by program then shows the true value beside the
    measured one, marked as simulation (a real shop has none, and shows none).
    ``figures`` are already computed by :func:`report_figures` (the other arguments are
    then unused but ``as_of``).
    """
    if figures is None:
        figures = report_figures(
            store,
            as_of=as_of,
            policy=policy,
            planned=planned,
            tiers=tiers,
            lift_plans=lift_plans,
            lift_on=lift_on,
            horizon=horizon,
            truth=truth,
        )
    path = Path(path)
    path.write_text(render(figures, as_of.astimezone(dt.timezone.utc)), encoding="utf-8")
    return path
