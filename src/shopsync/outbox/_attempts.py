"""Delivery: each due pending row attempted once per run, then settled in the store.

Platform write-backs (stage 0) go before messages (stage 1); a row whose earlier stage is
not done waits, or is cancelled with it. Each attempt is counted before it is made
(:func:`_claim`), so a row that kills every run is parked instead of sent forever; a failure
that may pass waits out its :class:`Backoff`, one that cannot is parked at once.

A store error (a connection terminated, a lock timeout) is no failure of the sink: it fails
the run instead, and the row gets its attempt back (:func:`_unclaim`), so database blips
never park a message; the worker retries the job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shopsync._delivery_rules import Rules, deferral
from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError, ShopSyncError, StoreError
from shopsync.models import ConsentState, Customer
from shopsync.outbox._queue import load_action
from shopsync.outbox._results import ApplyResult, Delivery, Status
from shopsync.sinks._base import Cancelled, DeliveryContext, DeliveryError, Sink
from shopsync.store import outbox_rows, times
from shopsync.store.delivery import defer_row
from shopsync.store.errors import is_database_error

if TYPE_CHECKING:
    from shopsync.core.policy import Policy
    from shopsync.store import Lease, Store

__all__ = ["Backoff", "deliver", "describe", "due_rows", "json_ready", "prepare", "withheld"]

log = logging.getLogger("shopsync.outbox")


@dataclass(frozen=True)
class Backoff:
    """When a failed row is attempted again: ``initial`` seconds after the first failure,
    times ``factor`` after each further one, at most ``maximum``; parked after
    ``max_attempts`` attempts."""

    initial: float = 60.0
    factor: float = 2.0
    maximum: float = 3600.0
    max_attempts: int = 5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial < 0 or self.factor < 1:
            raise ConfigurationError("Backoff needs max_attempts >= 1, initial >= 0, factor >= 1")

    def delay(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        seconds = min(self.initial * self.factor ** max(attempts - 1, 0), self.maximum)
        return dt.timedelta(seconds=seconds)


def withheld(store: Store, shop_id: int, customer: Customer, policy: Policy | None) -> str | None:
    """Why marketing to this customer is not allowed now (None: it is)."""
    unsubscribed = outbox_rows.unsubscribed(store, shop_id, customer.id)
    if unsubscribed is not None:
        at = times.from_micros(unsubscribed.created_at)
        return f"customer unsubscribed ({unsubscribed.source}) at {at.isoformat()}"  # type: ignore[union-attr]
    state = customer.consent.email.state
    if state is ConsentState.SUBSCRIBED:
        return None
    soft = policy is not None and policy.consent.allow_soft_opt_in
    if soft and state in (ConsentState.NOT_SUBSCRIBED, ConsentState.UNKNOWN):
        return None
    return f"no marketing consent (email consent is {state.value})"


def due_rows(store: Store, names: Iterable[str], at: int) -> list[Any]:
    return outbox_rows.due_rows(store, names)


@dataclass
class _Stage:
    sink: str
    stage: int
    status: str
    reason: str | None


def _stages(store: Store, rows: list[Any]) -> dict[tuple[int, str], list[_Stage]]:
    """Every row of the actions that have later-stage rows due, by (shop, key): read once,
    then kept current as this run settles rows."""
    later = sorted({(r.shop_id, r.idempotency_key) for r in rows if r.stage > 0})
    found: dict[tuple[int, str], list[_Stage]] = {}
    for r in outbox_rows.key_rows(store, later):
        found.setdefault((r.shop_id, r.idempotency_key), []).append(
            _Stage(r.sink, r.stage, r.status, r.reason)
        )
    return found


def _claim(store: Store, row: Any, attempts: int, at: int) -> bool:
    """Count the attempt before making it, in its own transaction.

    A process killed during a delivery then still used up one attempt, so a row that kills
    every run is parked after ``max_attempts`` instead of being sent on every run; and of two
    overlapping runs only the one whose update lands delivers the row.
    """
    return outbox_rows.claim_row(store, row.id, row.attempts, attempts, at)


def _unclaim(store: Store, row: Any, attempts: int, at: int, error: BaseException) -> None:
    """Give back the attempt :func:`_claim` counted, the store having failed before the sink
    could finish; if the store is still away the attempt stays counted, as after a crash."""
    try:
        outbox_rows.claim_row(store, row.id, attempts, row.attempts, at)
    except Exception as again:
        if not _store_failed(again):
            raise
        log.warning("store error, attempt of %s kept: %s", row.idempotency_key, describe(error))


def _store_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is the store's (the database's, or the store refusing), not the sink's."""
    return is_database_error(exc) or isinstance(exc, StoreError)


