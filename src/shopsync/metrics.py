"""Retention metrics, customer value and segments of a shop in the store, as of any date.

Thin wrappers that read the shop as of ``as_of`` and call :mod:`shopsync.core.metrics` and
:mod:`shopsync.core.lifecycle`, where every definition is written out. Example::

    m = shopsync.metrics.period(store, "shopify", "acme", start=jan1, end=apr1)
    m.retention_rate, m.repeat_purchase_rate, m.average_order_value
    shopsync.metrics.cohorts(store, "shopify", "acme", as_of=now)       # Polars frame
    shopsync.metrics.segments(store, "shopify", "acme", as_of=now)      # stage + RFM group
    shopsync.metrics.predicted_clv(store, "shopify", "acme", as_of=now)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from shopsync._instants import instant
from shopsync._renamed import old_name
from shopsync.core._data import Frames, paid_orders
from shopsync.core.features import compute_features
from shopsync.core.lifecycle import RFM_GROUPS, STAGES, lifecycle
from shopsync.core.metrics import (
    InsufficientDataError,
    PeriodMetrics,
    cohort_retention,
    historical_clv,
    period_metrics,
    predictive_clv,
)
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import shop_stats
from shopsync.frames import load
from shopsync.store import Store

__all__ = [
    "RFM_GROUPS",
    "STAGES",
    "InsufficientDataError",
    "PeriodMetrics",
    "cohorts",
    "customer_value",
    "period",
    "predicted_clv",
    "segments",
]


def _frames(
    store: Store, platform: str, shop: str, as_of: dt.datetime, policy: Policy | None
) -> Frames:
    return load(store, platform, shop, as_of, currency=(policy or Policy()).currency)


def period(
    store: Store,
    platform: str,
    shop: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    policy: Policy | None = None,
) -> PeriodMetrics:
    """Retention rate, repeat purchase rate, frequency, AOV and mean CLV for a period."""
    return period_metrics(_frames(store, platform, shop, end, policy), start, end)


def cohorts(
    store: Store, platform: str, shop: str, as_of: dt.datetime, *, months: int = 12
) -> pl.DataFrame:
    """The monthly cohort retention matrix."""
    return cohort_retention(_frames(store, platform, shop, as_of, None), months=months)


def customer_value(
    store: Store, platform: str, shop: str, as_of: dt.datetime, policy: Policy | None = None
) -> pl.DataFrame:
    """Historical CLV: every ordering customer's net spend as of ``as_of``."""
    return historical_clv(_frames(store, platform, shop, as_of, policy))


def predicted_clv(
    store: Store, platform: str, shop: str, as_of: dt.datetime, **options: Any
) -> pl.DataFrame:
    """Predictive CLV per customer (MBG/NBD + Gamma-Gamma); see
    :func:`shopsync.core.metrics.predictive_clv` for the options and the data gate."""
    return predictive_clv(_frames(store, platform, shop, as_of, None), **options)


def segments(
    store: Store, platform: str, shop: str, as_of: dt.datetime, policy: Policy | None = None
) -> pl.DataFrame:
    """Lifecycle stage, RFM scores and RFM group of every customer as of ``as_of``."""
    policy = policy or Policy()
    frames = load(store, platform, shop, as_of, currency=policy.currency)
    features = compute_features(
        frames.feature_inputs(), instant(frames.as_of), currency=frames.currency
    )
    stats = shop_stats(frames, policy)
    return lifecycle(frames, features, paid_orders(frames), stats, policy)


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
