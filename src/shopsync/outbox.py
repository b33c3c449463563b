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

One ``apply`` per store at a time, really: delivery holds the store's ``apply`` lease, so a
run that overlaps another waits for it and then finds its rows done; a run that dies lets
the lease lapse after its ttl (a row it had claimed is retried, as after any crash).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from pydantic import SecretStr, ValidationError

from shopsync._delivery_rules import Rules, deferral
from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError, ShopSyncError, SignatureError
from shopsync.models import ConsentState, Customer
from shopsync.sinks._base import Cancelled, DeliveryContext, DeliveryError, Sink
from shopsync.sinks._preview import mask_preview
from shopsync.store import NO_SHOP, _rows, outbox_rows
from shopsync.store.delivery import defer_row

if TYPE_CHECKING:
    from shopsync.core.policy import Policy
    from shopsync.store import Lease, Store

__all__ = [
    "STATUSES",
    "ApplyReport",
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

log = logging.getLogger("shopsync.outbox")

Status = Literal["pending", "done", "parked", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "done", "parked", "cancelled")


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


@dataclass(frozen=True)
class OutboxEntry:
    """One row of the outbox (see :func:`list_outbox`)."""

    id: int
    platform: str
    shop: str
    idempotency_key: str
    sink: str
    kind: str
    customer_id: str
    marketing: bool
    status: Status
    attempts: int
    due_at: dt.datetime
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    result: dict[str, Any] | None
    reason: str | None
    action: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Delivery:
    """What one run did with one (action, sink) pair.

    ``status`` is the row's status afterwards; in a dry run it is what would happen:
    ``send`` (with ``payload``, what the sink would send), ``cancel`` or ``park`` (with the
    reason), or the status the row already has (``done``, ``parked``...). ``waiting`` means
    not attempted yet: not due, in backoff, or behind a platform write-back. ``deferred``
    (real runs too): held back by a delivery-time rule, with the reason; still pending.
    """

    idempotency_key: str
    sink: str
    kind: str
    customer_id: str
    status: str
    attempts: int = 0
    result: dict[str, Any] | None = None
    reason: str | None = None
    payload: dict[str, Any] | None = None


@dataclass
class ApplyReport:
    """What :func:`apply` did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    recorded: int = 0
    """Rows added to the outbox by this run (new action/sink pairs)."""
    delivered: int = 0
    failed: int = 0
    """Attempts that failed and will be retried after their backoff."""
    parked: int = 0
    cancelled: int = 0
    waiting: int = 0
    """Pending rows not attempted: not due yet, in backoff, or behind a platform write."""
    deferred: int = 0
    """Pending rows held back at delivery time (quiet hours, frequency cap, a discount code
    not created yet): listed in ``deliveries`` with the reason, delivered by a later run."""
    deliveries: list[Delivery] = field(default_factory=list)

    def __str__(self) -> str:
        if self.dry_run:
            sends = sum(1 for d in self.deliveries if d.status == "send")
            return f"dry run: {sends} would be sent, {len(self.deliveries) - sends} not"
        return (
            f"{self.recorded} deliveries recorded in the outbox, {self.delivered} delivered, "
            f"{self.failed} to retry, "
            f"{self.parked} parked, {self.cancelled} cancelled, {self.waiting} waiting"
            + (f", {self.deferred} deferred" if self.deferred else "")
        )


# ------------------------------------------------------------------------------ helpers


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return value.astimezone(dt.timezone.utc)


def _actions(plan_or_actions: Any) -> list[Action]:
    if plan_or_actions is None:
        return []
    items = getattr(plan_or_actions, "actions", plan_or_actions)
    found = list(items)
    for item in found:
        if not isinstance(item, Action):
            raise TypeError(f"apply() takes actions, not {type(item).__name__}")
    return found


def _as_sink(candidate: Any) -> Sink:
    if isinstance(candidate, Sink):
        return candidate
    if hasattr(candidate, "platform") and hasattr(candidate, "shop"):
        from shopsync.sinks.platform import Platform

        return Platform(candidate)
    raise TypeError(f"{type(candidate).__name__} is neither a sink nor a platform adapter")


def _model_path(action: Action) -> str:
    return f"{type(action).__module__}:{type(action).__qualname__}"


def _load_action(path: str, data: dict[str, Any]) -> Action:
    """The action as recorded. Modules outside shopsync are imported only if the program
    already did (the stored path must not make the outbox import arbitrary code)."""
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        if module_name != "shopsync" and not module_name.startswith("shopsync."):
            raise Cancelled(f"action class {path} is not loaded in this program")
        module = importlib.import_module(module_name)
    cls: Any = module
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, Action)):
        raise Cancelled(f"{path} is not an Action class")
    return cls.model_validate(data)


def _find_shop_id(store: Store, platform: str, shop: str) -> int | None:
    found = store.shop_id(platform, shop, create=False)
    return None if found == NO_SHOP else found


def _withheld(store: Store, shop_id: int, customer: Customer, policy: Policy | None) -> str | None:
    """Why marketing to this customer is not allowed now (None: it is)."""
    unsubscribed = outbox_rows.unsubscribed(store, shop_id, customer.id)
    if unsubscribed is not None:
        at = _rows.from_micros(unsubscribed.created_at)
        return f"customer unsubscribed ({unsubscribed.source}) at {at.isoformat()}"  # type: ignore[union-attr]
    state = customer.consent.email.state
    if state is ConsentState.SUBSCRIBED:
        return None
    soft = policy is not None and policy.consent.allow_soft_opt_in
    if soft and state in (ConsentState.NOT_SUBSCRIBED, ConsentState.UNKNOWN):
        return None
    return f"no marketing consent (email consent is {state.value})"


# ------------------------------------------------------------------------------ apply


def apply(
    plan_or_actions: Iterable[Action] | Any,
    store: Store,
    sinks: Sequence[Sink | Any],
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    backoff: Backoff = Backoff(),
    policy: Policy | None = None,
    on_delivery: Callable[[Delivery], None] | None = None,
    lease_wait: float = 60.0,
    lease_ttl: float = 300.0,
) -> ApplyReport:
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
    :class:`~shopsync.store.LeaseHeld` (retryable). The lease is renewed before every row and
    lapses ``lease_ttl`` seconds after a run that died.
    """
    moment = _aware(now) if now is not None else _utcnow()
    actions = _actions(plan_or_actions)
    targets = [_as_sink(s) for s in sinks]
    names = [s.name for s in targets]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two sinks share a name: {sorted(names)}; pass name=...")
    by_name = {s.name: s for s in targets}
    if dry_run:
        return _dry_run(actions, store, by_name, moment, policy)
    report = ApplyReport()
    report.recorded = _record(actions, store, targets, moment)
    if policy is not None and actions:
        shop_ids = {_find_shop_id(store, a.platform, a.shop) for a in actions}
        Rules(store, policy).remember(
            {s for s in shop_ids if s is not None}, _rows.to_micros(moment)
        )
    with store.lease("apply", ttl=lease_ttl, wait=lease_wait) as lease:
        _deliver(store, by_name, moment, backoff, policy, report, on_delivery, lease)
    return report


def _row(shop_id: int, action: Action, sink: Sink, at: int) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "idempotency_key": action.idempotency_key,
        "sink": sink.name,
        "stage": sink.stage,
        "kind": action.kind,
        "customer_id": action.customer_id,
        "marketing": int(_needs_consent(action, sink)),
        "model": _model_path(action),
        "action": action.model_dump(mode="json"),
        "status": "pending",
        "attempts": 0,
        "due_at": _rows.to_micros(action.due_at),
        "next_attempt_at": _rows.to_micros(action.due_at),
        "created_at": at,
        "updated_at": at,
    }


