"""Tests for shopsync.clv: published CDNOW estimates, the closed forms, input checks."""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from shopsync import ShopSyncError, _clv_likelihood, clv

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)  # 39 weeks, as in Fader, Hardie & Lee (2005)


@cache
def cdnow_transactions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = np.loadtxt(CDNOW, dtype=str)
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    return raw[:, 0], dates, raw[:, 4].astype(float)


@cache
def cdnow() -> clv.RfmSummary:
    ids, dates, values = cdnow_transactions()
    return clv.summary_from_transactions(ids, dates, values, as_of=CALIBRATION_END, period="W")


@cache
def cdnow_bgnbd() -> clv.BgNbdParams:
    s = cdnow()
    return clv.fit_bgnbd(s.frequency, s.recency, s.T)


# --------------------------------------------------------------------------- CDNOW


def test_cdnow_summary_matches_the_paper_data() -> None:
    s = cdnow()
    assert s.customer_id.size == 2357
    assert int((s.frequency > 0).sum()) == 946  # repeat buyers in Hardie's Gamma-Gamma note
    assert s.T.max() == pytest.approx(272 / 7)  # 1997-01-01 .. 1997-09-30
    first = s.customer_id.tolist().index("00004")
    assert s.frequency[first] == 2
    assert s.recency[first] == pytest.approx(213 / 7)
    assert s.monetary_value is not None
    assert s.monetary_value[first] == pytest.approx((29.73 + 14.96) / 2)


def test_bgnbd_reproduces_published_cdnow_estimates() -> None:
    p = cdnow_bgnbd()
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )
    assert p.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert p.n_customers == 2357


def test_gamma_gamma_reproduces_published_cdnow_estimates() -> None:
    s = cdnow()
    assert s.monetary_value is not None
    g = clv.fit_gamma_gamma(s.frequency, s.monetary_value)
    assert (round(g.p, 2), round(g.q, 2), round(g.v, 2)) == (6.25, 3.74, 15.44)
    assert g.n_customers == 946


def test_mbgnbd_on_cdnow() -> None:
    s = cdnow()
    p = clv.fit_mbgnbd(s.frequency, s.recency, s.T)
    # Regression values; lifetimes 0.11.3 ModifiedBetaGeoFitter gives the same to 6 digits.
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (
        0.525,
        6.183,
        0.891,
        1.614,
    )
    alive = clv.probability_alive(p, s.frequency, s.recency, s.T)
    one_timers = s.frequency == 0
    assert np.all(alive[one_timers] < 1)
    assert np.all(
        clv.probability_alive(cdnow_bgnbd(), s.frequency, s.recency, s.T)[one_timers] == 1
    )


def test_fit_is_deterministic_and_accepts_any_array_like() -> None:
    s = cdnow()
    again = clv.fit_bgnbd(s.frequency.tolist(), pl.Series(s.recency), tuple(s.T))
    assert again == cdnow_bgnbd()


def test_large_fits_take_the_pilot_path_to_the_same_optimum() -> None:
    # Repeating every customer 40 times leaves the maximum-likelihood estimate unchanged.
    s = cdnow()
    big = clv.fit_bgnbd(np.tile(s.frequency, 40), np.tile(s.recency, 40), np.tile(s.T, 40))
    assert big.n_customers > 4 * _clv_likelihood._PILOT_SIZE
    small = cdnow_bgnbd()
    for name in ("r", "alpha", "a", "b"):
        assert getattr(big, name) == pytest.approx(getattr(small, name), rel=1e-5)


def test_expected_purchases_worked_example() -> None:
    # x = 2, t_x = 30.43, T = 38.86 weeks: 1.23 purchases in the next 39 weeks (as lifetimes).
    e = clv.expected_purchases(cdnow_bgnbd(), [2], [30.43], [38.86], t=39)
    assert e[0] == pytest.approx(1.2259, abs=1e-4)


def test_clv_matches_lifetimes_conventions() -> None:
    # lifetimes 0.11.3 customer_lifetime_value(time=12, discount_rate=0.01, freq="W") on its
    # own CDNOW fit gives 36.27398, 8.41796, 4.64094 for these three customers.
    s = cdnow()
    assert s.monetary_value is not None
    g = clv.fit_gamma_gamma(s.frequency, s.monetary_value)
    value = clv.customer_lifetime_value(
        cdnow_bgnbd(),
        g,
        s.frequency[:3],
        s.recency[:3],
        s.T[:3],
        s.monetary_value[:3],
        horizon=12 * 4.345,
        step=4.345,
        discount_rate=0.01,
    )
    np.testing.assert_allclose(value, [36.27398, 8.41796, 4.64094], rtol=1e-5)


