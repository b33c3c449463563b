"""The figures of the report, computed from the store by the library's own functions.

Nothing here re-defines a metric: cohorts come from
:func:`shopsync.core.metrics.cohort_retention`, the monthly rates and values from
:func:`shopsync.core.metrics.period_metrics`, stages and RFM groups from
:func:`shopsync.core.lifecycle.lifecycle`, tiers and the points liability from
:mod:`shopsync.loyalty`, actions from :func:`shopsync.planning.plan` and the lift from
:func:`shopsync.backtest.holdout_lift`. The shop is read once, as of ``as_of``; a figure "as
of" an earlier month end reuses those frames cut at that instant (the core functions read
``frames.as_of`` for every "by then" rule), so the history costs no extra reads.

The small pure helpers (:func:`month_ends`, :func:`due_histogram`, :func:`tally`) take
their dates explicitly and are tested on hand-computed examples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from shopsync import loyalty
from shopsync._instants import instant
from shopsync.backtest import Lift, Planned, _replay, _utc
from shopsync.consent import consent_summary
from shopsync.core._data import Frames, paid_orders, to_us
from shopsync.core.abandoned import CheckoutRecovery, checkout_recovery
from shopsync.core.actions import Action
from shopsync.core.features import compute_features
from shopsync.core.lifecycle import RFM_GROUPS, STAGES, lifecycle
from shopsync.core.metrics import (
    InsufficientDataError,
    cohort_retention,
    period_metrics,
    predictive_clv,
)
from shopsync.core.planner import Plan
from shopsync.core.policy import Policy
from shopsync.core.shop_stats import shop_stats
from shopsync.core.survey_stats import SurveyScore
from shopsync.errors import FitError
from shopsync.frames import load
from shopsync.planning import plan
from shopsync.surveys import scores

if TYPE_CHECKING:
    from shopsync.store import Store
    from shopsync.testing.simulation import ProgramTruth, Truth

__all__ = [
    "DueActions",
    "LiftFigure",
    "LoyaltyFigure",
    "MonthPoint",
    "ProgramLift",
    "ShopFigures",
    "due_histogram",
    "month_ends",
    "program_lifts",
    "shop_figures",
    "tally",
    "true_differences",
]

_UNIT = Decimal(10_000)
NO_TIER = "no tier"


@dataclass(frozen=True)
class MonthPoint:
    """The trailing twelve months up to one month end (``end``, 00:00 UTC on the 1st)."""

    end: dt.datetime
    customers: int
    """Customers with an order in the twelve months."""
    retention_rate: float | None
    repeat_rate: float | None
    average_order_value: Decimal | None
    clv: Decimal | None
    """Mean net spend so far of customers with an order, as of ``end``."""

    @property
    def label(self) -> str:
        """The last month the point covers, ``YYYY-MM``."""
        return f"{self.end - dt.timedelta(days=1):%Y-%m}"


@dataclass(frozen=True)
class DueActions:
    """Planned actions by kind and due day; day 0 holds everything due by ``as_of``'s day."""

    start: dt.date
    kinds: tuple[str, ...]
    counts: dict[str, list[int]]
    """Kind -> one count per day from ``start``; the last slot is "that day or later"."""
    held: dict[str, int]
    """Actions held back, by the rule that held them."""

    @property
    def days(self) -> int:
        return len(next(iter(self.counts.values()), []))

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.counts.values())


@dataclass(frozen=True)
class LoyaltyFigure:
    tiers: dict[str, int]
    """Tier -> customers holding it, lowest tier first, then those with none."""
    approved: int
    """Spendable points, all customers added up."""
    pending: int
    """Points earned but still inside the return window."""
    points_per_unit: int
    """Points worth one currency unit of discount (the redemption rate)."""

    def value(self, points: int) -> Decimal:
        """What ``points`` are worth as discount, in the shop currency."""
        return Decimal(points) / Decimal(self.points_per_unit)


@dataclass(frozen=True)
class ProgramLift:
    """One marketing program's holdout lift, and with a simulation the truth beside it."""

    kind: str
    lift: Lift
    """The pooled estimator over this program's candidates only (:func:`program_lifts`)."""
    true_difference: float | None = None
    """What ``lift.difference`` estimates, from a simulation's truth (:func:`true_differences`)."""
    truth: ProgramTruth | None = None
    """The simulation's record of the program: configured uplift, revenue, discounts."""


