"""A dry run: what :func:`~shopsync.outbox.apply` would do, with nothing written or sent.

Planned actions not recorded yet are shaped like outbox rows (:class:`_Planned`) and go
through the same checks as a real attempt (customer gone, consent, delivery-time rules); a
payload is rendered by the sink and masked, since a preview is shown to people.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from shopsync._delivery_rules import Rules, deferral
from shopsync.core.actions import Action
from shopsync.outbox._attempts import describe, due_rows, json_ready, prepare
from shopsync.outbox._queue import find_shop_id, load_action, model_path, needs_consent
from shopsync.outbox._results import ApplyResult, Delivery
from shopsync.sinks._base import Cancelled, Sink
from shopsync.sinks._preview import mask_preview
from shopsync.store import outbox_rows, times

if TYPE_CHECKING:
    from shopsync.core.policy import Policy
    from shopsync.store import Store

__all__ = ["preview"]


def preview(
    actions: list[Action],
    store: Store,
    sinks: dict[str, Sink],
    moment: dt.datetime,
    policy: Policy | None,
) -> ApplyResult:
    report = ApplyResult(dry_run=True)
    at = times.to_micros(moment)
    seen: set[tuple[int | None, str, str]] = set()
    items: list[tuple[Any, Sink]] = []
    shop_ids: dict[tuple[str, str], int | None] = {}
    for action in actions:
        ref = (action.platform, action.shop)
        if ref not in shop_ids:
            shop_ids[ref] = find_shop_id(store, *ref)
        for sink in sinks.values():
            if sink.accepts(action):
                items.append((_Planned(action, shop_ids[ref], needs_consent(action, sink)), sink))
    for row in due_rows(store, sinks, at):
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
            action, context = prepare(store, item, moment, policy)
            creates = _earlier_sink_accepts(item, sink, sinks)
            rules = policy if policy is not None else dry_rules.of(item.shop_id)
            load = partial(load_action, item.model, item.action)
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
            report.deliveries.append(Delivery(*base, "park", reason=describe(exc)))
            continue
        preview = mask_preview(json_ready(payload))  # a preview is shown: no secrets in it
        report.deliveries.append(Delivery(*base, "send", payload=preview))
    return report


def _earlier_sink_accepts(item: Any, sink: Sink, sinks: dict[str, Sink]) -> bool:
    """Whether a sink of an earlier stage in this dry run would write the action back first."""
    try:
        action = load_action(item.model, item.action)
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
            "model": model_path(a),
            "action": a.model_dump(mode="json"),
            "due_at": times.to_micros(a.due_at),
        }
        if name in values:
            return values[name]
        raise AttributeError(name)


def _existing_rows(store: Store) -> dict[tuple[int | None, str, str], Any]:
    return {(r.shop_id, r.idempotency_key, r.sink): r for r in outbox_rows.existing_rows(store)}
