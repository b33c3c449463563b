from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import shopsync.cli
import shopsync.demo
from shopsync.cli import app
from shopsync.demo import DEMO_UPLIFT, WEEKS, DemoResult, run_demo
from shopsync.models import Order
from shopsync.report import CHARTS, program_table
from shopsync.store import Store


@pytest.mark.slow(seconds=45)
def test_the_demo_from_the_shell_syncs_both_shops_prints_their_figures_and_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One demo run (``shopsync demo``, the command a user types) for everything the suite
    asks of the demo: a run takes about 13 s of the suite's time, and three tests ran it.
    ``run_demo`` is wrapped, not replaced, to keep its result for the checks."""
    results: list[DemoResult] = []

    def recorded(db: Path, console: Console, **options: Any) -> DemoResult:
        results.append(run_demo(db, console, **options))
        return results[-1]

    monkeypatch.setattr(shopsync.demo, "run_demo", recorded)
    # wide enough for the lift tables' rows to stay on one line each (checked below); the
    # CLI's console exists already when another test of this process imported the CLI first,
    # so its width is set, not only the COLUMNS it reads when it is made (CI saw 80 columns)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(shopsync.cli.console, "_width", 200)
    db = tmp_path / "demo.db"
    ran = CliRunner().invoke(app, ["demo", "--db", str(db), "--scale", "0.1"])
    assert ran.exit_code == 0, ran.output
    [result] = results
    text = ran.output
    check_the_shell_output_and_the_commands_on_its_store(text, db, tmp_path)
    check_the_shops_plans_and_figures(result, text, db)
    check_the_report(result, text, tmp_path)


def check_the_shell_output_and_the_commands_on_its_store(text: str, db: Path, tmp: Path) -> None:
    assert "shopsync demo" in text and "woocommerce" in text
    # the terminal's figures say which window they cover, and why the report's differ
    assert "repeat-purchase rate, all time" in text
    assert "twelve months up to the last month end" in text
    assert "deliveries to 3 sinks" in text and " recorded," not in text
    assert Store(f"sqlite:///{db}").schema_version() == Store.head_version()
    planned = CliRunner().invoke(app, ["plan", "--db", f"sqlite:///{db}"])
    assert planned.exit_code == 0, planned.output
    assert "planned" in planned.output and "held back" in planned.output
    bad = CliRunner().invoke(app, ["plan", "--db", f"sqlite:///{db}", "--as-of", "yesterday"])
    assert bad.exit_code != 0
    out = tmp / "again.jsonl"
    dry = CliRunner().invoke(
        app, ["apply", "--db", f"sqlite:///{db}", "--jsonl", str(out), "--dry-run"]
    )
    assert dry.exit_code == 0 and "dry run" in dry.output and not out.exists()
    listed = CliRunner().invoke(
        app, ["outbox", "list", "--db", f"sqlite:///{db}", "--status", "done"]
    )
    assert listed.exit_code == 0 and "done" in listed.output


def check_the_shops_plans_and_figures(result: DemoResult, text: str, db: Path) -> None:
    assert [s.platform for s in result.shops] == ["shopify", "woocommerce"]
    store = Store(f"sqlite:///{db}")
    for shop in result.shops:
        assert shop.sync.total("quarantined") == 0
        # the first sync took the generated history; the simulated weeks added orders to it
        first = shop.sync.resources["orders"].seen
        assert store.count(Order, shop.platform, shop.shop) > first > 0
        assert 0 < shop.buyers <= shop.customers
        assert shop.points_approved + shop.points_pending > 0
    store.close()
    for label in ("repeat-purchase rate", "average order value", "points pending / approved"):
        assert label in text
    assert len(result.plan) > 0 and result.applied.parked == 0
    lines = result.actions_file.read_text().splitlines()
    keys = {json.loads(line)["idempotency_key"] for line in lines}
    assert len(lines) == len(keys)  # each action written once over all the weeks
    assert {a.idempotency_key for a in result.plan} <= keys
    assert len(result.plans) == len(result.plan_dates) == WEEKS
    # the lift of each program beside the simulation's truth
    assert set(result.truth) == {(s.platform, s.shop) for s in result.shops}
    treated = sum(t.treated for truth in result.truth.values() for t in truth.programs().values())
    assert treated > 0  # the messages reached the simulated customers
    assert "winback" in next(iter(result.truth.values())).programs()
    for figures in result.figures:
        assert figures.lift.simulated
        # the feed reached the customers: the lift counts real sends, not a replay
        assert figures.lift.lift is not None and figures.lift.lift.sent
        kinds = {p.kind for p in figures.lift.programs}
        assert "winback" in kinds
        rows = program_table(figures)
        assert rows[0][4] == "true lift, points (simulation)"
        for row in rows[1:]:
            float(row[3].split(" ")[0].replace("–", "nan"))  # measured, or a dash
            float(row[4])  # the true value is a number
        for p in figures.lift.programs:
            assert p.truth is None or p.truth.uplift == DEMO_UPLIFT.get(p.kind, p.truth.uplift)
    assert text.count("(simulation: the true values are known)") == 2
    for figures in result.figures:  # the summary prints each row as the report has it
        for row in program_table(figures)[1:]:
            assert " │ ".join(c.strip() for c in row[:5]) in " │ ".join(
                c.strip() for c in text.replace("┃", "│").split("│")
            )
    html = result.report.read_text()
    assert html.count("true lift, points (simulation)") == 2
    # the NPS survey: planned, delivered to the feed, answered by the simulated customers
    assert any(p.counts.get("survey_request") for p in result.plans)
    assert set(result.satisfaction) <= {(s.platform, s.shop) for s in result.shops}
    for (platform, name), nps in result.satisfaction.items():
        assert nps.n > 0 and nps.low <= nps.value <= nps.high
        assert f"NPS survey, {platform} {name}: {nps.value:+.0f}" in text
    assert result.satisfaction, "no simulated customer answered a survey"
    # browse abandonment: the shops' storefronts posted their carts to the signed endpoint
    # over HTTP, the identified visitors' ones became reminders, in the summary and the lift
    assert set(result.browse) == {s.platform for s in result.shops}
    for platform, posted in result.browse.items():
        assert posted.refused == 0 and posted.stored > 0 and posted.identified > 0
        assert f"browse events, {platform}: {posted.stored:,} stored" in text
    reminded = sum(p.counts.get("browse_abandonment", 0) for p in result.plans)
    assert reminded > 0
    assert f"browse reminders planned over the {WEEKS} weeks: {reminded:,}" in text
    assert any("browse_abandonment" in {p.kind for p in f.lift.programs} for f in result.figures)
    assert "browse abandonment" in html  # its row of the report's lift table


def check_the_report(result: DemoResult, text: str, tmp: Path) -> None:
    """``shopsync demo`` writes the report beside its store and says where."""
    assert result.report == tmp / "demo.html"
    html = result.report.read_text(encoding="utf-8")
    for n in (1, 2):
        for name in CHARTS:
            assert f'id="shop{n}-{name}"' in html
    assert f"report: {result.report}" in text


def test_a_simulated_shop_in_a_child_reads_a_message_once_and_reports_failures() -> None:
    from shopsync.errors import ConfigurationError
    from shopsync.testing.behaviour import CDNOW
    from shopsync.testing.remote_simulation import Message, simulate_in_processes
    from shopsync.testing.simulation import Uplift

    shop = {"customers": 40, "products": 5, "years": 1.0, "buying": CDNOW}
    with simulate_in_processes({"shopify": shop}, uplift={"winback": Uplift(1.0, 7)}) as sims:
        sim = sims["shopify"]
        start = sim.now
        customer = "1000001"
        message = Message(customer, "winback", "winback:key:1")
        sim.receive([message])
        sim.receive([message, message])  # delivered again: read once
        assert sim.advance(days=8) == start + dt.timedelta(days=8)
        truth = sim.truth()
    assert [e.customer_id for e in truth.exposures] == [customer]
    assert [p.customer_id for p in truth.incremental("winback")] == [customer]  # uplift 1.0
    failing = simulate_in_processes({"shopify": {"customers": 5}}, uplift={})
    with pytest.raises(ConfigurationError, match="no buyers"), failing:
        pass