def _settle(store: Store, row_id: int, at: int, **values: Any) -> None:
    outbox_rows.settle_row(store, row_id, at, **values)


def deliver(
    store: Store,
    sinks: dict[str, Sink],
    moment: dt.datetime,
    backoff: Backoff,
    policy: Policy | None,
    report: ApplyResult,
    on_delivery: Callable[[Delivery], None] | None,
    lease: Lease | None = None,
    shop_ids: set[int | None] | None = None,
) -> None:
    at = times.to_micros(moment)
    rows = outbox_rows.due_rows(store, sinks, shop_ids, with_actions=False)
    stages = _stages(store, rows)
    rules = Rules(store, policy)
    if policy is not None:
        rules.remember({r.shop_id for r in rows}, at)
    for row in _with_actions(store, rows, at, report):
        siblings = stages.get((row.shop_id, row.idempotency_key), [])
        earlier = [s for s in siblings if s.stage < row.stage]
        if lease is not None:
            lease.keep()  # LeaseLost: another run took over; stop before sending anything
        outcome = _attempt(
            store, sinks[row.sink], row, earlier, moment, backoff, policy, rules.of(row.shop_id)
        )
        if outcome is None:
            report.waiting += 1
            continue
        if outcome.status == "deferred":
            report.deferred += 1
            report.deliveries.append(outcome)
            continue
        for sibling in siblings:
            if sibling.sink == row.sink:
                sibling.status, sibling.reason = outcome.status, outcome.reason
        if outcome.status == "done":
            report.delivered += 1
        elif outcome.status == "pending":
            report.failed += 1
        elif outcome.status == "parked":
            report.parked += 1
        else:
            report.cancelled += 1
        report.deliveries.append(outcome)
        if on_delivery is not None:
            on_delivery(outcome)


_PART = 500  # due rows whose actions are read at once


def _with_actions(store: Store, rows: list[Any], at: int, report: ApplyResult) -> Iterator[Any]:
    """The due rows with their recorded actions, read a part at a time just before the part
    is delivered (a run of 250,000 rows does not hold every action); rows not due yet are
    counted waiting, rows gone since are left out."""
    for start in range(0, len(rows), _PART):
        part = rows[start : start + _PART]
        due = [r for r in part if r.due_at <= at and r.next_attempt_at <= at]
        report.waiting += len(part) - len(due)
        actions = outbox_rows.actions_of_rows(store, [r.id for r in due])
        for row in due:
            if row.id in actions:
                yield SimpleNamespace(**row._mapping, action=actions[row.id])


