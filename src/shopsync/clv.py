"""Customer-lifetime-value models fitted by maximum likelihood with NumPy and SciPy.

Three "buy till you die" models, written from their published likelihoods:

* BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): purchases are
  Poisson(λ) while alive, λ ~ Gamma(r, α); after each *repeat* purchase the customer drops
  out with probability p ~ Beta(a, b).
* MBG/NBD (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe): the same, but a customer may
  also drop out right after the first purchase. Use it for P(alive): under BG/NBD every
  one-time buyer is alive with probability 1, and most shop customers are one-time buyers.
* Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): a customer's order values are
  Gamma(p, ν) with ν ~ Gamma(q, v); it gives the expected average order value.

The inputs are the RFM summary of each customer (see :func:`summary_from_transactions`):
``frequency`` = number of repeat purchase days, ``recency`` = time from the first to the last
purchase, ``T`` = time from the first purchase to the end of observation, all in one time unit
(days or weeks). Every function is pure and vectorised; fits are deterministic.

Example::

    s = summary_from_transactions(ids, timestamps, amounts, as_of=date(2025, 1, 1), period="W")
    bg = fit_mbgnbd(s.frequency, s.recency, s.T)
    gg = fit_gamma_gamma(s.frequency, s.monetary_value)
    value = customer_lifetime_value(
        bg, gg, s.frequency, s.recency, s.T, s.monetary_value,
        horizon=52, step=52 / 12, discount_rate=0.01,
    )

The likelihoods and the optimiser live in ``shopsync._clv_likelihood``, the input checks in
``shopsync._clv_inputs`` and the transaction summary in ``shopsync._clv_summary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from scipy import special

from shopsync._clv_inputs import ArrayLike as ArrayLike
from shopsync._clv_inputs import FloatArray as FloatArray
from shopsync._clv_inputs import IntArray as IntArray
from shopsync._clv_inputs import _rfm, _spend
from shopsync._clv_likelihood import _fit_purchases, _gg_loglik, _minimise
from shopsync._clv_summary import RfmSummary, summary_from_transactions
from shopsync.errors import FitError

__all__ = [
    "BgNbdParams",
    "FitError",
    "GammaGammaParams",
    "MbgNbdParams",
    "RfmSummary",
    "customer_lifetime_value",
    "expected_order_value",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_mbgnbd",
    "probability_alive",
    "summary_from_transactions",
]


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; ``alpha`` is in the time unit of the data."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    """Total log-likelihood of the data at the estimate (without the penalty)."""
    n_customers: int


@dataclass(frozen=True, slots=True)
class MbgNbdParams:
    """Fitted MBG/NBD parameters; ``alpha`` is in the time unit of the data."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    """Total log-likelihood of the data at the estimate (without the penalty)."""
    n_customers: int


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma spend parameters; ``v`` is in the currency of the data."""

    p: float
    q: float
    v: float
    log_likelihood: float
    """Log-likelihood of the repeat buyers' average order values at the estimate."""
    n_customers: int
    """Number of repeat buyers the fit used (customers with frequency 0 carry no spend data)."""


PurchaseParams: TypeAlias = BgNbdParams | MbgNbdParams


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, penalizer: float = 0.0
) -> BgNbdParams:
    """Fit the BG/NBD model by maximum likelihood.

    Args:
        frequency: repeat purchases per customer (whole numbers >= 0).
        recency: time of the last purchase since the first (0 for one-time buyers).
        T: time since the first purchase; recency <= T.
        penalizer: adds ``penalizer * sum(log(param)**2)`` to the mean negative
            log-likelihood (alpha in units of the mean T); leave at 0 unless the fit diverges.

    Raises:
        ValueError: inputs of the wrong shape or impossible values.
        FitError: the optimiser did not converge.
    """
    return BgNbdParams(*_fit_purchases(frequency, recency, T, penalizer, k=0))


def fit_mbgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, penalizer: float = 0.0
) -> MbgNbdParams:
    """Fit the MBG/NBD model, in which one-time buyers can also have dropped out.

    Same arguments and errors as :func:`fit_bgnbd`. Prefer it for win-back targeting: its
    P(alive) falls for one-time buyers who have been silent a long time.
    """
    return MbgNbdParams(*_fit_purchases(frequency, recency, T, penalizer, k=1))


def _shift(params: PurchaseParams) -> int:
    if isinstance(params, BgNbdParams):
        return 0
    if isinstance(params, MbgNbdParams):
        return 1
    raise TypeError(f"expected BgNbdParams or MbgNbdParams, got {type(params).__name__}")


def _alive(params: PurchaseParams, x: FloatArray, t_x: FloatArray, t_obs: FloatArray) -> FloatArray:
    k = _shift(params)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    d = (
        np.log(a)
        - np.log(b + np.maximum(x + (k - 1), 0.0))  # x = 0 is overridden below when k = 0
        + (r + x) * (np.log(alpha + t_obs) - np.log(alpha + t_x))
    )
    p: FloatArray = special.expit(-d)
    if k == 0:
        p[x == 0] = 1.0
    return p