def _needs_consent(action: Action, sink: Sink) -> bool:
    """Marketing consent is checked for sinks that reach the customer (email, webhooks to an
    ESP, ad audiences), not for writes into the shop's own records or files. A sink that is
    marketing whatever the action (an ad audience) asks for consent on every action."""
    marketing = action.marketing or bool(getattr(sink, "requires_consent", False))
    return marketing and bool(getattr(sink, "contacts_customer", True))


def _record(actions: list[Action], store: Store, sinks: list[Sink], moment: dt.datetime) -> int:
    if not actions:
        return 0
    at = _rows.to_micros(moment)
    with store.transaction() as conn:
        rows: list[dict[str, Any]] = []
        for action in actions:
            shop_id = store.shop_id(action.platform, action.shop, conn)
            rows.extend(_row(shop_id, action, s, at) for s in sinks if s.accepts(action))
        return outbox_rows.record_rows(conn, rows)


def _due_rows(store: Store, names: Iterable[str], at: int) -> list[Any]:
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
    for r in outbox_rows.key_rows(store, [k for _, k in later]):
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


def _settle(store: Store, row_id: int, at: int, **values: Any) -> None:
    outbox_rows.settle_row(store, row_id, at, **values)


def _deliver(
    store: Store,
    sinks: dict[str, Sink],
    moment: dt.datetime,
    backoff: Backoff,
    policy: Policy | None,
    report: ApplyReport,
    on_delivery: Callable[[Delivery], None] | None,
    lease: Lease | None = None,
) -> None:
    at = _rows.to_micros(moment)
    rows = _due_rows(store, sinks, at)
    stages = _stages(store, rows)
    rules = Rules(store, policy)
    if policy is not None:
        rules.remember({r.shop_id for r in rows}, at)
    for row in rows:
        if row.due_at > at or row.next_attempt_at > at:
            report.waiting += 1
            continue
        siblings = stages.get((row.shop_id, row.idempotency_key), [])
        earlier = [s for s in siblings if s.stage < row.stage]
        if lease is not None:
            lease.renew()  # LeaseLost: another run took over; stop before sending anything
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
    at = _rows.to_micros(moment)
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
    load = partial(_load_action, row.model, row.action)
    held = deferral(store, row, sink, moment, rules, load, creates_code=False)
    if held is not None:
        try:  # a row that must be cancelled is cancelled, not deferred
            _prepare(store, row, moment, policy)
        except Cancelled as exc:
            return settle("cancelled", reason=str(exc))
        except Exception:  # reported by the attempt, once the row may go
            pass
        defer_row(store, row.id, row.attempts, held, at)
        base = (row.idempotency_key, row.sink, row.kind, row.customer_id)
        return Delivery(*base, "deferred", row.attempts, reason=held)
    if not _claim(store, row, attempts, at):
        return None  # another run took this row first
    try:
        action, context = _prepare(store, row, moment, policy)
        result = sink.deliver(action, context)
    except Cancelled as exc:
        log.info("cancelled %s -> %s: %s", row.idempotency_key, row.sink, exc)
        return settle("cancelled", reason=str(exc))
    except Exception as exc:  # any sink failure settles the row, never loses it
        retryable = exc.retryable if isinstance(exc, ShopSyncError) else True
        reason = _describe(exc)
        if retryable and attempts < backoff.max_attempts:
            log.info(
                "attempt %d of %s -> %s failed: %s", attempts, row.idempotency_key, row.sink, reason
            )
            later = _rows.to_micros(moment + backoff.delay(attempts))
            return settle("pending", reason=reason, next_attempt_at=later)
        if retryable:
            reason = f"gave up after {attempts} attempts: {reason}"
        log.warning("parked %s -> %s: %s", row.idempotency_key, row.sink, reason)
        return settle("parked", reason=reason)
    return settle("done", result=_json_ready(result), reason=None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ShopSyncError):
        return exc.message if isinstance(exc, DeliveryError) else str(exc)
    return f"{type(exc).__name__}: {exc}"


