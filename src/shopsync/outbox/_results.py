"""What an apply run reports: one :class:`Delivery` per (action, sink) pair it looked at,
added up in an :class:`ApplyResult`; and the statuses an outbox row goes through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["STATUSES", "ApplyResult", "Delivery", "Status"]

Status = Literal["pending", "done", "parked", "cancelled"]
STATUSES: tuple[Status, ...] = ("pending", "done", "parked", "cancelled")


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
class ApplyResult:
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
