"""NPS and CSAT figures with their confidence intervals, over time and by cohort (issue 22).

Pure: takes the answers as a frame (``answered_at`` micros, ``scale``, ``score``, ``cohort``)
and returns one :class:`SurveyScore` per group.

- **NPS** = 100 × (p − d), p and d the shares of promoters (9-10) and detractors (0-6).
  Its variance follows from the multinomial (categorical) distribution of the three bands:
  Var(p − d) = [p(1 − p) + d(1 − d) + 2pd] / n = [p + d − (p − d)²] / n, so the interval is
  NPS ± z · 100 · √([p + d − (p − d)²] / n) (the Wald interval; Rocks, "Interval Estimation
  for the Net Promoter Score", The American Statistician 70(4), 2016; derivation also in
  cybaea.net, "Net Promoter Score confidence intervals 2", 2016). With every answer in one
  band the estimate has no spread and the interval is a point: read it with ``n``.
- **CSAT** = 100 × the share of satisfied answers (4 or 5 of 5, the usual "top two boxes"),
  with the Wilson score interval (Wilson 1927), which stays inside 0-100 and behaves for
  small ``n`` and shares near 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

__all__ = ["Z95", "SurveyScore", "csat_score", "nps_score", "survey_scores"]

Z95 = 1.959963984540054
"""The two-sided 95 % normal quantile."""


@dataclass(frozen=True)
class SurveyScore:
    """One group's score: ``value`` is the NPS (-100..100) or the CSAT (0..100)."""

    group: str
    scale: str
    n: int
    value: float
    low: float
    high: float
    promoters: int
    passives: int
    detractors: int


def nps_score(scores: Sequence[int], group: str = "", z: float = Z95) -> SurveyScore:
    """NPS of 0-10 scores with its Wald interval (module docstring)."""
    n = len(scores)
    if n == 0:
        raise ValueError("no answers")
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    p, d = promoters / n, detractors / n
    value = 100 * (p - d)
    half = z * 100 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return SurveyScore(
        group,
        "nps",
        n,
        value,
        max(value - half, -100.0),
        min(value + half, 100.0),
        promoters,
        n - promoters - detractors,
        detractors,
    )


def csat_score(scores: Sequence[int], group: str = "", z: float = Z95) -> SurveyScore:
    """CSAT (share of 4-5 of 1-5 scores) with its Wilson interval (module docstring)."""
    n = len(scores)
    if n == 0:
        raise ValueError("no answers")
    satisfied = sum(1 for s in scores if s >= 4)
    share = satisfied / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return SurveyScore(
        group,
        "csat",
        n,
        100 * share,
        100 * max(centre - half, 0.0),
        100 * min(centre + half, 1.0),
        sum(1 for s in scores if s >= 5),
        sum(1 for s in scores if s in (3, 4)),
        sum(1 for s in scores if s <= 2),
    )


def survey_scores(
    answers: pl.DataFrame,
    scale: str,
    *,
    by: Literal["month", "quarter", "cohort"] = "month",
    z: float = Z95,
) -> list[SurveyScore]:
    """One score per month or quarter of ``answered_at`` (UTC), or per ``cohort`` (the month
    of the customer's first order; answers without one are left out), oldest first."""
    rows = answers.filter(pl.col("scale") == scale)
    if by == "cohort":
        rows = rows.filter(pl.col("cohort").is_not_null()).with_columns(
            pl.col("cohort").alias("group")
        )
    else:
        at = pl.col("answered_at").cast(pl.Datetime("us", "UTC"))
        label = at.dt.strftime("%Y-%m")
        if by == "quarter":
            label = pl.format("{}-Q{}", at.dt.year(), at.dt.quarter())
        rows = rows.with_columns(label.alias("group"))
    score = nps_score if scale == "nps" else csat_score
    groups = rows.group_by("group").agg(pl.col("score")).sort("group")
    return [score(list(s), str(g), z) for g, s in groups.iter_rows()]