def test_clv_without_discount_is_expected_purchases_times_order_value() -> None:
    s = cdnow()
    assert s.monetary_value is not None
    g = clv.fit_gamma_gamma(s.frequency, s.monetary_value)
    args = (s.frequency, s.recency, s.T)
    value = clv.customer_lifetime_value(
        cdnow_bgnbd(), g, *args, s.monetary_value, horizon=52, step=5, discount_rate=0.0
    )
    expected = clv.expected_purchases(cdnow_bgnbd(), *args, t=52) * clv.expected_order_value(
        g, s.frequency, s.monetary_value
    )
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    zero = clv.customer_lifetime_value(
        cdnow_bgnbd(), g, *args, s.monetary_value, horizon=0, step=1, discount_rate=0.01
    )
    assert np.all(zero == 0)


def test_expected_order_value_shrinks_towards_the_population_mean() -> None:
    g = clv.GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n_customers=1)
    population = 6.25 * 15.44 / (3.74 - 1)
    values = clv.expected_order_value(g, [0, 1, 100], [0, 100.0, 100.0])
    assert values[0] == pytest.approx(population)
    assert population < values[1] < values[2] < 100


# --------------------------------------------------------------------------- closed forms


def direct_expected(params: clv.PurchaseParams, t: float, x: float, t_x: float, T: float) -> float:
    """FHL 2005 eq. 10 (and its MBG/NBD analogue) as printed, without Euler's transformation."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    k = 0 if isinstance(params, clv.BgNbdParams) else 1
    c = a + b + x + k - 1
    z = t / (alpha + T + t)
    head = (
        c
        / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x + k, c, z))
    )
    odds = a / (b + x + k - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return float(head / (1 + (odds if x > 0 or k == 1 else 0.0)))


@pytest.mark.parametrize("kind", [clv.BgNbdParams, clv.MbgNbdParams])
@pytest.mark.parametrize("a", [0.79, 1.7])
def test_expected_purchases_match_the_printed_formula(kind: type, a: float) -> None:
    params = kind(r=0.24, alpha=4.4, a=a, b=2.4, log_likelihood=0.0, n_customers=1)
    rows = [(0, 0.0, 30.0), (1, 3.0, 20.0), (7, 30.0, 38.0), (20, 38.0, 39.0)]
    for t in (0.5, 39.0, 150.0):
        got = clv.expected_purchases(params, *zip(*rows, strict=True), t=t)
        want = [direct_expected(params, t, *row) for row in rows]
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_expected_purchases_are_continuous_at_a_equal_one() -> None:
    def at(a: float) -> np.ndarray:
        params = clv.BgNbdParams(0.24, 4.4, a, 2.4, 0.0, 1)
        return clv.expected_purchases(params, [0, 3], [0, 10.0], [30.0, 30.0], t=20)

    np.testing.assert_allclose(at(1.0), 0.5 * (at(1 - 1e-3) + at(1 + 1e-3)), rtol=1e-5)


# --------------------------------------------------------------------------- properties

positive = st.floats(0.05, 20.0)


@st.composite
def rfm_rows(draw: st.DrawFn, min_size: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, 40), st.floats(0.0, 1.0), st.floats(0.0, 100.0)),
            min_size=min_size,
            max_size=30,
        )
    )
    x = np.array([row[0] for row in rows], dtype=float)
    T = np.array([row[2] for row in rows])
    t_x = np.where(x > 0, np.array([row[1] for row in rows]) * T, 0.0)
    return x, t_x, T


purchase_params = st.builds(
    lambda kind, r, alpha, a, b: kind(r, alpha, a, b, 0.0, 1),
    st.sampled_from([clv.BgNbdParams, clv.MbgNbdParams]),
    positive,
    positive,
    positive,
    positive,
)


@settings(max_examples=200, deadline=None)
@given(params=purchase_params, data=rfm_rows())
def test_probability_alive_is_a_probability(params: clv.PurchaseParams, data: tuple) -> None:
    alive = clv.probability_alive(params, *data)
    assert np.all((alive >= 0) & (alive <= 1))


@settings(max_examples=100, deadline=None)
@given(
    params=purchase_params,
    data=rfm_rows(),
    times=st.lists(st.floats(0.0, 500.0), min_size=2, max_size=5),
)
def test_expected_purchases_grow_with_the_horizon(
    params: clv.PurchaseParams, data: tuple, times: list[float]
) -> None:
    curves = [clv.expected_purchases(params, *data, t=t) for t in sorted(times)]
    for earlier, later in itertools.pairwise(curves):
        assert np.all(later >= earlier - 1e-9 * (1 + np.abs(earlier)))
    assert np.all(curves[0] >= 0)


def test_expected_purchases_at_the_pole_where_a_plus_b_is_one() -> None:
    """BG/NBD with a + b = 1 and no repeat purchase puts c = a + b + x − 1 at 0, a pole of
    the hypergeometric function the closed form multiplies by c/(a − 1) = 0 (found by the
    property above): the count is the limit beside it, finite and growing with t."""
    params = clv.BgNbdParams(1.0, 1.0, 0.95, 0.05, 0.0, 1)
    rows = (np.array([0.0]), np.array([0.0]), np.array([0.0]))
    near = clv.BgNbdParams(1.0, 1.0, 0.95, 0.05 + 1e-4, 0.0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = [clv.expected_purchases(params, *rows, t=t)[0] for t in (0.0, 1.0, 10.0)]
    assert counts[0] == 0.0 and 0.0 < counts[1] < counts[2]
    assert counts[2] == pytest.approx(clv.expected_purchases(near, *rows, t=10.0)[0], rel=1e-3)


def finite_difference(f, theta: np.ndarray, h: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    steps = np.eye(theta.size) * h
    return np.array([(f(theta + e)[0] - f(theta - e)[0]) / (2 * h) for e in steps])


@settings(max_examples=60, deadline=None)
@given(
    k=st.sampled_from([0, 1]),
    theta=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4),
    data=rfm_rows(min_size=2),
)
def test_purchase_gradient_matches_finite_differences(k: int, theta: list, data: tuple) -> None:
    x, t_x, T = data
    prepared = _clv_likelihood._purchase_data(x, t_x, T, k)
    th = np.array(theta)

    def f(p: np.ndarray) -> tuple[float, np.ndarray]:
        return _clv_likelihood._purchase_loglik(p, prepared)

    np.testing.assert_allclose(f(th)[1], finite_difference(f, th), rtol=1e-5, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    theta=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
    rows=st.lists(st.tuples(st.integers(1, 30), st.floats(0.1, 500.0)), min_size=1, max_size=20),
)
def test_gamma_gamma_gradient_matches_finite_differences(theta: list, rows: list) -> None:
    x = np.array([row[0] for row in rows], dtype=float)
    m = np.array([row[1] for row in rows]) / 100

    def f(p: np.ndarray) -> tuple[float, np.ndarray]:
        return _clv_likelihood._gg_loglik(p, x, m)

    th = np.array(theta)
    np.testing.assert_allclose(f(th)[1], finite_difference(f, th), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        pytest.param([-1], [0], [5], "frequency must be >= 0", id="negative-frequency"),
        pytest.param([1.5], [1], [5], "whole number", id="fractional-frequency"),
        pytest.param([1], [-1], [5], "recency must be >= 0", id="negative-recency"),
        pytest.param([1], [6], [5], "recency must be <= T", id="recency-after-T"),
        pytest.param([0], [2], [5], "recency must be 0 when frequency is 0", id="zero-freq"),
        pytest.param([1], [1], [np.nan], "NaN or infinite", id="nan"),
        pytest.param([1, 2], [1], [5, 5], "same length", id="lengths"),
        pytest.param([[1]], [[1]], [[5]], "one-dimensional", id="2d"),
        pytest.param(["1"], [1], [5], "numeric", id="strings"),
    ],
)
def test_fit_rejects_impossible_rfm(frequency: list, recency: list, T: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clv.fit_bgnbd(frequency, recency, T)
    with pytest.raises(ValueError, match=message):
        clv.probability_alive(cdnow_bgnbd(), frequency, recency, T)


def test_fit_needs_repeat_purchases_and_a_sane_penalizer() -> None:
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        clv.fit_mbgnbd([0, 0], [0, 0], [3, 4])
    with pytest.raises(ValueError, match="penalizer"):
        clv.fit_bgnbd([1], [1], [2], penalizer=-1)
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        clv.fit_gamma_gamma([0, 0], [0, 0])
    with pytest.raises(ValueError, match="monetary_value must be > 0 for repeat buyers"):
        clv.fit_gamma_gamma([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match="t must be"):
        clv.expected_purchases(cdnow_bgnbd(), [1], [1], [2], t=-1)
    assert issubclass(clv.FitError, ShopSyncError)


def test_penalizer_shrinks_towards_one() -> None:
    s = cdnow()
    penalized = clv.fit_bgnbd(s.frequency, s.recency, s.T, penalizer=0.1)
    assert abs(np.log(penalized.b)) < abs(np.log(cdnow_bgnbd().b))


# --------------------------------------------------------------------------- RFM summary


def test_summary_collapses_days_and_ignores_the_future() -> None:
    s = clv.summary_from_transactions(
        ["b", "a", "a", "a", "a", "c"],
        [
            dt.datetime(2024, 1, 1, 9),
            dt.datetime(2024, 1, 1, 9),
            dt.datetime(2024, 1, 1, 18),  # same day: one purchase, values add up
            dt.datetime(2024, 1, 8),
            dt.datetime(2024, 2, 1),  # after as_of
            dt.datetime(2024, 2, 1),  # customer first seen after as_of: dropped
        ],
        [5.0, 10.0, 20.0, 7.0, 100.0, 1.0],
        as_of=dt.date(2024, 1, 15),
    )
    assert s.customer_id.tolist() == ["a", "b"]
    assert s.frequency.tolist() == [1, 0]
    assert s.recency.tolist() == [7.0, 0.0]
    assert s.T.tolist() == [14.0, 14.0]
    assert s.monetary_value is not None
    assert s.monetary_value.tolist() == [7.0, 0.0]


def test_summary_in_weeks_keeps_day_precision() -> None:
    days = np.array(["2024-01-01", "2024-01-04", "2024-01-05"], dtype="datetime64[D]")
    s = clv.summary_from_transactions(
        [1, 1, 1], days, as_of=np.datetime64("2024-01-15"), period="W"
    )
    assert s.frequency.tolist() == [2]
    assert s.recency[0] == pytest.approx(4 / 7)
    assert s.T[0] == pytest.approx(2.0)
    assert s.monetary_value is None


def test_summary_uses_the_wall_clock_date_of_aware_timestamps() -> None:
    tz = dt.timezone(dt.timedelta(hours=-5))
    late = dt.datetime(2024, 1, 1, 23, 30, tzinfo=tz)  # 2024-01-02 in UTC
    py = clv.summary_from_transactions([1, 1], [late, late + dt.timedelta(days=1)], as_of=late)
    assert py.frequency.tolist() == [0]  # the second purchase is on 2024-01-02, after as_of
    series = pl.Series([dt.datetime(2024, 1, 1, 23, 30)]).dt.replace_time_zone("America/New_York")
    s = clv.summary_from_transactions(pl.Series([7]), series, as_of=dt.date(2024, 1, 1))
    assert s.T.tolist() == [0.0]


def test_summary_agrees_between_numpy_and_polars_inputs() -> None:
    ids, dates, values = cdnow_transactions()
    s = clv.summary_from_transactions(
        pl.Series(ids), pl.Series(dates), pl.Series(values), as_of=CALIBRATION_END, period="W"
    )
    ref = cdnow()
    np.testing.assert_array_equal(s.frequency, ref.frequency)
    np.testing.assert_array_equal(s.T, ref.T)
    assert s.monetary_value is not None and ref.monetary_value is not None
    np.testing.assert_allclose(s.monetary_value, ref.monetary_value)


def test_summary_rejects_bad_input() -> None:
    day = np.datetime64("2024-01-01")
    with pytest.raises(ValueError, match="period"):
        clv.summary_from_transactions([1], [day], as_of=day, period="M")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        clv.summary_from_transactions([1, 2], [day], as_of=day)
    with pytest.raises(ValueError, match="dates or datetimes"):
        clv.summary_from_transactions([1], [3.0], as_of=day)
    with pytest.raises(ValueError, match="missing value"):
        clv.summary_from_transactions([1], np.array(["NaT"], dtype="datetime64[D]"), as_of=day)
    with pytest.raises(TypeError, match="as_of"):
        clv.summary_from_transactions([1], [day], as_of="2024-01-01")  # type: ignore[arg-type]


def test_summary_of_nothing_before_as_of_is_empty() -> None:
    s = clv.summary_from_transactions([1], [dt.date(2025, 1, 1)], [3.0], as_of=dt.date(2024, 1, 1))
    assert s.customer_id.size == s.frequency.size == s.T.size == 0
    assert s.monetary_value is not None and s.monetary_value.size == 0


@given(st.lists(st.text(max_size=4), min_size=1, max_size=40))
def test_text_ids_are_factorized_as_numpy_would(ids: list[str]) -> None:
    from shopsync._clv_summary import _factorize

    for array in (np.array(ids, dtype=object), np.array(ids)):
        unique, code = _factorize(array)
        expected_unique, expected_code = np.unique(array, return_inverse=True)
        assert unique.tolist() == expected_unique.tolist()
        assert code.tolist() == expected_code.tolist()
