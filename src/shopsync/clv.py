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
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

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

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = Any
"""numpy arrays, lists, tuples, polars or pandas Series: anything ``np.asarray`` accepts."""

_DAYS_PER_PERIOD = {"D": 1.0, "W": 7.0}
_PILOT_SIZE = 20_000


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


@dataclass(frozen=True, slots=True)
class RfmSummary:
    """Per-customer RFM inputs, one row per customer, sorted by customer id."""

    customer_id: npt.NDArray[Any]
    frequency: IntArray
    """Repeat purchase days: distinct purchase days minus one."""
    recency: FloatArray
    """Time from the first to the last purchase day, in ``period`` units."""
    T: FloatArray
    """Time from the first purchase day to ``as_of``, in ``period`` units."""
    monetary_value: FloatArray | None
    """Mean value of the repeat purchase days (0 for one-time buyers); None without values."""


# --------------------------------------------------------------------------- validation


def _column(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def _first_bad(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _rfm(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, ...]:
    """Validate the RFM columns once, so the maths below can assume sane values."""
    x = _column(frequency, "frequency")
    t_x = _column(recency, "recency")
    t_obs = _column(T, "T")
    if not x.shape == t_x.shape == t_obs.shape:
        raise ValueError(
            f"frequency, recency and T must have the same length, got "
            f"{x.shape[0]}, {t_x.shape[0]} and {t_obs.shape[0]}"
        )
    checks = (
        (x < 0, "frequency must be >= 0"),
        (x != np.round(x), "frequency must be a whole number"),
        (t_x < 0, "recency must be >= 0"),
        (t_obs < 0, "T must be >= 0"),
        (t_x > t_obs, "recency must be <= T"),
        ((x == 0) & (t_x != 0), "recency must be 0 when frequency is 0"),
    )
    for bad, message in checks:
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(
                f"{message} (row {i}: frequency={x[i]:g}, recency={t_x[i]:g}, T={t_obs[i]:g})"
            )
    return x, t_x, t_obs


def _spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = _column(frequency, "frequency")
    m = _column(monetary_value, "monetary_value")
    if x.shape != m.shape:
        raise ValueError(
            f"frequency and monetary_value must have the same length, got "
            f"{x.shape[0]} and {m.shape[0]}"
        )
    checks = (
        (x < 0, "frequency must be >= 0"),
        (x != np.round(x), "frequency must be a whole number"),
        (m < 0, "monetary_value must be >= 0"),
        ((x > 0) & (m == 0), "monetary_value must be > 0 for repeat buyers (drop free orders)"),
    )
    for bad, message in checks:
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(f"{message} (row {i}: frequency={x[i]:g}, monetary_value={m[i]:g})")
    return x, m


# --------------------------------------------------------------------------- BG/NBD, MBG/NBD
#
# Both likelihoods share one form (k = 0 for BG/NBD, k = 1 for MBG/NBD):
#
#   L = Γ(r+x) α^r / Γ(r) · B(a, b+x+k) / B(a, b) · (α+T)^-(r+x) · (1 + δ·e^d)
#   d = ln a − ln(b+x+k−1) + (r+x)·(ln(α+T) − ln(α+t_x))
#
# using B(a+1, b+x+k−1) / B(a, b+x+k) = a / (b+x+k−1). δ = 1 if x > 0 for BG/NBD (only repeat
# buyers can have dropped out) and δ = 1 always for MBG/NBD. The terms that depend on x alone
# or on T alone are summed over their distinct values, so the special functions cost nothing
# and only the (1 + e^d) term is evaluated per customer.


@dataclass(frozen=True, slots=True)
class _PurchaseData:
    """Sufficient statistics of the RFM data for the BG/NBD family likelihood."""

    k: int
    n: int
    x_values: FloatArray  # distinct frequencies, and customers with each
    x_counts: FloatArray
    t_values: FloatArray  # distinct ages T, customers with each, their summed frequency
    t_weights: FloatArray
    t_x_sums: FloatArray
    # Customers who may have dropped out, as distinct (x, t_x, T) patterns: a table of
    # distinct values per column, an index into it per pattern, and a count per pattern.
    dx: FloatArray
    dt: FloatArray
    dT: FloatArray
    ix: IntArray
    it: IntArray
    iT: IntArray
    weight: FloatArray
    px: FloatArray  # frequency of each pattern


def _purchase_data(x: FloatArray, t_x: FloatArray, t_obs: FloatArray, k: int) -> _PurchaseData:
    x_values, x_inverse, x_counts = np.unique(x, return_inverse=True, return_counts=True)
    t_values, t_inverse = np.unique(t_obs, return_inverse=True)
    dropped = x > 0 if k == 0 else np.ones(x.shape, dtype=bool)
    dx, ix = x_values, x_inverse[dropped]
    dt, it = np.unique(t_x[dropped], return_inverse=True)
    dT, iT = t_values, t_inverse[dropped]
    weight = np.ones(ix.shape)
    if dx.size * dt.size * dT.size < 2**62:
        # Shop data is daily, so many customers share a pattern; evaluate each pattern once.
        key = (ix.astype(np.int64) * dt.size + it) * dT.size + iT
        key, counts = np.unique(key, return_counts=True)
        key, iT = np.divmod(key, dT.size)
        ix, it = np.divmod(key, dt.size)
        weight = counts.astype(np.float64)
    return _PurchaseData(
        k=k,
        n=x.shape[0],
        x_values=x_values,
        x_counts=x_counts.astype(np.float64),
        t_values=t_values,
        t_weights=np.bincount(t_inverse).astype(np.float64),
        t_x_sums=np.bincount(t_inverse, weights=x).astype(np.float64),
        dx=dx,
        dt=dt,
        dT=dT,
        ix=ix,
        it=it,
        iT=iT,
        weight=weight,
        px=dx[ix],
    )


def _purchase_loglik(theta: FloatArray, data: _PurchaseData) -> tuple[float, FloatArray]:
    """Total log-likelihood and its gradient with respect to (ln r, ln α, ln a, ln b)."""
    r, alpha, a, b = np.exp(theta)
    k = data.k
    xv, nx = data.x_values, data.x_counts
    psi = special.digamma

    # Terms in x alone: Γ(r+x)/Γ(r) and B(a, b+x+k)/B(a, b).
    bx = b + xv + k
    ll = nx @ (
        special.gammaln(r + xv)
        - special.gammaln(r)
        + special.gammaln(bx)
        - special.gammaln(a + bx)
        - special.gammaln(b)
        + special.gammaln(a + b)
    )
    g_r = nx @ (psi(r + xv) - psi(r))
    g_a = nx @ (psi(a + b) - psi(a + bx))
    g_b = nx @ (psi(bx) - psi(a + bx) - psi(b) + psi(a + b))

    # Terms in T alone: α^r (α+T)^-(r+x).
    log_at = np.log(alpha + data.t_values)
    exponent = r * data.t_weights + data.t_x_sums
    ll += data.n * r * np.log(alpha) - exponent @ log_at
    g_r += data.n * np.log(alpha) - data.t_weights @ log_at
    g_alpha = data.n * r / alpha - exponent @ (1.0 / (alpha + data.t_values))

    # The dropout term ln(1 + e^d), per pattern of the customers who may have dropped out;
    # logs and reciprocals come from the small per-column tables.
    if data.weight.size:
        shifted_b = b + np.maximum(data.dx + (k - 1), 0.0)  # x = 0 is unused when k = 0
        log_ratio = np.log(alpha + data.dT)[data.iT] - np.log(alpha + data.dt)[data.it]
        rx = r + data.px
        d = (np.log(a) - np.log(shifted_b))[data.ix] + rx * log_ratio
        e = np.exp(-np.abs(d))
        ll += data.weight @ (np.maximum(d, 0.0) + np.log1p(e))
        w = np.where(d >= 0, 1.0, e) / (1.0 + e) * data.weight  # sigmoid(d), weighted
        inv_diff = (1.0 / (alpha + data.dT))[data.iT] - (1.0 / (alpha + data.dt))[data.it]
        g_r += w @ log_ratio
        g_alpha += w @ (rx * inv_diff)
        w_by_x = np.bincount(data.ix, weights=w, minlength=data.dx.size)
        g_a += w_by_x.sum() / a
        g_b -= w_by_x @ (1.0 / shifted_b)

    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return float(ll), grad


def _minimise(
    loglik: Callable[[FloatArray], tuple[float, FloatArray]],
    theta0: FloatArray,
    n: int,
    penalizer: float,
    model: str,
    hess_inv0: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Maximise a log-likelihood over log-parameters with BFGS and an analytic gradient.

    The objective is the mean negative log-likelihood, so one tolerance suits any number of
    customers. BFGS often ends with "precision loss" when it is already at the optimum to
    machine precision; that is accepted when the gradient is small, rather than surfaced as
    a failure the way lifetimes does.
    """

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ll, grad = loglik(theta)
        value = -ll / n + penalizer * float(theta @ theta)
        gradient = -grad / n + 2.0 * penalizer * theta
        if not (np.isfinite(value) and np.all(np.isfinite(gradient))):
            return np.inf, np.zeros_like(theta)
        return value, gradient

    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="BFGS",
        # scipy's own default for None is the identity; its stubs take an array only
        options={
            "gtol": 1e-9,
            "maxiter": 500,
            "hess_inv0": np.eye(theta0.size) if hess_inv0 is None else hess_inv0,
        },
    )
    gradient_norm = float(np.max(np.abs(result.jac))) if result.jac is not None else np.inf
    converged = result.success or gradient_norm < 1e-5
    if not (np.isfinite(result.fun) and np.all(np.isfinite(result.x)) and converged):
        raise FitError(
            f"{model} fit did not converge ({result.message}; max |gradient| = "
            f"{gradient_norm:.3g} after {result.nit} iterations); try penalizer=0.001 or more"
        )
    if np.any(np.abs(result.x) > 25):
        raise FitError(
            f"{model} fit diverged: a parameter reached {np.exp(result.x).tolist()}; "
            "the data cannot identify it, try penalizer=0.001 or more"
        )
    hess_inv = np.asarray(result.hess_inv, dtype=np.float64)
    hess_inv = 0.5 * (hess_inv + hess_inv.T)
    if np.any(np.linalg.eigvalsh(hess_inv) <= 0):  # rounding can break BFGS's guarantee
        hess_inv = np.eye(theta0.size)
    return np.asarray(result.x, dtype=np.float64), hess_inv


def _fit_purchases(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float, k: int
) -> tuple[float, float, float, float, float, int]:
    model = "BG/NBD" if k == 0 else "MBG/NBD"
    if penalizer < 0 or not np.isfinite(penalizer):
        raise ValueError(f"penalizer must be a finite number >= 0, got {penalizer}")
    x, t_x, t_obs = _rfm(frequency, recency, T)
    if not (x > 0).any():
        raise ValueError(f"cannot fit {model}: no customer has a repeat purchase (frequency > 0)")
    # Work in units of the mean age so alpha starts near 1 whatever the time unit; the start
    # point is r = a = b = 1 with alpha matching the observed repeat-purchase rate.
    scale = float(t_obs.mean())
    t_x, t_obs = t_x / scale, t_obs / scale
    theta = np.log(np.array([1.0, x.size / float(x.sum()), 1.0, 1.0]))
    hess_inv = None
    if x.size >= 4 * _PILOT_SIZE:
        # Most BFGS steps are spent learning the curvature far from the optimum: take them on
        # an evenly spaced subsample, then start the full fit there with that curvature.
        every = x.size // _PILOT_SIZE
        pilot = _purchase_data(x[::every], t_x[::every], t_obs[::every], k)
        with contextlib.suppress(FitError):
            theta, hess_inv = _minimise(
                lambda th: _purchase_loglik(th, pilot), theta, pilot.n, penalizer, model
            )
    data = _purchase_data(x, t_x, t_obs, k)
    theta, _ = _minimise(
        lambda th: _purchase_loglik(th, data), theta, data.n, penalizer, model, hess_inv
    )
    r, alpha, a, b = np.exp(theta)
    # Rescaling time multiplies each customer's likelihood by scale**x.
    ll = _purchase_loglik(theta, data)[0] - float(x.sum()) * float(np.log(scale))
    return float(r), float(alpha * scale), float(a), float(b), ll, data.n


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
#
# For a customer with x repeat purchases of mean value m, the likelihood of m is
#   Γ(px+q) / (Γ(px) Γ(q)) · v^q · (xm)^(px−1) · x / (v + xm)^(px+q).


def _gg_loglik(theta: FloatArray, x: FloatArray, m: FloatArray) -> tuple[float, FloatArray]:
    """Total log-likelihood and gradient with respect to (ln p, ln q, ln v)."""
    p, q, v = np.exp(theta)
    px = p * x
    xm = x * m
    log_vxm = np.log(v + xm)
    log_xm = np.log(xm)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * log_xm
        + np.log(x)
        - (px + q) * log_vxm
    ).sum()
    psi_total = special.digamma(px + q)
    g_p = x @ (psi_total - special.digamma(px) + log_xm - log_vxm)
    g_q = (psi_total - special.digamma(q) + np.log(v) - log_vxm).sum()
    g_v = (q / v - (px + q) / (v + xm)).sum()
    return float(ll), np.array([g_p * p, g_q * q, g_v * v])


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


# --------------------------------------------------------------------------- RFM summary


def _days(values: ArrayLike) -> IntArray:
    """Calendar day numbers (days since 1970-01-01) of timestamps, as their wall clock shows."""
    dtype = getattr(values, "dtype", None)
    if getattr(dtype, "time_zone", None) is not None:  # polars: keep the local wall clock
        values = values.dt.replace_time_zone(None)
    elif getattr(dtype, "tz", None) is not None:  # pandas
        values = values.dt.tz_localize(None)
    arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if arr.ndim != 1:
        raise ValueError(f"timestamps must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == object or arr.size == 0:
        # numpy has no time zones; use each aware datetime's own wall clock.
        arr = np.array(
            [v.replace(tzinfo=None) if isinstance(v, _dt.datetime) else v for v in arr],
            dtype="datetime64[D]",
        )
    if arr.dtype.kind != "M":
        raise ValueError(f"timestamps must be dates or datetimes, got dtype {arr.dtype}")
    if np.isnat(arr).any():
        raise ValueError(f"timestamps contain a missing value at row {_first_bad(np.isnat(arr))}")
    return arr.astype("datetime64[D]").astype(np.int64)


def _as_of_day(as_of: _dt.date | np.datetime64) -> int:
    if isinstance(as_of, _dt.datetime):
        as_of = as_of.replace(tzinfo=None)
    elif not isinstance(as_of, _dt.date | np.datetime64):
        raise TypeError(f"as_of must be a date, datetime or numpy.datetime64, got {as_of!r}")
    day = np.asarray(as_of, dtype="datetime64[D]")
    if np.isnat(day):
        raise ValueError("as_of must not be NaT")
    return int(day.astype(np.int64))


def _factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, return_inverse=True)``; text ids go through Polars' hash join, which is
    about 9x faster than NumPy's sort of Python strings (same order: UTF-8 bytes sort as
    code points do)."""
    if ids.dtype.kind not in "OU":
        return np.unique(ids, return_inverse=True)
    import polars as pl

    try:
        column = pl.Series("id", ids, dtype=pl.String)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        return np.unique(ids, return_inverse=True)  # not all text: NumPy says what is wrong
    if column.null_count():
        return np.unique(ids, return_inverse=True)
    unique = column.unique().sort()
    codes = pl.DataFrame({"id": unique, "code": np.arange(unique.len(), dtype=np.int64)})
    code = column.to_frame().join(codes, on="id", how="left", maintain_order="left")["code"]
    return np.asarray(unique.to_list(), dtype=ids.dtype), code.to_numpy()


def summary_from_transactions(
    customer_ids: ArrayLike,
    timestamps: ArrayLike,
    values: ArrayLike | None = None,
    *,
    as_of: _dt.date | np.datetime64,
    period: Literal["D", "W"] = "D",
) -> RfmSummary:
    """Turn a transaction log into the per-customer RFM summary the models take.

    Purchases on the same calendar day count once (their values add up), as in Fader, Hardie
    & Lee's CDNOW analysis; purchases after ``as_of`` are left out and customers whose first
    purchase is after it are dropped. ``period`` only sets the unit of recency and T
    ("D" days, "W" weeks = days / 7), so a weekly summary keeps day precision.

    Timestamps are bucketed by the date on their own wall clock (aware datetimes and
    zone-aware polars/pandas series included): convert them to the shop's time zone first.
    """
    if period not in _DAYS_PER_PERIOD:
        raise ValueError(f"period must be 'D' or 'W', got {period!r}")
    ids = np.asarray(customer_ids.to_numpy() if hasattr(customer_ids, "to_numpy") else customer_ids)
    days = _days(timestamps)
    if ids.ndim != 1 or ids.shape != days.shape:
        raise ValueError(
            f"customer_ids and timestamps must be one-dimensional and of the same length, "
            f"got shapes {ids.shape} and {days.shape}"
        )
    amounts = None if values is None else _column(values, "values")
    if amounts is not None and amounts.shape != days.shape:
        raise ValueError(
            f"values must have the same length as timestamps, got {amounts.shape[0]} "
            f"and {days.shape[0]}"
        )
    end = _as_of_day(as_of)
    keep = days <= end
    ids, days = ids[keep], days[keep]
    if amounts is not None:
        amounts = amounts[keep]

    if days.size == 0:
        empty = np.zeros(0)
        return RfmSummary(
            customer_id=ids,
            frequency=np.zeros(0, dtype=np.int64),
            recency=empty,
            T=empty,
            monetary_value=None if amounts is None else empty,
        )
    unique_ids, code = _factorize(ids)
    # One sort of a combined (customer, day) key groups each customer's days in order.
    first_day = int(days.min())
    span = int(days.max()) - first_day + 1
    key = code.astype(np.int64) * span + (days - first_day)
    purchase_keys, purchase_of_row = np.unique(key, return_inverse=True)
    customer = purchase_keys // span
    day = purchase_keys % span
    starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    ends = np.r_[starts[1:], customer.size] - 1
    per_period = _DAYS_PER_PERIOD[period]
    frequency = (ends - starts).astype(np.int64)
    recency = (day[ends] - day[starts]) / per_period
    age = (end - (day[starts] + first_day)) / per_period

    monetary = None
    if amounts is not None:
        day_value = np.bincount(purchase_of_row, weights=amounts, minlength=customer.size)
        totals = np.add.reduceat(day_value, starts)
        repeat_total = totals - day_value[starts]
        monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    return RfmSummary(
        customer_id=unique_ids,
        frequency=frequency,
        recency=recency.astype(np.float64),
        T=age.astype(np.float64),
        monetary_value=monetary,
    )
