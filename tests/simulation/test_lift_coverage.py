"""The holdout lift checked against the simulated truth, over the whole loop (sync, plan,
apply, advance, sync).

By default one small run (a strong effect, so the tiny sample still measures it) checks the
plumbing: the truth is computed on the same treated group the lift counts, and the lift's
interval holds it. ``SHOPSYNC_SIMULATION_RUNS=N`` runs N seeds with a true win-back uplift
of 30 % and N seeds with no effect at all (about 25 s of CPU each on 1,000 customers) and
checks the coverage of the 95 % interval and that a null program is rarely "proven".
"""

from __future__ import annotations

import datetime as dt
import math
import os

import pytest

from shopsync.testing import Uplift
from shopsync.testing.experiment import ExperimentResult, run_experiment

RUNS = int(os.environ.get("SHOPSYNC_SIMULATION_RUNS", "0") or 0)


def test_one_small_run_measures_a_strong_effect_against_its_truth() -> None:
    result = run_experiment(
        1,
        uplift={"winback": Uplift(1.0, window_days=14)},
        customers=500,
        years=1.5,
        weeks=2,
        horizon=dt.timedelta(days=21),
    )
    lift = result.lift
    assert lift.sent and lift.treated > 10 and lift.holdout > 10
    treated = {
        r.customer_id
        for r in result.backtest.planned
        if r.marketing and r.group != "holdout" and r.returned is not None
    }
    assert len(treated) == lift.treated  # the truth is computed on the lift's own group
    winback = result.truth.programs()["winback"]
    assert winback.incremental_orders > 0 and winback.discount_cost.amount > 0
    assert 0 < result.true_difference <= lift.treated_returned / lift.treated
    assert result.covered, (str(lift), result.true_difference)


def runs(uplift: float) -> list[ExperimentResult]:
    return [
        run_experiment(100 + k, uplift={"winback": Uplift(uplift, window_days=21)}, customers=1000)
        for k in range(RUNS)
    ]


def binomial_floor(n: int, p: float) -> int:
    """Fewest successes of Binomial(n, p) seen with probability at least 99 % (normal
    approximation, continuity corrected): below it the coverage is really short of p."""
    return max(0, math.floor(n * p - 2.33 * math.sqrt(n * p * (1 - p)) - 0.5))


@pytest.mark.skipif(RUNS == 0, reason="set SHOPSYNC_SIMULATION_RUNS=N to run N seeds")
def test_the_interval_covers_the_true_uplift_in_about_95_percent_of_runs() -> None:
    found = runs(0.3)
    covered = sum(r.covered for r in found)
    print(f"\ncoverage with a true win-back uplift of 30 %: {covered}/{len(found)}")
    for r in found:
        print(f"  seed {r.seed}: {r.lift}; true {100 * r.true_difference:+.1f} points")
    assert covered >= binomial_floor(len(found), 0.95)
    assert sum(r.true_difference for r in found) > 0


@pytest.mark.skipif(RUNS == 0, reason="set SHOPSYNC_SIMULATION_RUNS=N to run N seeds")
def test_a_program_without_effect_is_rarely_proven() -> None:
    found = runs(0.0)
    proven = sum(r.proven for r in found)
    covered = sum(r.covered for r in found)
    print(f"\nno true effect: proven in {proven}/{len(found)}, covered in {covered}/{len(found)}")
    assert all(r.true_difference == 0 for r in found)
    # one-sided: a 95 % interval lies wholly above zero in 2.5 % of null runs
    assert len(found) - proven >= binomial_floor(len(found), 0.975)
