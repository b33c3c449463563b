"""Reading the outbox: its rows as :class:`OutboxEntry`, and parked rows queued again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shopsync.errors import ConfigurationError
from shopsync.outbox._queue import moment_of
from shopsync.outbox._results import STATUSES, Status
from shopsync.store import outbox_rows, times

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["OutboxEntry", "list_outbox", "retry_parked"]


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
        return times.from_micros(value)

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
    at = times.to_micros(moment_of(now))
    return outbox_rows.requeue_parked(store, keys, at)
