"""The outbox: every planned action delivered once, through every sink that wants it.

::

    report = shopsync.apply(plan, store, sinks=[shop, shopsync.sinks.JsonLines("out.jsonl")])
    preview = shopsync.apply(plan, store, sinks, dry_run=True)   # what would be sent
    shopsync.outbox.list_outbox(store, status="parked")

How a run goes:

1. **Record.** Each (action, sink) pair the sink accepts becomes a row in the store's
   ``outbox`` table, ``pending``, keyed by the action's idempotency key and the sink's name
   (unique). Recording a key again adds nothing: a planned action is never queued twice.
2. **Deliver.** Pending rows that are due are attempted, platform write-backs (stage 0)
   before messages (stage 1), so an email never announces a discount code the platform
   refused. Just before each attempt the customer is read from the store again: a customer
   who is gone or redacted cancels the row, and so does a marketing action for a customer
   who withdrew consent, on the platform or through the one-click unsubscribe link
   (:func:`unsubscribe_app`). A marketing row is also **deferred** (left pending, not
   attempted, the reason kept) while quiet hours or a quiet period last or the frequency cap
   would be broken now, counting what the outbox has delivered, under the ``policy`` passed
   or, without one, the policy of the shop's last apply that passed one; and a message that
   announces a discount code waits until the platform write-back that creates the code (the
   action's stage-0 row) is done, whichever run does it (:mod:`shopsync._delivery_rules`).
3. **Settle.** Success marks the row ``done`` with the sink's result (code created, message
   id, HTTP status) in its own transaction; a done row is never attempted again. A failure
   that may pass (5xx, timeout, dropped connection) leaves the row pending until
   ``next_attempt_at`` (exponential :class:`Backoff`), and parks it after
   ``Backoff.max_attempts`` attempts; a failure that cannot pass (4xx, template error,
   refused recipient) parks it at once. Parked rows keep the reason;
   :func:`retry_parked` queues them again.

A crash between delivery and settling leaves the row pending, so the next run delivers it
again. Sinks are built for that: the platform sink derives every write from the key and
checks before it creates (a discount code is looked up by code first), so it is exactly
once; the file sinks skip keys already in the file; email and webhooks are at least once
and carry a stable Message-ID / ``Idempotency-Key`` for the receiver to drop a repeat.
A store error during a delivery (a connection lost, a lock timeout) is not the sink's
failure: the run raises it and the row keeps its attempts and ``next_attempt_at``.

One ``apply`` per store at a time, really: delivery holds the store's ``apply`` lease, so a
run that overlaps another waits for it and then finds its rows done; a run that dies lets
the lease lapse after its ttl (a row it had claimed is retried, as after any crash).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shopsync._delivery_rules import Rules
from shopsync._renamed import old_name
from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError
from shopsync.outbox._attempts import Backoff, deliver
from shopsync.outbox._dry_run import preview
from shopsync.outbox._entries import OutboxEntry, list_outbox, retry_parked
from shopsync.outbox._queue import actions_of, as_sink, find_shop_id, moment_of, record
from shopsync.outbox._results import STATUSES, ApplyResult, Delivery
from shopsync.outbox._results import Status as Status
from shopsync.outbox._unsubscribe import (
    record_unsubscribe,
    signed_token,
    unsubscribe_app,
    unsubscribe_token,
    unsubscribe_url,
    verify_signed_token,
    verify_unsubscribe_token,
)
from shopsync.sinks._base import Sink
from shopsync.store import times

if TYPE_CHECKING:
    from shopsync.core.policy import Policy
    from shopsync.store import Store

__all__ = [
    "STATUSES",
    "ApplyResult",
    "Backoff",
    "Delivery",
    "OutboxEntry",
    "apply",
    "list_outbox",
    "record_unsubscribe",
    "retry_parked",
    "signed_token",
    "unsubscribe_app",
    "unsubscribe_token",
    "unsubscribe_url",
    "verify_signed_token",
    "verify_unsubscribe_token",
]

_BACKOFF = Backoff()


def apply(
    plan_or_actions: Iterable[Action] | Any,
    store: Store,
    sinks: Sequence[Sink | Any],
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    backoff: Backoff = _BACKOFF,
    policy: Policy | None = None,
    on_delivery: Callable[[Delivery], None] | None = None,
    lease_wait: float = 60.0,
    lease_ttl: float = 300.0,
    shops: Iterable[tuple[str, str]] | None = None,
) -> ApplyResult:
    """Record the actions in the outbox, then deliver every due pending row once.

    ``plan_or_actions`` is a plan (anything with ``.actions``), an iterable of actions, or
    None to deliver only what is already pending. ``sinks`` are :class:`~shopsync.sinks.Sink`
    objects; a platform adapter (``shopsync.connect(...)``) stands for
    :class:`shopsync.sinks.Platform` around it. ``now`` (default: the clock) decides what is
    due. ``policy`` supplies the consent settings (soft opt-in). ``on_delivery`` is called
    after each row is settled. With ``dry_run`` nothing is written or sent: the report's
    deliveries say what would happen to each pair, with the payload each sink would send.

    Delivery holds the store's ``apply`` lease (:meth:`Store.lease`): a second run waits up to
    ``lease_wait`` seconds for the first to finish, then raises
    :class:`~shopsync.store.LeaseHeld` (retryable). Before every row the run makes sure it
    still holds the lease (renewing it once a quarter of ``lease_ttl`` has passed); it lapses
    ``lease_ttl`` seconds after a run that died.

    ``shops`` (``(platform, shop)`` pairs) delivers only those shops' pending rows: sinks are
    named by kind, so one shop's file sink would otherwise also deliver another shop's rows
    left pending for a sink of the same name (a worker runs one shop's apply at a time).
    """
    moment = moment_of(now)
    actions = actions_of(plan_or_actions)
    targets = [as_sink(s) for s in sinks]
    names = [s.name for s in targets]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two sinks share a name: {sorted(names)}; pass name=...")
    by_name = {s.name: s for s in targets}
    if dry_run:
        return preview(actions, store, by_name, moment, policy)
    report = ApplyResult()
    report.recorded = record(actions, store, targets, moment)
    if policy is not None and actions:
        shop_ids = {find_shop_id(store, a.platform, a.shop) for a in actions}
        Rules(store, policy).remember(
            {s for s in shop_ids if s is not None}, times.to_micros(moment)
        )
    with store.lease("apply", ttl=lease_ttl, wait=lease_wait) as lease:
        only = None if shops is None else {find_shop_id(store, p, s) for p, s in shops}
        deliver(store, by_name, moment, backoff, policy, report, on_delivery, lease, only)
    settle = getattr(plan_or_actions, "settle", None)
    if callable(settle) and targets:  # an incremental plan: its change notes are done now
        settle(store)
    return report


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
