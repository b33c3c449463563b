"""Likelihoods and optimiser of :mod:`shopsync.clv`: the BG/NBD family and Gamma-Gamma
log-likelihoods with their analytic gradients, and the BFGS fit that maximises them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from shopsync._clv_inputs import ArrayLike, FloatArray, IntArray, _rfm
from shopsync.errors import FitError

_PILOT_SIZE = 20_000


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