def _attempt(
    store: Store,
    sink: Sink,
    row: Any,
    earlier: list[_Stage],
    moment: dt.datetime,
    backoff: Backoff,
    policy: Policy | None,
    rules: Policy | None,
) -> Delivery | None:
    """One attempt at one row, settled in the store; None if it has to wait. ``rules``: the
    policy whose quiet hours and frequency cap hold at delivery (``policy`` or the one the
    shop's last apply with a policy left)."""
    at = times.to_micros(moment)
    blocked = [r for r in earlier if r.status != "done"]
    if any(r.status == "pending" for r in blocked):
        return None
    attempts = row.attempts + 1

    def settle(status: Status, **values: Any) -> Delivery:
        if status != "pending":
            values["finished_at"] = at
        _settle(store, row.id, at, status=status, attempts=attempts, **values)
        return Delivery(
            row.idempotency_key,
            row.sink,
            row.kind,
            row.customer_id,
            status,
            attempts,
            values.get("result"),
            values.get("reason"),
        )

    if any(r.status == "parked" for r in blocked):
        return None  # waits for the write-back it depends on (``retry_parked`` frees it)
    if blocked:
        first = blocked[0]
        return settle("cancelled", reason=f"{first.sink} {first.status}: {first.reason}")
    if row.attempts >= backoff.max_attempts:  # every earlier attempt died mid-delivery
        reason = f"gave up after {row.attempts} attempts that did not finish (process died?)"
        attempts = row.attempts  # no new attempt was made (settle reads it when called)
        return settle("parked", reason=reason)
    load = partial(load_action, row.model, row.action)
    held = deferral(store, row, sink, moment, rules, load, creates_code=False)
    if held is not None:
        try:  # a row that must be cancelled is cancelled, not deferred
            prepare(store, row, moment, policy)
        except Cancelled as exc:
            return settle("cancelled", reason=str(exc))
        except Exception as exc:  # reported by the attempt, once the row may go
            if _store_failed(exc):
                raise
        defer_row(store, row.id, row.attempts, held, at)
        base = (row.idempotency_key, row.sink, row.kind, row.customer_id)
        return Delivery(*base, "deferred", row.attempts, reason=held)
    if not _claim(store, row, attempts, at):
        return None  # another run took this row first
    try:
        action, context = prepare(store, row, moment, policy)
        result = sink.deliver(action, context)
    except Cancelled as exc:
        log.info("cancelled %s -> %s: %s", row.idempotency_key, row.sink, exc)
        return settle("cancelled", reason=str(exc))
    except Exception as exc:  # any sink failure settles the row, never loses it
        if _store_failed(exc):  # not the sink's: fail the run, the row as it was
            _unclaim(store, row, attempts, at, exc)
            raise
        retryable = exc.retryable if isinstance(exc, ShopSyncError) else True
        reason = describe(exc)
        if retryable and attempts < backoff.max_attempts:
            log.info(
                "attempt %d of %s -> %s failed: %s", attempts, row.idempotency_key, row.sink, reason
            )
            later = times.to_micros(moment + backoff.delay(attempts))
            return settle("pending", reason=reason, next_attempt_at=later)
        if retryable:
            reason = f"gave up after {attempts} attempts: {reason}"
        log.warning("parked %s -> %s: %s", row.idempotency_key, row.sink, reason)
        return settle("parked", reason=reason)
    return settle("done", result=json_ready(result), reason=None)


def describe(exc: BaseException) -> str:
    if isinstance(exc, ShopSyncError):
        return exc.message if isinstance(exc, DeliveryError) else str(exc)
    return f"{type(exc).__name__}: {exc}"


def json_ready(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        result = {"result": result}
    return json.loads(json.dumps(result, default=str))  # type: ignore[no-any-return]


def prepare(
    store: Store, row: Any, moment: dt.datetime, policy: Policy | None
) -> tuple[Action, DeliveryContext]:
    try:
        action = load_action(row.model, row.action)
    except ValidationError as exc:
        raise DeliveryError(
            f"recorded action no longer validates: {exc}", retryable=False
        ) from None
    customer = store.get(Customer, row.platform, row.shop, row.customer_id)
    if customer is None:
        raise Cancelled(
            f"customer {row.customer_id} is no longer in the store (deleted or redacted)"
        )
    if customer.consent.email.state is ConsentState.REDACTED:
        raise Cancelled(f"customer {row.customer_id} was redacted")
    if row.marketing:
        reason = withheld(store, row.shop_id, customer, policy)
        if reason is not None:
            raise Cancelled(reason)
    checkout_id = getattr(action, "checkout_id", None)
    if action.kind == "abandoned_checkout" and isinstance(checkout_id, str):  # issue 22
        from shopsync.store.checkout_recovery import recovered

        ended = recovered(store, row.platform, row.shop, row.customer_id, checkout_id)
        if ended is not None:
            raise Cancelled(ended)
    return action, DeliveryContext(store=store, customer=customer, now=moment, policy=policy)
