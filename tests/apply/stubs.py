"""Stand-in sinks shared by the apply tests."""

from __future__ import annotations

from typing import Any, ClassVar

from shopsync.core.actions import Action
from shopsync.sinks import DeliveryContext
from shopsync.sinks._base import discount_of


class CodesCreated:
    """A stage-0 stand-in for the platform sink: it "creates" each action's discount code,
    so a message announcing the code may go out after it (the outbox waits for that)."""

    name = "platform-stub"
    guarantee: ClassVar[str] = "exactly_once"
    contacts_customer: ClassVar[bool] = False
    stage: ClassVar[int] = 0

    def __init__(self) -> None:
        self.created: list[str] = []

    def accepts(self, action: Action) -> bool:
        return discount_of(action) is not None

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        discount = discount_of(action)
        return {"code": discount.code if discount else None}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        discount = discount_of(action)
        assert discount is not None
        self.created.append(discount.code)
        return {"code": discount.code}

    def close(self) -> None:
        pass
