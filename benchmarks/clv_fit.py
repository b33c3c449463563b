"""Time shopsync's BG/NBD fit against lifetimes' BetaGeoFitter.

Two data sets: the CDNOW sample (2,357 customers, weeks, as Fader, Hardie & Lee 2005 fit it)
and a seeded synthetic shop drawn from the BG/NBD generative process (daily transactions,
summarised with :func:`shopsync.clv.summary_from_transactions`). Both fitters get the same
frequency/recency/T arrays; the script prints wall times (median of ``--repeat`` runs), the
speed ratio and the largest parameter differences.

lifetimes is a benchmark extra, not a shopsync dependency::

    pip install lifetimes==0.11.3
    python benchmarks/clv_fit.py                # CDNOW + 1,000,000 synthetic customers
    python benchmarks/clv_fit.py --customers 100000 --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopsync import clv

CDNOW = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cdnow" / "CDNOW_sample.txt"
TRUE_PARAMS = {"r": 0.25, "alpha": 20.0, "a": 0.8, "b": 2.5}  # alpha in days
AS_OF = np.datetime64("2024-12-31")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """Median wall time: the machine is noisy (see perf.md), one run says little."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def cdnow_summary() -> clv.RfmSummary:
    raw = np.loadtxt(CDNOW, dtype=str)
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    return clv.summary_from_transactions(
        raw[:, 0], dates, raw[:, 4].astype(float), as_of=np.datetime64("1997-09-30"), period="W"
    )


