"""Recording: each (action, sink) pair a sink accepts becomes a pending outbox row.

A row keeps the action as recorded (its model path and JSON), so a later run delivers what
was planned even after the program changed; recording a key again adds nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from typing import TYPE_CHECKING, Any

from shopsync.core.actions import Action
from shopsync.sinks._base import Cancelled, Sink
from shopsync.store import NO_SHOP, outbox_rows, times

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "actions_of",
    "as_sink",
    "find_shop_id",
    "load_action",
    "model_path",
    "moment_of",
    "needs_consent",
    "record",
]


def moment_of(now: dt.datetime | None) -> dt.datetime:
    """``now`` in UTC (it must be aware), or the clock's time."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.timezone.utc)


def actions_of(plan_or_actions: Any) -> list[Action]:
    if plan_or_actions is None:
        return []
    items = getattr(plan_or_actions, "actions", plan_or_actions)
    found = list(items)
    for item in found:
        if not isinstance(item, Action):
            raise TypeError(f"apply() takes actions, not {type(item).__name__}")
    return found


def as_sink(candidate: Any) -> Sink:
    if isinstance(candidate, Sink):
        return candidate
    if hasattr(candidate, "platform") and hasattr(candidate, "shop"):
        from shopsync.sinks.platform import Platform

        return Platform(candidate)
    raise TypeError(f"{type(candidate).__name__} is neither a sink nor a platform adapter")


def model_path(action: Action) -> str:
    return f"{type(action).__module__}:{type(action).__qualname__}"


def load_action(path: str, data: dict[str, Any]) -> Action:
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


def find_shop_id(store: Store, platform: str, shop: str) -> int | None:
    found = store.shop_id(platform, shop, create=False)
    return None if found == NO_SHOP else found


def _row(shop_id: int, action: Action, sink: Sink, at: int) -> dict[str, Any]:
    return {
        "shop_id": shop_id,
        "idempotency_key": action.idempotency_key,
        "sink": sink.name,
        "stage": sink.stage,
        "kind": action.kind,
        "customer_id": action.customer_id,
        "marketing": int(needs_consent(action, sink)),
        "model": model_path(action),
        "action": action.model_dump(mode="json"),
        "status": "pending",
        "attempts": 0,
        "due_at": times.to_micros(action.due_at),
        "next_attempt_at": times.to_micros(action.due_at),
        "created_at": at,
        "updated_at": at,
    }


def needs_consent(action: Action, sink: Sink) -> bool:
    """Marketing consent is checked for sinks that reach the customer (email, webhooks to an
    ESP, ad audiences), not for writes into the shop's own records or files. A sink that is
    marketing whatever the action (an ad audience) asks for consent on every action."""
    marketing = action.marketing or bool(getattr(sink, "requires_consent", False))
    return marketing and bool(getattr(sink, "contacts_customer", True))


def record(actions: list[Action], store: Store, sinks: list[Sink], moment: dt.datetime) -> int:
    if not actions:
        return 0
    at = times.to_micros(moment)
    added = 0
    with store.transaction() as conn:  # one transaction; rows built a part at a time
        for start in range(0, len(actions), _PART):
            rows: list[dict[str, Any]] = []
            for action in actions[start : start + _PART]:
                shop_id = store.shop_id(action.platform, action.shop, conn)
                rows.extend(_row(shop_id, action, s, at) for s in sinks if s.accepts(action))
            added += outbox_rows.record_rows(conn, rows)
    return added


_PART = 2000  # actions whose rows are built at once: a plan of 250,000 is not copied whole
