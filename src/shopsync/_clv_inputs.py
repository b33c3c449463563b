"""Input checks of :mod:`shopsync.clv`: RFM and spend columns validated once, so the maths
can assume sane values."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = Any
"""numpy arrays, lists, tuples, polars or pandas Series: anything ``np.asarray`` accepts."""


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