def simulate_transactions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily transaction log of ``n`` customers drawn from the BG/NBD story.

    Each customer is acquired on a uniform day of the two years before ``AS_OF``; while alive
    they buy at rate λ ~ Gamma(r, α) and drop out after each repeat purchase with probability
    p ~ Beta(a, b). The repeat count by ``AS_OF`` is min(N, K) with N ~ Poisson(λT) arrivals
    and K ~ Geometric(p) purchases survived; the first X of N uniform arrival times come from
    the Rényi representation of uniform order statistics, so no customer loop is needed.
    """
    rng = np.random.default_rng(seed)
    p = TRUE_PARAMS
    age = rng.integers(0, 730, n)  # whole days from acquisition to AS_OF
    lam = rng.gamma(p["r"], 1.0 / p["alpha"], n)
    drop = rng.beta(p["a"], p["b"], n)
    arrivals = rng.poisson(lam * age)
    survived = rng.geometric(np.clip(drop, 1e-12, 1.0))
    repeats = np.minimum(arrivals, survived)

    owner = np.repeat(np.arange(n), repeats)
    starts = np.cumsum(repeats) - repeats
    rank = np.arange(owner.size) - starts[owner]  # 0-based order statistic index
    log_step = np.log(rng.random(owner.size)) / (arrivals[owner] - rank)
    cumulative = np.cumsum(log_step)
    cumulative -= (cumulative - log_step)[starts[owner]]
    when = (1.0 - np.exp(cumulative)) * age[owner]

    first_day = AS_OF - age
    ids = np.concatenate([np.arange(n), owner])
    days = np.concatenate([first_day, first_day[owner] + np.floor(when).astype(np.int64)])
    return ids, days.astype("datetime64[D]")


def lifetimes_fitter() -> Any | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
                BetaGeoFitter,
            )
    except Exception as exc:  # ImportError, or pkg_resources missing inside lifetimes
        print(f"lifetimes unavailable: {type(exc).__name__}: {exc}")
        return None
    return BetaGeoFitter


def compare(name: str, s: clv.RfmSummary, repeat: int, fitter: Any | None) -> None:
    """Fit with both libraries, alternating runs so that machine noise hits both alike."""
    print(f"\n== {name}: {s.frequency.size:,} customers, {int(s.frequency.sum()):,} repeat days")

    def fit_ours() -> clv.BgNbdParams:
        return clv.fit_bgnbd(s.frequency, s.recency, s.T)

    def fit_lifetimes() -> Any:
        assert fitter is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fitter().fit(s.frequency, s.recency, s.T)

    ours_times, their_times = [], []
    ours = theirs = None
    for _ in range(repeat):
        ours, elapsed = timed(fit_ours, 1)
        ours_times.append(elapsed)
        if fitter is not None:
            theirs, elapsed = timed(fit_lifetimes, 1)
            their_times.append(elapsed)
    assert ours is not None
    t_ours = statistics.median(ours_times)
    print(
        f"shopsync fit_bgnbd       {t_ours:8.3f} s   r={ours.r:.4f} alpha={ours.alpha:.4f} "
        f"a={ours.a:.4f} b={ours.b:.4f}  LL={ours.log_likelihood:.2f}"
        f"   (runs {min(ours_times):.3f}-{max(ours_times):.3f} s)"
    )
    if theirs is None:
        return
    t_theirs = statistics.median(their_times)
    lp = theirs.params_
    print(
        f"lifetimes BetaGeoFitter  {t_theirs:8.3f} s   r={lp['r']:.4f} alpha={lp['alpha']:.4f} "
        f"a={lp['a']:.4f} b={lp['b']:.4f}"
        f"   (runs {min(their_times):.3f}-{max(their_times):.3f} s)"
    )
    diffs = {k: abs(getattr(ours, k) - lp[k]) for k in ("r", "alpha", "a", "b")}
    rel = {k: diffs[k] / abs(lp[k]) for k in diffs}
    print(f"speed ratio (lifetimes / shopsync, medians of {repeat}): {t_theirs / t_ours:.1f}x")
    print("abs diff: " + "  ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
    print("rel diff: " + "  ".join(f"{k}={v:.2e}" for k, v in rel.items()))


def measure(side: str, dataset: str, customers: int, seed: int, repeat: int) -> dict[str, Any]:
    """One fitter on one data set, for ``run.py``: median wall time of ``repeat`` fits and the
    parameters (``side`` is "shopsync" or "lifetimes"; ``dataset`` "cdnow" or "synthetic")."""
    import resource

    if dataset == "cdnow":
        s = cdnow_summary()
    else:
        ids, days = simulate_transactions(customers, seed)
        s = clv.summary_from_transactions(ids, days, as_of=AS_OF)
    if side == "shopsync":
        fit, params = timed(lambda: clv.fit_bgnbd(s.frequency, s.recency, s.T), repeat)
        found = {k: float(getattr(fit, k)) for k in ("r", "alpha", "a", "b")}
    else:
        fitter = lifetimes_fitter()
        if fitter is None:
            return {"error": "lifetimes is not installed"}

        def run() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fitter().fit(s.frequency, s.recency, s.T)

        fit, params = timed(run, repeat)
        found = {k: float(fit.params_[k]) for k in ("r", "alpha", "a", "b")}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "customers": int(s.frequency.size),
        "seconds": round(params, 4),
        "repeat": repeat,
        "params": found,
        "peak_mb": round(peak),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240531)
    parser.add_argument("--repeat", type=int, default=3, help="runs per fitter, 1M sample")
    parser.add_argument("--cdnow-repeat", type=int, default=15, help="runs per fitter, CDNOW")
    parser.add_argument("--no-lifetimes", action="store_true")
    args = parser.parse_args(argv)

    fitter = None if args.no_lifetimes else lifetimes_fitter()
    compare("CDNOW sample (weeks)", cdnow_summary(), args.cdnow_repeat, fitter)

    start = time.perf_counter()
    ids, days = simulate_transactions(args.customers, args.seed)
    simulated = time.perf_counter() - start
    summary, t_summary = timed(lambda: clv.summary_from_transactions(ids, days, as_of=AS_OF), 1)
    print(
        f"\nsynthetic: {ids.size:,} transactions simulated in {simulated:.2f} s "
        f"(seed {args.seed}, truth {TRUE_PARAMS}); summary_from_transactions {t_summary:.2f} s"
    )
    compare(f"synthetic BG/NBD shop (days, seed {args.seed})", summary, args.repeat, fitter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
