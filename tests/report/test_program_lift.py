"""The report's per-program holdout lift and its simulated truth, on hand-made records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from shopsync.backtest import Lift, Planned
from shopsync.models import Money
from shopsync.report import program_table, render, report_figures
from shopsync.report.figures import ShopFigures, program_lifts, true_differences
from shopsync.store import Store
from shopsync.testing.simulation import Exposure, SimulatedPurchase, Truth, Uplift
from tests.report.conftest import AS_OF, SHOPS, fill

UTC = dt.timezone.utc
T = dt.datetime(2026, 1, 1, tzinfo=UTC)
H = dt.timedelta(days=14)


def _r(kind: str, cid: str, group: str, returned: bool | None, *, at: dt.datetime = T) -> Planned:
    return Planned(
        at=at,
        kind=kind,
        platform="shopify",
        shop="s.example",
        customer_id=cid,
        idempotency_key=f"{kind}:{cid}:{at:%F}",
        marketing=kind != "loyalty_award",
        group=group,  # type: ignore[arg-type]
        returned=returned,
    )


def _records() -> list[Planned]:
    # win-back: 4 treated who all came back, 3 held out who did not
    records = [_r("winback", f"w{i}", "planned", True) for i in range(4)]
    records += [_r("winback", f"h{i}", "holdout", False) for i in range(3)]
    # review requests: 2 treated (1 back), 2 held out (1 back); one of the win-back
    # customers is also a review candidate, and counts in both programs
    records += [
        _r("review_request", "r0", "planned", True),
        _r("review_request", "w0", "planned", False),
    ]
    records += [
        _r("review_request", "q0", "holdout", True),
        _r("review_request", "q1", "holdout", False),
    ]
    records.append(_r("loyalty_award", "w1", "planned", True))  # not marketing: no program row
    records.append(_r("winback", "late", "planned", None))  # censored: counts nowhere
    return records


def test_a_program_whose_treated_all_came_back_against_a_holdout_that_did_not() -> None:
    lifts = program_lifts(_records())
    assert list(lifts) == ["review_request", "winback"]
    win = lifts["winback"]
    assert (win.treated, win.treated_returned, win.holdout, win.holdout_returned) == (4, 4, 3, 0)
    assert win.difference == 1.0 and win.low > 0  # proven even with seven customers
    review = lifts["review_request"]
    assert (review.treated, review.treated_returned) == (2, 1)
    assert (review.holdout, review.holdout_returned) == (2, 1)
    assert review.difference == 0.0 and review.low < 0 < review.high


def test_a_customer_back_at_any_of_their_dates_counts_once_as_back() -> None:
    later = T + dt.timedelta(days=7)
    records = [
        _r("winback", "a", "planned", False),
        _r("winback", "a", "delayed", True, at=later),  # capped, still in the treated group
        _r("winback", "b", "holdout", False),
    ]
    lift = program_lifts(records)["winback"]
    assert (lift.treated, lift.treated_returned, lift.holdout) == (1, 1, 1)


def _truth(*purchases: tuple[str, dt.timedelta, bool]) -> Truth:
    truth = Truth("USD", {"winback": Uplift(0.5, 14)}, Uplift(0.0))
    for n, (cid, after, incremental) in enumerate(purchases):
        truth.purchases.append(
            SimulatedPurchase(
                f"o{n}",
                cid,
                T + after,
                Money.of("20.00", "USD"),
                Money.of("2.00", "USD"),
                incremental,
                "winback" if incremental else None,
                None,
            )
        )
    return truth


def test_the_true_difference_counts_returns_that_only_the_message_caused() -> None:
    day = dt.timedelta(days=1)
    truth = _truth(
        ("w0", 3 * day, True),  # back only because of the message
        ("w1", 3 * day, True),  # ... but would have come back anyway on day 5
        ("w1", 5 * day, False),
        ("w2", 20 * day, True),  # after the horizon: no change to what is measured
        ("w3", 2 * day, False),
        ("h0", 4 * day, True),  # held-out customers are not in the treated group
    )
    true = true_differences(_records(), truth, H)
    assert true["winback"] == 1 / 4
    assert true["review_request"] == 1 / 2  # w0 is a review candidate too: what is measured
    true = true_differences(_records(), _truth(("r0", day, True), ("w0", day, True)), H)
    assert true == {"review_request": 1.0, "winback": 1 / 4}


def test_the_report_shows_the_truth_column_for_a_simulated_shop_only(tmp_path: Path) -> None:
    store = fill(Store(f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        truth = _truth()
        for kind in ("winback", "review_request", "replenishment"):
            truth.exposures.append(
                Exposure("nobody", kind, AS_OF, "direct", kind, None, False, None)
            )
        simulated = (SHOPS[0][0], SHOPS[0][1])
        figures = report_figures(store, as_of=AS_OF, lift_plans=2, truth={simulated: truth})
    finally:
        store.close()
    real = next(f for f in figures if (f.platform, f.shop) != simulated)
    sim = next(f for f in figures if (f.platform, f.shop) == simulated)
    assert sim.lift.simulated and not real.lift.simulated
    assert sim.lift.programs and real.lift.programs  # both shops have program rows
    for f in (sim, real):
        lifts = program_lifts_of(f)
        assert set(lifts) <= {
            "winback",
            "review_request",
            "replenishment",
            "warranty_notice",
            "review_reminder",
            "loyalty_tier_change",
            "loyalty_expiry_warning",
        }
    sim_table, real_table = program_table(sim), program_table(real)
    assert any("(simulation)" in h for h in sim_table[0])
    assert not any("simulation" in h for h in real_table[0])
    assert all(len(row) == len(sim_table[0]) for row in sim_table)
    for row in sim_table[1:]:
        float(row[4])  # the true lift is a number: no truth of that program means 0 changed
    html = render(figures, AS_OF)
    first, second = html.split('id="shop2"')
    assert "true lift, points (simulation)" in first and "simulation" not in second
    assert "measured lift, points" in second


def program_lifts_of(f: ShopFigures) -> dict[str, Lift]:
    return {p.kind: p.lift for p in f.lift.programs}