@dataclass(frozen=True)
class LiftFigure:
    lift: Lift | None
    dates: tuple[dt.datetime, ...]
    horizon: dt.timedelta
    note: str
    """Why there is no lift, or what it measured."""
    programs: tuple[ProgramLift, ...] = ()
    """Per marketing program, by kind."""
    simulated: bool = False
    """True: ``programs`` carry a simulation's truth (an emulated shop, not a real one)."""


@dataclass(frozen=True)
class ShopFigures:
    platform: str
    shop: str
    currency: str
    as_of: dt.datetime
    customers: int
    buyers: int
    orders: int
    net_revenue: Decimal
    """Net of refunds, paid orders in the shop currency, all time up to ``as_of``."""
    cohorts: pl.DataFrame
    """:func:`shopsync.core.metrics.cohort_retention`, the most recent cohorts."""
    stages: dict[str, int]
    rfm: dict[str, int]
    loyalty: LoyaltyFigure | None
    actions: DueActions
    months: list[MonthPoint]
    lift: LiftFigure
    predicted_clv: Decimal | None
    """Mean predicted twelve-month CLV of customers with an order; None below the data gate."""
    predicted_note: str
    contactable: int | None = None
    """Customers e-mail marketing can reach (consent, an address, not unsubscribed)."""
    consent_note: str = ""
    """:func:`shopsync.consent.consent_summary`: who can be e-mailed and why the rest cannot."""
    surveys: tuple[SurveyScore, ...] = ()
    """NPS or CSAT (``policy.surveys.scale``) per month of answers, by ``as_of``."""
    survey_cohorts: tuple[SurveyScore, ...] = ()
    """The same per cohort (month of the customer's first order)."""
    checkout_recovery: CheckoutRecovery | None = None
    """Abandoned checkouts of the last 30 days recovered within 7 (None: the store holds no
    checkouts, e.g. a sync without ``"checkouts"``); see
    :func:`shopsync.core.abandoned.checkout_recovery`."""


# -- pure helpers --------------------------------------------------------------------------------


