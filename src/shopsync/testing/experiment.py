"""The whole loop on a simulated shop, to check the measured lift against the true one.

:func:`run_experiment` serves a shop generated with a buying model, and for a few weeks
syncs it into a store, plans with the policy, applies the plan to the shop (discount codes)
and to email (the simulation's SMTP inbox), lets the simulated customers live a week, and
syncs again; then it measures :func:`shopsync.backtest.holdout_lift` over the plan dates
and computes what that lift should have been from the simulation's truth.

The true value is the intent-to-treat effect on the measured quantity, on this very sample:
the lift compares the share of customers who came back within ``horizon`` after a plan that
treated them (treated) or held them out (holdout). A message changes that share only for a
customer whose return in such a window came from an incremental order alone, so the true
difference is the number of treated customers for whom that is so, divided by the treated
group's size. A customer planned but not sent (delayed by the frequency cap) counts in the
group with no effect, as the intent-to-treat comparison does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from shopsync.adapter import connect
from shopsync.backtest import Backtest, Lift, backtest
from shopsync.core.policy import Policy
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import Brand, Email, Platform
from shopsync.store import Store
from shopsync.sync import sync
from shopsync.testing import emulate
from shopsync.testing._inbox import Inbox
from shopsync.testing.behaviour import CDNOW, BuyingModel
from shopsync.testing.simulation import Simulation, Truth, Uplift

__all__ = ["ExperimentResult", "run_experiment"]

DAY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """The measured lift beside the truth of one run."""

    seed: int
    lift: Lift
    true_difference: float
    """What ``lift.difference`` estimates, from the simulation's truth (see the module)."""
    truth: Truth
    plan_dates: tuple[dt.datetime, ...]
    backtest: Backtest
    """The replay of the plan dates over the store after the run (its ``lift`` is ``lift``)."""

    @property
    def covered(self) -> bool:
        """The lift's 95 % interval holds the true difference."""
        return self.lift.low <= self.true_difference <= self.lift.high

    @property
    def proven(self) -> bool:
        """The report would call it an effect: the interval is above zero."""
        return self.lift.low > 0


def run_experiment(
    seed: int,
    *,
    uplift: Mapping[str, Uplift],
    customers: int = 1500,
    years: float = 2.0,
    weeks: int = 4,
    horizon: dt.timedelta = dt.timedelta(days=28),
    holdout_share: str = "0.5",
    end: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    buying: BuyingModel = CDNOW,
    platform: str = "shopify",
) -> ExperimentResult:
    """Plan and apply weekly for ``weeks`` weeks, live on until the last plan's ``horizon``
    has passed, and measure the holdout lift over the plan dates."""
    policy = Policy.model_validate({"holdout": {"share": holdout_share}})
    brand = Brand(name="Simulated Shop", address="1 Main St, Springfield, IL 62701, USA")
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulate(
            platform, seed=seed, customers=customers, years=years, end=end, buying=buying
        ) as shop,
        Inbox() as inbox,
    ):
        sim = Simulation(shop.state, seed=seed, inbox=inbox, emulator=shop.emulator, uplift=uplift)
        store = Store(f"sqlite:///{Path(tmp) / 'store.db'}")
        adapter = connect(platform, **shop.settings)
        email = Email(
            inbox.host,
            inbox.port,
            sender="shop@simulated.example",
            brand=brand,
            security="none",
            unsubscribe_url="https://simulated.example/unsubscribe",
            unsubscribe_secret=SecretStr("simulated-unsubscribe-secret-0123"),
        )
        try:
            dates: list[dt.datetime] = []
            sync(adapter, store)
            for _ in range(weeks):
                dates.append(sim.now)
                apply(plan(store, policy, sim.now), store, [Platform(adapter), email], now=sim.now)
                sim.advance(days=7)
                sync(adapter, store)
            while sim.now <= dates[-1] + horizon:
                sim.advance(days=1)
            sync(adapter, store)
            result = backtest(store, policy, dates[0], dates[-1] + DAY, horizon=horizon)
            true = _true_difference(sim.truth, result)
        finally:
            email.close()
            adapter.close()
            store.close()
    return ExperimentResult(seed, result.lift, true, sim.truth, tuple(dates), result)


def _true_difference(truth: Truth, result: Backtest) -> float:
    """Treated customers whose return in one of their windows (``horizon`` after each step
    they were in the treated group) came from incremental orders alone, over the treated
    group's size: the difference the lift would show with no sampling error at all."""
    windows: dict[str, list[dt.datetime]] = {}
    for r in result.planned:
        if r.marketing and r.group != "holdout" and r.returned is not None:
            windows.setdefault(r.customer_id, []).append(r.at)
    base: dict[str, list[dt.datetime]] = {}
    extra: dict[str, list[dt.datetime]] = {}
    for p in truth.purchases:
        (extra if p.incremental else base).setdefault(p.customer_id, []).append(p.at)
    horizon = result.horizon

    def back(starts: list[dt.datetime], orders: list[dt.datetime]) -> bool:
        return any(t < at <= t + horizon for t in starts for at in orders)

    changed = sum(
        back(starts, extra.get(cid, [])) and not back(starts, base.get(cid, []))
        for cid, starts in windows.items()
    )
    return changed / len(windows) if windows else float("nan")