def probability_alive(
    params: PurchaseParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Probability that each customer has not dropped out by the end of observation.

    Under BG/NBD it is 1 for every one-time buyer by construction; use MBG/NBD parameters
    when one-time buyers matter (win-back lists).
    """
    return _alive(params, *_rfm(frequency, recency, T))


def _expected(
    params: PurchaseParams, t: float, x: FloatArray, t_x: FloatArray, t_obs: FloatArray
) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-6:
        # The closed form divides by a - 1; it is smooth in a, so average around the pole.
        lo, hi = (
            type(params)(r, alpha, 1.0 - 1e-5, b, params.log_likelihood, params.n_customers),
            type(params)(r, alpha, 1.0 + 1e-5, b, params.log_likelihood, params.n_customers),
        )
        return 0.5 * (_expected(lo, t, x, t_x, t_obs) + _expected(hi, t, x, t_x, t_obs))
    # Given alive at T the customer is a fresh BG process with λ ~ Gamma(r+x, α+T) and
    # p ~ Beta(a, b+x+k); its expected count in t is c/(a−1)·[1 − u^(r+x)·₂F₁(r+x, b+x+k; c; z)]
    # with c = a+b+x+k−1, z = t/(α+T+t), u = 1−z. Euler's transformation turns the ₂F₁
    # into (1−z)^(c−r−x−b−x−k) ₂F₁(c−r−x, a−1; c; z), whose series converges fast because
    # c grows with x and a−1 is small, so large buyers no longer overflow.
    c = a + b + x + (_shift(params) - 1)
    if np.any(np.abs(c) < 1e-6):
        # c = 0 (BG/NBD, a + b = 1, no repeat purchase) is a pole of ₂F₁ where c/(a−1) is 0;
        # their product is smooth in b, so average around it, as around a = 1 above
        db = min(1e-5, b / 2)
        lo, hi = (
            type(params)(r, alpha, a, b - db, params.log_likelihood, params.n_customers),
            type(params)(r, alpha, a, b + db, params.log_likelihood, params.n_customers),
        )
        return 0.5 * (_expected(lo, t, x, t_x, t_obs) + _expected(hi, t, x, t_x, t_obs))
    z = t / (alpha + t_obs + t)
    bracket = 1.0 - (1.0 - z) ** (a - 1.0) * special.hyp2f1(c - r - x, a - 1.0, c, z)
    # Clip the rounding noise of c/(a−1)·bracket, which is ~1e-16·c/|a−1| near t = 0.
    expected: FloatArray = np.maximum(c / (a - 1.0) * bracket, 0.0)
    return expected * _alive(params, x, t_x, t_obs)


def expected_purchases(
    params: PurchaseParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    t: float,
) -> FloatArray:
    """Expected number of purchases of each customer in the next ``t`` time units.

    Conditional on the customer's history (FHL 2005 eq. 10, and its MBG/NBD analogue).
    """
    if not (np.isfinite(t) and t >= 0):
        raise ValueError(f"t must be a finite number >= 0, got {t}")
    return _expected(params, float(t), *_rfm(frequency, recency, T))


# --------------------------------------------------------------------------- Gamma-Gamma


def fit_gamma_gamma(
    frequency: ArrayLike, monetary_value: ArrayLike, *, penalizer: float = 0.0
) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model on the repeat buyers.

    Args:
        frequency: repeat purchases per customer; customers with 0 are ignored.
        monetary_value: mean value of each customer's repeat purchases (> 0 for repeat buyers).
        penalizer: as in :func:`fit_bgnbd` (v in units of the mean order value).

    The model assumes spend is independent of frequency; check that their correlation
    among repeat buyers is small before trusting the CLV it feeds.
    """
    if penalizer < 0 or not np.isfinite(penalizer):
        raise ValueError(f"penalizer must be a finite number >= 0, got {penalizer}")
    x, m = _spend(frequency, monetary_value)
    repeat = x > 0
    if not repeat.any():
        raise ValueError("cannot fit Gamma-Gamma: no customer has a repeat purchase")
    x, m = x[repeat], m[repeat]
    # Money in units of the mean order value, so v starts near 1 in any currency.
    scale = float(m.mean())
    ms = m / scale
    theta0 = np.zeros(3)
    theta, _ = _minimise(
        lambda th: _gg_loglik(th, x, ms), theta0, x.shape[0], penalizer, "Gamma-Gamma"
    )
    p, q, v = np.exp(theta)
    v *= scale
    ll, _ = _gg_loglik(np.log([p, q, v]), x, m)
    return GammaGammaParams(float(p), float(q), float(v), ll, int(x.shape[0]))


def expected_order_value(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Expected mean order value of each customer's future purchases.

    A weighted average of the customer's own mean and the population mean p·v/(q−1): the more
    repeat purchases, the more weight on their own. One-time buyers get the population mean,
    which is infinite when q <= 1.
    """
    x, m = _spend(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    denominator = p * x + q - 1.0
    with np.errstate(divide="ignore"):
        return np.where(denominator > 0, (v + x * m) * p / denominator, np.inf)


# --------------------------------------------------------------------------- CLV


def customer_lifetime_value(
    purchases: PurchaseParams,
    spend: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon: float,
    step: float,
    discount_rate: float,
) -> FloatArray:
    """Discounted expected revenue of each customer over the next ``horizon`` time units.

    Revenue is booked at the end of each ``step`` (the last one may be shorter) and
    discounted by ``discount_rate`` per step: with weekly data, ``horizon=52, step=52/12,
    discount_rate=0.01`` is one year in monthly steps at 1 % a month.
    """
    if not (np.isfinite(horizon) and horizon >= 0):
        raise ValueError(f"horizon must be a finite number >= 0, got {horizon}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step}")
    if not (np.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError(f"discount_rate must be a finite number > -1, got {discount_rate}")
    x, t_x, t_obs = _rfm(frequency, recency, T)
    order_value = expected_order_value(spend, x, monetary_value)
    ends = np.minimum(np.arange(1, int(np.ceil(horizon / step)) + 1) * step, horizon)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for end in ends:
        current = _expected(purchases, float(end), x, t_x, t_obs)
        total += (current - previous) / (1.0 + discount_rate) ** (end / step)
        previous = current
    return total * order_value
