"""Backtesting: replay the policy over the store's history before sending anything.

``backtest(store, policy, start, end)`` plans at ``start``, ``start + step``, ... (every
instant before ``end``) with :func:`shopsync.planning.plan`, as a run at that instant
would have, and reports per program how many actions the policy would have sent, to whom,
and how many of those customers came back *without* them. It answers "what would this policy
have done last quarter?" so a merchant can tune it first. Each step is planned on its own:
what a replayed step would have sent does not count against a later step's frequency cap
(deliveries really made, found ``done`` in the outbox, do).

Who
    :attr:`Backtest.recipients` maps each action kind to the customer ids it would have gone
    to; :attr:`Backtest.planned` holds one :class:`Planned` record per action and step
    (planned, held by the holdout, or delayed by the quiet period or the frequency cap).

What is counted
    **actions** are counted per step: a customer planned at three steps counts three times
    (``unique_actions`` counts distinct idempotency keys instead, which is what the outbox
    would really have delivered, since a key is sent once). **customers** are counted once
    per program whatever the number of steps. A customer **returned** when they placed a
    paid order (the rule of :func:`shopsync.core._data.paid_orders`, judged at the end of
    the window: paid and not cancelled by then, total above zero) with ``created_at`` in
    ``(t, t + horizon]`` after *any* step ``t`` at which they were planned.

The holdout
    Customers the planner held back with the ``holdout`` rule (they passed consent and
    suppression but sit in the control group) are counted per program as ``holdout`` and
    ``holdout_returned``. :class:`Lift` compares the two groups over marketing actions:
    *treated* are customers the policy meant to message (consent given, outside the holdout),
    including those the quiet period or the frequency cap only delayed, so both groups are
    chosen by the same rules up to the holdout hash (an intent-to-treat comparison). Its
    interval is Newcombe's hybrid score interval for a difference of proportions (Newcombe
    1998, method 10), from the Wilson score interval of each rate.

Replay or real sends
    In a replay nothing was sent, so treated and holdout customers should come back at the
    same rate, and the difference measures chance alone. When the period was really run,
    the treated customers' actions are in the outbox as ``done``; :attr:`Lift.delivered`
    counts them, and :attr:`Lift.sent` (at least half of them delivered) says the comparison
    measures real messages.

Censoring
    The store ends at its latest order (the last sync). A step whose window ``(t, t +
    horizon]`` reaches past it could not yet see every return, so its rates would be too
    low. Such steps are planned and counted (actions, customers, recipients) but left out of
    every return figure; they are listed in :attr:`Backtest.censored`, and ``observed``
    gives the number of customers the return figures rest on.

Consent
    A synced store knows a customer's consent from the platform's own consent date where it
    has one (Shopify's ``consentUpdatedAt``), else from the moment it first saw that version
    of the customer (its ``updated_at``); earlier, consent is ``unknown`` and the planner
    holds marketing back. Platforms update a customer when they order, so without consent
    dates (WooCommerce) customers who came back after a step often had no known consent at
    it, and drop out of both the treated and the holdout group.
    :attr:`Backtest.consent_unseen` counts such customers (currently subscribed) and
    :attr:`Backtest.notes` says how many of them came back: the return rates of marketing
    programs read low by that much.

Times
    ``start`` and ``end`` may be naive; they are then read as UTC, as the CLI's ``--as-of``
    is. Planning is read-only (loyalty notices are derived with ``dry_run``), so the store is
    left exactly as it was. Each step is a full plan: on the demo shops (22,000 orders) a step
    took 4-5 s, four fifths of it in the loyalty notices (every customer's points history is
    replayed up to the step); reading the store took a tenth, so reading it once for all
    steps would gain little.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from shopsync._backtest_results import (
    Backtest,
    Group,
    Lift,
    Planned,
    ProgramResult,
    wilson,
)
from shopsync._instants import instant
from shopsync.core._data import Frames, paid_orders, to_us
from shopsync.core.policy import Policy
from shopsync.errors import ConfigurationError
from shopsync.frames import load
from shopsync.planning import plan
from shopsync.store.shop_figures import (
    done_marketing_keys,
    newest_order_at,
    subscribed_customer_ids,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["Backtest", "Lift", "Planned", "ProgramResult", "backtest", "holdout_lift", "wilson"]

# -- entry points -----------------------------------------------------------------------------


def backtest(
    store: Store,
    policy: Policy | None,
    start: dt.datetime,
    end: dt.datetime,
    *,
    step: dt.timedelta = dt.timedelta(days=7),
    horizon: dt.timedelta = dt.timedelta(days=30),
    platform: str | None = None,
    shop: str | None = None,
    on_step: Callable[[dt.datetime], None] | None = None,
) -> Backtest:
    """Plan at every ``step`` from ``start`` (inclusive) to ``end`` (exclusive) and count.

    ``horizon`` is how long after a step an order counts as a return; ``platform`` and
    ``shop`` (both or neither) restrict it to one shop; ``on_step`` is called with each step
    once it is planned (a progress bar). Raises :class:`~shopsync.errors.ConfigurationError`
    for bad input, an unknown shop, or a store without orders.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if start >= end:
        raise ConfigurationError(f"start ({start.isoformat()}) must be before end")
    if step <= dt.timedelta(0):
        raise ConfigurationError(f"step must be positive, got {step}")
    steps: list[dt.datetime] = []
    t = start
    while t < end:
        steps.append(t)
        t += step
    replay = _replay(store, policy, steps, horizon, platform, shop, on_step)
    records = replay.records
    kinds = sorted({r.kind for r in records if r.group != "delayed"})
    programs = {k: _program(k, [r for r in records if r.kind == k]) for k in kinds}
    recipients = {
        k: sorted({r.customer_id for r in records if r.kind == k and r.group == "planned"})
        for k in kinds
    }
    return Backtest(
        start=start,
        end=end,
        step=step,
        horizon=horizon,
        steps=steps,
        programs=programs,
        lift=replay.lift(store),
        recipients={k: v for k, v in recipients.items() if v},
        planned=tuple(records),
        censored=replay.censored,
        latest_order=replay.latest,
        consent_unseen=len(replay.unseen),
        notes=replay.notes(),
    )


