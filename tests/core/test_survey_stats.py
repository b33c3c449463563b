"""NPS and CSAT with their confidence intervals on hand-built answers
(shopsync.core.survey_stats): the multinomial Wald interval of the NPS, Wilson for CSAT,
grouped by month, quarter and cohort."""

from __future__ import annotations

import datetime as dt
import math
import random

import polars as pl
import pytest

from shopsync._instants import to_micros
from shopsync.core.survey_stats import Z95, csat_score, nps_score, survey_scores

UTC = dt.timezone.utc


def test_nps_and_its_interval_by_hand() -> None:
    # 50 promoters, 30 passives, 20 detractors: NPS 30; p + d - (p - d)^2 = 0.7 - 0.09 = 0.61
    scores = [10] * 50 + [7] * 30 + [3] * 20
    got = nps_score(scores)
    assert got.value == pytest.approx(30.0)
    half = Z95 * 100 * math.sqrt(0.61 / 100)
    assert half == pytest.approx(15.31, abs=0.01)
    assert got.low == pytest.approx(30 - half) and got.high == pytest.approx(30 + half)
    assert (got.promoters, got.passives, got.detractors, got.n) == (50, 30, 20, 100)


def test_the_nps_interval_is_the_variance_of_p_minus_d() -> None:
    """Var(p - d) = [p(1-p) + d(1-d) + 2pd] / n, the same as [p + d - (p - d)^2] / n, and
    near what simulated surveys spread by (a check of the formula, not of our arithmetic)."""
    p, d, n = 0.45, 0.25, 400
    closed = (p * (1 - p) + d * (1 - d) + 2 * p * d) / n
    assert closed == pytest.approx((p + d - (p - d) ** 2) / n)
    rng = random.Random(7)
    draws = []
    for _ in range(2000):
        picks = rng.choices([10, 8, 0], weights=[p, 1 - p - d, d], k=n)
        draws.append(nps_score(picks).value / 100)
    mean = sum(draws) / len(draws)
    variance = sum((x - mean) ** 2 for x in draws) / (len(draws) - 1)
    assert variance == pytest.approx(closed, rel=0.1)


def test_nps_bands_and_bounds() -> None:
    assert nps_score([9, 10]).value == 100 and nps_score([0, 6]).value == -100
    assert nps_score([7, 8]).value == 0
    one_band = nps_score([10] * 5)
    assert one_band.low == one_band.high == 100  # no spread: a point, read it with n
    assert nps_score([0, 10]).low >= -100 and nps_score([0, 10]).high <= 100
    with pytest.raises(ValueError):
        nps_score([])


def test_csat_is_the_share_of_four_and_five_with_a_wilson_interval() -> None:
    got = csat_score([5, 4, 3, 2, 1, 5, 5, 4, 4, 1])
    assert got.value == pytest.approx(60.0)
    # Wilson, n=10, p=0.6: 0.313 to 0.832 (textbook value)
    assert got.low == pytest.approx(31.27, abs=0.01) and got.high == pytest.approx(83.18, abs=0.01)
    assert (got.promoters, got.passives, got.detractors) == (3, 4, 3)
    assert csat_score([5]).high == 100.0 and csat_score([1]).low == 0.0


def frame(rows: list[tuple[dt.datetime, str, int, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(to_micros(at), scale, score, cohort) for at, scale, score, cohort in rows],
        schema={
            "answered_at": pl.Int64,
            "scale": pl.String,
            "score": pl.Int64,
            "cohort": pl.String,
        },
        orient="row",
    )


def test_grouped_by_month_quarter_and_cohort() -> None:
    answers = frame(
        [
            (dt.datetime(2024, 1, 31, 23, 59, tzinfo=UTC), "nps", 10, "2023-05"),
            (dt.datetime(2024, 2, 1, 0, 0, tzinfo=UTC), "nps", 0, "2023-05"),
            (dt.datetime(2024, 2, 3, tzinfo=UTC), "nps", 9, None),
            (dt.datetime(2024, 4, 3, tzinfo=UTC), "nps", 8, "2024-01"),
            (dt.datetime(2024, 4, 3, tzinfo=UTC), "csat", 5, "2024-01"),
        ]
    )
    months = survey_scores(answers, "nps")
    assert [(s.group, s.n, s.value) for s in months] == [
        ("2024-01", 1, 100.0),
        ("2024-02", 2, 0.0),
        ("2024-04", 1, 0.0),
    ]
    quarters = survey_scores(answers, "nps", by="quarter")
    assert [(s.group, s.n) for s in quarters] == [("2024-Q1", 3), ("2024-Q2", 1)]
    cohorts = survey_scores(answers, "nps", by="cohort")
    assert [(s.group, s.n) for s in cohorts] == [("2023-05", 2), ("2024-01", 1)]
    [csat] = survey_scores(answers, "csat")
    assert (csat.group, csat.scale, csat.value) == ("2024-04", "csat", 100.0)
    assert survey_scores(answers.clear(), "nps") == []
