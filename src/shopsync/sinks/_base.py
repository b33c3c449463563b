"""What a sink is, and the two ways a delivery can end badly.

A sink delivers one action and returns what came of it (a code created, a message id, an
HTTP status) as JSON-ready data, which the outbox stores with the row. It raises
:class:`DeliveryError` when delivery failed (``retryable`` says whether a later attempt can
help) and :class:`Cancelled` when the action must not be delivered at all any more (an
expired discount, a customer without an address). Anything else it raises is treated as a
retryable failure, so a bug in a sink parks rows instead of losing them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from shopsync.errors import ShopSyncError

if TYPE_CHECKING:
    from shopsync.core.actions import Action
    from shopsync.core.policy import Policy
    from shopsync.models import Customer, Money
    from shopsync.store import Store

__all__ = [
    "Cancelled",
    "DeliveryContext",
    "DeliveryError",
    "Discount",
    "Guarantee",
    "Sink",
    "action_value",
    "discount_of",
]

Guarantee = Literal["exactly_once", "at_least_once"]
"""``exactly_once``: the sink checks the destination before writing, so a repeated delivery
changes nothing. ``at_least_once``: a repeat reaches the destination again, carrying the same
de-duplication id (Message-ID, Idempotency-Key) for the receiver to drop it."""


class DeliveryError(ShopSyncError):
    """A delivery failed; ``retryable`` is False when trying again cannot help (4xx, a
    template error, a refused recipient)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Cancelled(ShopSyncError):
    """The action must not be delivered (any more); the message is the reason."""


@dataclass(frozen=True)
class DeliveryContext:
    """What a sink may consult besides the action: the store, the customer as the store
    holds them at delivery time (None if gone), the moment of delivery, and the policy the
    apply was given (None: none)."""

    store: Store
    customer: Customer | None
    now: dt.datetime
    policy: Policy | None = None


@runtime_checkable
class Sink(Protocol):
    """A destination of actions.

    ``name`` identifies the sink in the outbox (one row per action and sink name), so it
    must stay the same from run to run. ``stage`` orders sinks: every stage-0 row of an
    action (the platform write-back: create the code) is done before its later-stage rows
    (tell the customer the code) are attempted.
    """

    name: str
    guarantee: ClassVar[Guarantee]
    stage: ClassVar[int]
    contacts_customer: ClassVar[bool]
    """True when delivering reaches the customer (email, an ESP webhook, an ad audience): a
    marketing action then needs the customer's consent at delivery time."""

    def accepts(self, action: Action) -> bool:
        """Whether this sink has something to do for the action."""
        ...

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        """What :meth:`deliver` would send, without sending it (for ``apply(dry_run=True)``)."""
        ...

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        """Deliver; return the result to keep (JSON-ready)."""
        ...

    def close(self) -> None: ...


def action_value(action: Action, name: str, default: Any = None) -> Any:
    """A field of the action's subclass, else the same key of its facts, else ``default``
    (sinks render any kind without knowing its class)."""
    if name in type(action).model_fields:
        return getattr(action, name)
    return action.facts.get(name, default)


@dataclass(frozen=True)
class Discount:
    """The discount an action hands out: a fixed ``value`` or a ``percent`` off."""

    code: str
    value: Money | None
    percent: int | None
    expires_at: dt.datetime | None
    """None: the platform sink's default validity applies."""


def discount_of(action: Action) -> Discount | None:
    """The action's discount, from its fields or facts (``code``, ``value`` + ``currency``,
    ``discount_percent``, ``expires_at``), or None.

    An action with a percentage but no code gets one derived from its idempotency key
    (``SS-`` and ten hex digits), so the platform sink creates, and the email quotes, the
    same code on every attempt.
    """
    from shopsync.models import Money

    code = action_value(action, "code")
    value = action_value(action, "value")
    percent = action_value(action, "discount_percent")
    if value is not None and not isinstance(value, Money):
        try:
            value = Money.of(Decimal(str(value)), str(action.facts.get("currency")))
        except (InvalidOperation, ValueError):
            raise Cancelled(f"discount value {value!r} is not an amount") from None
    if value is None and not percent:
        return None
    if not code:
        digest = hashlib.sha256(action.idempotency_key.encode()).hexdigest()[:10].upper()
        code = f"SS-{digest}"
    expires = action.facts.get("expires_at")
    expires_at = None
    if isinstance(expires, dt.datetime):
        expires_at = expires
    elif expires:
        expires_at = dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.timezone.utc)
    return Discount(str(code), value, int(percent) if percent else None, expires_at)