def holdout_lift(
    store: Store,
    policy: Policy | None,
    as_of_dates: Sequence[dt.datetime],
    *,
    horizon: dt.timedelta = dt.timedelta(days=30),
    platform: str | None = None,
    shop: str | None = None,
) -> Lift:
    """Treated against holdout repurchase rates over plans made at ``as_of_dates``.

    Dates whose horizon reaches past the latest order are left out (censored); naive dates
    are read as UTC.
    """
    if not as_of_dates:
        raise ConfigurationError("holdout_lift needs at least one as_of date")
    dates = sorted({_utc(d, "as_of") for d in as_of_dates})
    return _replay(store, policy, dates, horizon, platform, shop, None).lift(store)


# -- the replay -------------------------------------------------------------------------------


@dataclass
class _Replay:
    records: list[Planned]
    censored: list[dt.datetime]
    latest: dt.datetime
    shop_ids: dict[tuple[str, str], int]
    unseen: dict[tuple[str, str, str], bool | None]
    """Consent unknown at a step, subscribed now: whether they came back (None: censored)."""

    def notes(self) -> tuple[str, ...]:
        if not self.unseen:
            return ()
        observed = [v for v in self.unseen.values() if v is not None]
        return (
            f"{len(self.unseen):,} customer(s) were held for marketing with consent 'unknown' "
            "although the store records them as subscribed later: a synced store knows "
            "consent only from each customer's last update on, and customers who buy again "
            f"are updated then. {sum(observed):,} of {len(observed):,} observed came back; "
            "returns among the customers planned for marketing therefore read low",
        )

    def lift(self, store: Store) -> Lift:
        treated: dict[tuple[str, str, str], bool] = {}
        holdout: dict[tuple[str, str, str], bool] = {}
        treated_keys: dict[tuple[str, str, str], set[str]] = {}
        for r in self.records:
            if not r.marketing or r.returned is None:
                continue
            who = (r.platform, r.shop, r.customer_id)
            group = holdout if r.group == "holdout" else treated
            group[who] = group.get(who, False) or r.returned
            if r.group == "planned":
                treated_keys.setdefault(who, set()).add(r.idempotency_key)
        done = _done_keys(store, self.shop_ids, treated_keys)
        delivered = sum(1 for who in treated if treated_keys.get(who, set()) & done)
        return Lift(
            treated=len(treated),
            treated_returned=sum(treated.values()),
            holdout=len(holdout),
            holdout_returned=sum(holdout.values()),
            sent=bool(treated) and 2 * delivered >= len(treated),
            delivered=delivered,
        )


def _replay(
    store: Store,
    policy: Policy | None,
    steps: Sequence[dt.datetime],
    horizon: dt.timedelta,
    platform: str | None,
    shop: str | None,
    on_step: Callable[[dt.datetime], None] | None,
) -> _Replay:
    if policy is not None and not isinstance(policy, Policy):
        raise ConfigurationError(f"policy must be a shopsync.Policy, got {type(policy).__name__}")
    if horizon <= dt.timedelta(0):
        raise ConfigurationError(f"horizon must be positive, got {horizon}")
    policy = policy or Policy()
    shops = _shops(store, platform, shop)
    latest = _latest_order(store, shops)
    orders = {key: _orders(store, key, latest) for key in shops}
    subscribed = _subscribed_now(store, shops)
    unseen: dict[tuple[str, str, str], bool | None] = {}
    records: list[Planned] = []
    censored: list[dt.datetime] = []
    for t in steps:
        window_end = t + horizon
        if window_end > latest:
            censored.append(t)
            came_back: set[tuple[str, str, str]] | None = None
        else:
            came_back = _returners(orders, t, window_end)
        result = plan(store, policy, t, platform=platform, shop=shop, update_ledger=False)
        found = [(a, "planned") for a in result.actions] + [
            (h.action, _GROUPS[h.rule]) for h in result.held if h.rule in _GROUPS
        ]
        for action, group in found:
            who = (action.platform, action.shop, action.customer_id)
            records.append(
                Planned(
                    at=t,
                    kind=action.kind,
                    platform=action.platform,
                    shop=action.shop,
                    customer_id=action.customer_id,
                    idempotency_key=action.idempotency_key,
                    marketing=action.marketing,
                    group=group,  # type: ignore[arg-type]
                    returned=None if came_back is None else who in came_back,
                )
            )
        for h in result.held:
            who = (h.action.platform, h.action.shop, h.action.customer_id)
            if h.rule == "consent" and "'unknown'" in h.detail and who in subscribed:
                back = None if came_back is None else who in came_back
                unseen[who] = _either(unseen.get(who), back)
        if on_step is not None:
            on_step(t)
    return _Replay(records, censored, latest, shops, unseen)