def _add_months(at: dt.datetime, months: int) -> dt.datetime:
    index = at.year * 12 + at.month - 1 + months
    return at.replace(year=index // 12, month=index % 12 + 1)


def month_ends(as_of: dt.datetime, count: int) -> list[dt.datetime]:
    """The last ``count`` month boundaries (the 1st, 00:00 UTC) at or before ``as_of``, oldest
    first: each ends a whole month."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    at = as_of.astimezone(dt.timezone.utc)
    last = dt.datetime(at.year, at.month, 1, tzinfo=dt.timezone.utc)
    return [_add_months(last, -k) for k in range(count - 1, -1, -1)]


def due_histogram(
    actions: Iterable[Action], held: Iterable[str], as_of: dt.datetime, days: int = 29
) -> DueActions:
    """Count ``actions`` per kind and due day over ``days`` slots from ``as_of``'s day (UTC):
    actions already due fall in the first slot, actions due after the range in the last."""
    if days < 2:
        raise ValueError("days must be at least 2")
    start = as_of.astimezone(dt.timezone.utc).date()
    counts: dict[str, list[int]] = {}
    for action in actions:
        slot = (action.due_at.astimezone(dt.timezone.utc).date() - start).days
        row = counts.setdefault(action.kind, [0] * days)
        row[min(max(slot, 0), days - 1)] += 1
    kinds = tuple(sorted(counts))
    by_rule = dict(sorted(Counter(held).items()))
    return DueActions(start, kinds, {k: counts[k] for k in kinds}, by_rule)


def tally(values: Iterable[str | None], order: Sequence[str], *, none: str = "") -> dict[str, int]:
    """Counts in ``order`` (zeros kept), then values outside it by name; None counts as
    ``none`` when given, else is skipped."""
    found = Counter(none if v is None else v for v in values if v is not None or none)
    out = {key: found.pop(key, 0) for key in order}
    out.update(sorted(found.items()))
    return out


def program_lifts(records: Iterable[Planned]) -> dict[str, Lift]:
    """Per marketing program, the pooled lift's estimator restricted to that program's
    candidates: a customer counts in a program's treated group when one of its actions was
    planned for them or delayed by a cap at some plan date, in its holdout when the holdout
    rule held one back, and came back when they ordered within the horizon after such a
    date. Censored dates (``returned`` None) count nowhere."""
    treated: dict[str, dict[tuple[str, str, str], bool]] = {}
    holdout: dict[str, dict[tuple[str, str, str], bool]] = {}
    for r in records:
        if not r.marketing or r.returned is None:
            continue
        who = (r.platform, r.shop, r.customer_id)
        group = (holdout if r.group == "holdout" else treated).setdefault(r.kind, {})
        group[who] = group.get(who, False) or r.returned
    return {
        kind: Lift(
            treated=len(treated.get(kind, {})),
            treated_returned=sum(treated.get(kind, {}).values()),
            holdout=len(holdout.get(kind, {})),
            holdout_returned=sum(holdout.get(kind, {}).values()),
        )
        for kind in sorted(treated.keys() | holdout.keys())
    }


def true_differences(
    records: Iterable[Planned], truth: Truth, horizon: dt.timedelta
) -> dict[str, float]:
    """What :func:`program_lifts` estimates, per program, from a simulation's truth: among
    the program's treated customers (as counted there), the share whose return within the
    horizon of one of their dates came from incremental orders alone (those would not have
    come back without a message). Holdout customers got nothing, so this is the whole
    difference an estimate without sampling error would show."""
    windows: dict[str, dict[str, list[dt.datetime]]] = {}
    for r in records:
        if r.marketing and r.group != "holdout" and r.returned is not None:
            windows.setdefault(r.kind, {}).setdefault(r.customer_id, []).append(r.at)
    base: dict[str, list[dt.datetime]] = {}
    extra: dict[str, list[dt.datetime]] = {}
    for p in truth.purchases:
        (extra if p.incremental else base).setdefault(p.customer_id, []).append(p.at)

    def back(starts: list[dt.datetime], orders: list[dt.datetime]) -> bool:
        return any(t < at <= t + horizon for t in starts for at in orders)

    return {
        kind: sum(
            back(starts, extra.get(cid, [])) and not back(starts, base.get(cid, []))
            for cid, starts in people.items()
        )
        / len(people)
        for kind, people in sorted(windows.items())
    }


# -- reading one shop ----------------------------------------------------------------------------


def _cut(frames: Frames, at: dt.datetime) -> Frames:
    return dataclasses.replace(frames, as_of=to_us(at))


def _months(frames: Frames, as_of: dt.datetime, count: int) -> list[MonthPoint]:
    paid = paid_orders(frames)
    if paid.height == 0:
        return []
    first = instant(int(paid["created_at"].min()))  # type: ignore[arg-type]
    points = []
    for end in month_ends(as_of, count):
        if end <= first:
            continue
        m = period_metrics(_cut(frames, end), _add_months(end, -12), end)
        points.append(
            MonthPoint(
                end=end,
                customers=m.customers,
                retention_rate=m.retention_rate,
                repeat_rate=m.repeat_purchase_rate,
                average_order_value=m.average_order_value,
                clv=m.historical_clv,
            )
        )
    return points


def _predicted(frames: Frames) -> tuple[Decimal | None, str]:
    try:
        table = predictive_clv(frames)
    except InsufficientDataError as exc:
        return None, str(exc)
    except FitError as exc:
        return None, f"the CLV model did not fit: {exc}"
    mean = table["clv"].mean() if table.height else None
    if mean is None:
        return None, "no customer with an order"
    return Decimal(str(round(float(mean), 2))), (  # type: ignore[arg-type]
        f"MBG/NBD + Gamma-Gamma over {table.height:,} customers with an order"
    )


def _loyalty(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    policy: Policy,
    tiers: Mapping[str, str | None] | None,
) -> LoyaltyFigure | None:
    if not policy.loyalty.enabled:
        return None
    if tiers is None:
        tiers = loyalty.update_ledger(
            store, platform, shop, as_of=as_of, policy=policy, dry_run=True
        ).tiers
    names = [t.name for t in policy.loyalty.tiers.tiers]
    points = loyalty.shop_balance(store, platform, shop)
    return LoyaltyFigure(
        tiers=tally(tiers.values(), names, none=NO_TIER),
        approved=points.approved,
        pending=points.pending,
        points_per_unit=policy.loyalty.redemption.points_per_unit,
    )


def lift_dates(latest: dt.datetime, horizon: dt.timedelta, count: int = 4) -> list[dt.datetime]:
    """Weekly plan dates whose horizon still ends by the latest order, newest last."""
    if count < 1:
        raise ValueError("the holdout comparison needs at least one plan date")
    last = latest - horizon
    return [last - dt.timedelta(days=7 * k) for k in range(count - 1, -1, -1)]


def _lift(
    store: Store,
    platform: str,
    shop: str,
    policy: Policy,
    frames: Frames,
    dates: Sequence[dt.datetime] | None,
    horizon: dt.timedelta,
    count: int,
    truth: Truth | None = None,
) -> LiftFigure:
    if frames.orders.height == 0:
        return LiftFigure(None, (), horizon, "no orders yet: nothing to compare")
    if dates is None:
        latest = instant(int(frames.orders["created_at"].max()))  # type: ignore[arg-type]
        dates = lift_dates(latest, horizon, count)
    # Replaying each customer's points history is nine tenths of a plan's time, and the
    # loyalty notices are about points already earned, so the replay leaves them out.
    quick = policy.model_copy(
        update={"loyalty": policy.loyalty.model_copy(update={"enabled": False})}
    )
    # the replay behind shopsync.backtest.holdout_lift, kept for its per-action records
    steps = sorted({_utc(d, "as_of") for d in dates})
    replay = _replay(store, quick, steps, horizon, platform, shop, None)
    result = replay.lift(store)
    measured = program_lifts(replay.records)
    true = true_differences(replay.records, truth, horizon) if truth is not None else {}
    known = truth.programs() if truth is not None else {}
    programs = tuple(
        ProgramLift(kind, lift, true.get(kind), known.get(kind)) for kind, lift in measured.items()
    )
    how = "real sends" if result.sent else "a replay (nothing was sent then)"
    note = (
        f"{how}; plans of {', '.join(f'{d:%Y-%m-%d}' for d in sorted(dates))}, returns within "
        f"{horizon.days} days; review, win-back, replenishment and warranty programs"
    )
    return LiftFigure(
        result, tuple(sorted(dates)), horizon, note, programs, simulated=truth is not None
    )


def shop_figures(
    store: Store,
    platform: str,
    shop: str,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    planned: Plan | None = None,
    tiers: Mapping[str, str | None] | None = None,
    lift_on: Sequence[dt.datetime] | None = None,
    lift_plans: int = 4,
    horizon: dt.timedelta = dt.timedelta(days=30),
    months: int = 12,
    cohorts: int = 12,
    truth: Truth | None = None,
) -> ShopFigures:
    """Every figure of one shop's section as of ``as_of``.

    ``planned`` reuses a plan already made at ``as_of`` (its other shops' actions are
    ignored) and ``tiers`` the tier of each customer that :func:`shopsync.loyalty.update_ledger`
    derived at ``as_of`` with the same policy; ``lift_on`` are the plan dates of the holdout
    comparison (default: ``lift_plans`` weekly dates whose horizon ends by the latest order;
    each is a full plan of the shop, the report's largest cost). ``truth`` is the
    :class:`~shopsync.testing.simulation.Truth` of a simulated shop: the per-program lift then
    carries the true value beside the measured one.
    """
    policy = policy or Policy()
    frames = load(store, platform, shop, as_of, currency=policy.currency)
    paid = paid_orders(frames)
    own = paid.filter(pl.col("currency") == frames.currency)
    features = compute_features(
        frames.feature_inputs(), instant(frames.as_of), currency=frames.currency
    )
    stages = lifecycle(frames, features, paid, shop_stats(frames, policy), policy)
    if planned is None:
        planned = plan(store, policy, as_of, platform=platform, shop=shop)
    mine = [a for a in planned if (a.platform, a.shop) == (platform, shop)]
    held = [h.rule for h in planned.held if (h.action.platform, h.action.shop) == (platform, shop)]
    predicted, predicted_note = _predicted(frames)
    consent = store.consent_counts(platform, shop)
    return ShopFigures(
        platform=platform,
        shop=shop,
        currency=frames.currency,
        as_of=as_of,
        customers=frames.customers.height,
        buyers=paid["customer_id"].n_unique(),
        orders=paid.height,
        net_revenue=Decimal(int(own["net"].sum())) / _UNIT,
        cohorts=cohort_retention(frames, months=12).tail(cohorts),
        stages=tally(stages["stage"].to_list(), STAGES),
        rfm=tally(stages["rfm_group"].to_list(), RFM_GROUPS),
        loyalty=_loyalty(store, platform, shop, as_of, policy, tiers),
        actions=due_histogram(mine, held, as_of),
        months=_months(frames, as_of, months),
        lift=_lift(store, platform, shop, policy, frames, lift_on, horizon, lift_plans, truth),
        predicted_clv=predicted,
        predicted_note=predicted_note,
        contactable=consent.contactable,
        consent_note=consent_summary(consent),
        surveys=tuple(scores(store, platform, shop, policy.surveys.scale, until=as_of)),
        survey_cohorts=tuple(
            scores(store, platform, shop, policy.surveys.scale, by="cohort", until=as_of)
        ),
        checkout_recovery=checkout_recovery(frames, paid) if frames.checkouts.height else None,
    )