def _json_ready(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        result = {"result": result}
    return json.loads(json.dumps(result, default=str))  # type: ignore[no-any-return]


def _prepare(
    store: Store, row: Any, moment: dt.datetime, policy: Policy | None
) -> tuple[Action, DeliveryContext]:
    try:
        action = _load_action(row.model, row.action)
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
        reason = _withheld(store, row.shop_id, customer, policy)
        if reason is not None:
            raise Cancelled(reason)
    return action, DeliveryContext(store=store, customer=customer, now=moment)


def _dry_run(
    actions: list[Action],
    store: Store,
    sinks: dict[str, Sink],
    moment: dt.datetime,
    policy: Policy | None,
) -> ApplyReport:
    report = ApplyReport(dry_run=True)
    at = _rows.to_micros(moment)
    seen: set[tuple[int | None, str, str]] = set()
    items: list[tuple[Any, Sink]] = []
    shop_ids: dict[tuple[str, str], int | None] = {}
    for action in actions:
        ref = (action.platform, action.shop)
        if ref not in shop_ids:
            shop_ids[ref] = _find_shop_id(store, *ref)
        for sink in sinks.values():
            if sink.accepts(action):
                items.append((_Planned(action, shop_ids[ref], _needs_consent(action, sink)), sink))
    for row in _due_rows(store, sinks, at):
        items.append((row, sinks[row.sink]))
    existing = _existing_rows(store)
    dry_rules = Rules(store, policy)
    for item, sink in items:
        key = (item.shop_id, item.idempotency_key, sink.name)
        if key in seen:
            continue
        seen.add(key)
        found = existing.get(key)
        base = (item.idempotency_key, sink.name, item.kind, item.customer_id)
        if found is not None and found.status != "pending":
            report.deliveries.append(
                Delivery(*base, found.status, found.attempts, found.result, found.reason)
            )
            continue
        due = item.due_at if found is None else max(found.due_at, found.next_attempt_at)
        if due > at:
            report.waiting += 1
            report.deliveries.append(Delivery(*base, "waiting", reason="not due yet"))
            continue
        try:
            if item.shop_id is None:
                raise Cancelled(f"shop {item.shop!r} is not in the store")
            action, context = _prepare(store, item, moment, policy)
            creates = _earlier_sink_accepts(item, sink, sinks)
            rules = policy if policy is not None else dry_rules.of(item.shop_id)
            load = partial(_load_action, item.model, item.action)
            held = deferral(store, item, sink, moment, rules, load, creates_code=creates)
            if held is not None:
                report.deferred += 1
                report.deliveries.append(Delivery(*base, "deferred", reason=held))
                continue
            payload = sink.render(action, context)
        except Cancelled as exc:
            report.cancelled += 1
            report.deliveries.append(Delivery(*base, "cancel", reason=str(exc)))
            continue
        except Exception as exc:  # reported, as a real run would park it
            report.parked += 1
            report.deliveries.append(Delivery(*base, "park", reason=_describe(exc)))
            continue
        preview = mask_preview(_json_ready(payload))  # a preview is shown: no secrets in it
        report.deliveries.append(Delivery(*base, "send", payload=preview))
    return report


def _earlier_sink_accepts(item: Any, sink: Sink, sinks: dict[str, Sink]) -> bool:
    """Whether a sink of an earlier stage in this dry run would write the action back first."""
    try:
        action = _load_action(item.model, item.action)
    except Exception:  # the preview itself reports a broken action
        return False
    return any(s.stage < sink.stage and s.accepts(action) for s in sinks.values())


@dataclass(frozen=True)
class _Planned:
    """An action not recorded yet, shaped like an outbox row for the dry run."""

    action_obj: Action
    shop_id: int | None
    needs_consent: bool

    def __getattr__(self, name: str) -> Any:
        a = self.action_obj
        values = {
            "idempotency_key": a.idempotency_key,
            "kind": a.kind,
            "customer_id": a.customer_id,
            "platform": a.platform,
            "shop": a.shop,
            "marketing": self.needs_consent,
            "model": _model_path(a),
            "action": a.model_dump(mode="json"),
            "due_at": _rows.to_micros(a.due_at),
        }
        if name in values:
            return values[name]
        raise AttributeError(name)


def _existing_rows(store: Store) -> dict[tuple[int | None, str, str], Any]:
    return {(r.shop_id, r.idempotency_key, r.sink): r for r in outbox_rows.existing_rows(store)}


# ------------------------------------------------------------------------------ reading


def list_outbox(
    store: Store,
    status: Status | Iterable[Status] | None = None,
    *,
    platform: str | None = None,
    shop: str | None = None,
    kind: str | None = None,
    sink: str | None = None,
    limit: int | None = None,
) -> list[OutboxEntry]:
    """Outbox rows, oldest first, filtered by status (one or several), shop, kind or sink."""
    wanted: list[str] | None = None
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        unknown = set(wanted) - set(STATUSES)
        if unknown:
            raise ConfigurationError(f"unknown outbox status {sorted(unknown)}; use {STATUSES}")
    rows = outbox_rows.list_rows(
        store, wanted, platform=platform, shop=shop, kind=kind, sink=sink, limit=limit
    )
    return [_entry(r) for r in rows]


def _entry(r: Any) -> OutboxEntry:
    def when(value: int | None) -> dt.datetime | None:
        return _rows.from_micros(value)

    return OutboxEntry(
        id=r.id,
        platform=r.platform,
        shop=r.shop,
        idempotency_key=r.idempotency_key,
        sink=r.sink,
        kind=r.kind,
        customer_id=r.customer_id,
        marketing=bool(r.marketing),
        status=r.status,
        attempts=r.attempts,
        due_at=when(r.due_at),  # type: ignore[arg-type]
        next_attempt_at=when(r.next_attempt_at),  # type: ignore[arg-type]
        created_at=when(r.created_at),  # type: ignore[arg-type]
        updated_at=when(r.updated_at),  # type: ignore[arg-type]
        finished_at=when(r.finished_at),
        result=r.result,
        reason=r.reason,
        action=r.action,
    )


def retry_parked(
    store: Store, keys: Iterable[str] | None = None, *, now: dt.datetime | None = None
) -> int:
    """Queue parked rows again (all, or those of the given idempotency keys), with their
    attempts reset; returns how many."""
    at = _rows.to_micros(_aware(now) if now is not None else _utcnow())
    return outbox_rows.requeue_parked(store, keys, at)


# ------------------------------------------------------------------------------ unsubscribe


def _secret_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    value = secret.encode() if isinstance(secret, str) else secret
    if len(value) < 16:
        raise ConfigurationError("the unsubscribe secret must be at least 16 bytes")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_token(secret: str | bytes | SecretStr, fields: list[str]) -> str:
    """``payload.signature`` (URL-safe) over a list of strings: the one signing of shopsync's
    links (unsubscribe here, double opt-in in :mod:`shopsync.consent`). Each kind of link puts
    a different number of fields, so one kind's token never verifies as another's."""
    payload = _b64(json.dumps(fields).encode())
    signature = hmac.new(_secret_bytes(secret), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify_signed_token(
    secret: str | bytes | SecretStr, token: str, size: int, what: str = "link"
) -> list[str]:
    """The ``size`` fields of a :func:`signed_token`; :class:`SignatureError` if it was not
    signed with ``secret``, is malformed or carries another number of fields."""
    payload, _, signature = token.partition(".")
    expected = hmac.new(_secret_bytes(secret), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        fields = json.loads(_unb64(payload))
    except ValueError:
        raise SignatureError(f"malformed {what} token") from None
    if not hmac.compare_digest(given, expected):
        raise SignatureError(f"{what} token signature does not match")
    if not (isinstance(fields, list) and len(fields) == size):
        raise SignatureError(f"malformed {what} token")
    if not all(isinstance(f, str) for f in fields):
        raise SignatureError(f"malformed {what} token")
    return fields


def unsubscribe_token(
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
) -> str:
    """A signed token naming one customer's channel: ``payload.signature`` (URL-safe).

    It does not expire: CAN-SPAM wants an opt-out link to work for at least 30 days after
    sending, and an old link that still unsubscribes does no harm.
    """
    return signed_token(secret, [platform, shop, customer_id, channel])


def verify_unsubscribe_token(
    secret: str | bytes | SecretStr, token: str
) -> tuple[str, str, str, str]:
    """``(platform, shop, customer_id, channel)`` of a token; :class:`SignatureError` if it
    was not signed with ``secret`` or is malformed."""
    fields = verify_signed_token(secret, token, 4, "unsubscribe")
    return fields[0], fields[1], fields[2], fields[3]


def unsubscribe_url(
    base_url: str,
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
) -> str:
    """The one-click link for a customer: ``{base_url}?token=...``."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}token={unsubscribe_token(secret, platform, shop, customer_id, channel)}"


def record_unsubscribe(
    store: Store,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
    *,
    source: str = "one-click link",
    now: dt.datetime | None = None,
) -> int:
    """Withhold marketing from a customer from now on, and cancel their pending marketing
    rows; returns how many were cancelled. Recording it twice keeps the first time."""
    at = _rows.to_micros(_aware(now) if now is not None else _utcnow())
    with store.transaction() as conn:
        # Never create the shop: after shop/redact a late click must not bring it back (the
        # shop's data is gone, so nothing will be sent to anyone there).
        shop_id = store.shop_id(platform, shop, conn, create=False)
        if shop_id == NO_SHOP:
            return 0
        return outbox_rows.suppress(conn, shop_id, customer_id, channel, source, at)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def unsubscribe_app(
    store: Store, secret: str | bytes | SecretStr, *, path: str = "/unsubscribe"
) -> Callable[..., Iterator[bytes]]:
    """A WSGI app serving the one-click unsubscribe link of every marketing email.

    ``POST {path}?token=...`` unsubscribes at once: the RFC 8058 one-click request that mail
    clients send (body ``List-Unsubscribe=One-Click``), or the button of the page below.
    ``GET`` only shows that page with the button, because link scanners fetch links in
    mail and must not unsubscribe anyone. A token that does not verify gets 403.
    """
    key = _secret_bytes(secret)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        def answer(status: str, title: str, text: str, form: str = "") -> Iterator[bytes]:
            body = _PAGE.format(title=title, text=text, form=form).encode()
            start_response(
                status,
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"),
                    ("Referrer-Policy", "no-referrer"),
                ],
            )
            return iter([body])

        if environ.get("PATH_INFO", "") != path:
            return answer("404 Not Found", "Not found", "There is nothing here.")
        method = environ.get("REQUEST_METHOD", "GET")
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        if method not in ("GET", "HEAD", "POST"):
            return answer("405 Method Not Allowed", "Not allowed", "Use the link in the email.")
        try:
            platform, shop, customer_id, channel = verify_unsubscribe_token(key, token)
        except SignatureError:
            return answer("403 Forbidden", "Link not valid", "This unsubscribe link is not valid.")
        if method != "POST":
            action = html.escape(f"{path}?token={token}", quote=True)
            form = (
                f'<form method="post" action="{action}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Unsubscribe</button></form>'
            )
            return answer("200 OK", "Unsubscribe", "Stop marketing emails to this address?", form)
        cancelled = record_unsubscribe(store, platform, shop, customer_id, channel)
        log.info("unsubscribed a customer of %s; %d pending messages cancelled", shop, cancelled)
        return answer(
            "200 OK", "Unsubscribed", "You will not receive marketing emails from us any more."
        )

    return app