_GROUPS: dict[str, Group] = {"holdout": "holdout", "quiet": "delayed", "frequency_cap": "delayed"}


def _program(kind: str, records: list[Planned]) -> ProgramResult:
    def people(group: Group) -> tuple[int, int, int]:
        seen: dict[tuple[str, str, str], bool | None] = {}
        for r in records:
            if r.group != group:
                continue
            who = (r.platform, r.shop, r.customer_id)
            seen[who] = _either(seen.get(who), r.returned)
        observed = [v for v in seen.values() if v is not None]
        return len(seen), len(observed), sum(observed)

    customers, observed, returned = people("planned")
    held, held_observed, held_returned = people("holdout")
    planned = [r for r in records if r.group == "planned"]
    return ProgramResult(
        kind=kind,
        actions=len(planned),
        customers=customers,
        returned=returned,
        holdout=held,
        holdout_returned=held_returned,
        unique_actions=len({(r.platform, r.shop, r.idempotency_key) for r in planned}),
        observed=observed,
        holdout_observed=held_observed,
    )


# -- store reads ------------------------------------------------------------------------------


def _shops(store: Store, platform: str | None, shop: str | None) -> dict[tuple[str, str], int]:
    """The shops in scope and their store ids, without creating any (reads must not write)."""
    if (platform is None) != (shop is None):
        raise ConfigurationError("pass both platform and shop, or neither")
    known = store.shops()
    if platform is not None and shop is not None:
        if (platform, shop) not in known:
            listed = ", ".join(f"{p}/{s}" for p, s in known) or "none"
            raise ConfigurationError(
                f"the store holds no shop {platform}/{shop} (it holds: {listed})"
            )
        known = [(platform, shop)]
    return {key: store.shop_id(*key, create=False) for key in known}


def _latest_order(store: Store, shops: dict[tuple[str, str], int]) -> dt.datetime:
    newest = newest_order_at(store, shops.values())  # test orders never count
    if newest is None:
        raise ConfigurationError("the store holds no orders; run `shopsync sync` first")
    return instant(int(newest))


def _orders(store: Store, key: tuple[str, str], latest: dt.datetime) -> Frames:
    """Every order of the shop with its refunds, to judge returns at any instant."""
    return load(
        store,
        *key,
        latest,
        currency="",  # not used; skips the query that finds the shop's main currency
        products=pl.DataFrame(schema={"id": pl.String}),
        advocates=False,
    )


def _returners(
    orders: dict[tuple[str, str], Frames], t: dt.datetime, until: dt.datetime
) -> set[tuple[str, str, str]]:
    """Customers with a paid order placed in ``(t, until]``, judged paid as of ``until``."""
    after, upto = to_us(t), to_us(until)
    out: set[tuple[str, str, str]] = set()
    for (platform, shop), frames in orders.items():
        bought = paid_orders(frames, upto).filter(pl.col("created_at") > after)
        out.update((platform, shop, cid) for cid in bought["customer_id"].unique().to_list())
    return out


def _subscribed_now(store: Store, shops: dict[tuple[str, str], int]) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for (platform, shop), shop_id in shops.items():
        out.update((platform, shop, cid) for cid in subscribed_customer_ids(store, shop_id))
    return out


def _done_keys(
    store: Store,
    shop_ids: dict[tuple[str, str], int],
    wanted: dict[tuple[str, str, str], set[str]],
) -> set[str]:
    """The wanted idempotency keys the outbox marked done (any sink)."""
    if not wanted:
        return set()
    keys = {k for ks in wanted.values() for k in ks}
    ids = [shop_ids[(p, s)] for p, s in {(p, s) for p, s, _ in wanted}]
    return done_marketing_keys(store, ids) & keys


# -- helpers ----------------------------------------------------------------------------------


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ConfigurationError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _either(seen: bool | None, now: bool | None) -> bool | None:
    """Came back after any observed step (None: no observed step yet)."""
    if seen is None:
        return now
    return seen or bool(now)
