"""Email the shop's own support address about a customer, instead of the customer: the
detractor alert of the NPS / CSAT loop (issue 22), for a shop without a help-desk webhook.

::

    support = SupportEmail("smtp.example.com", 587, to="help@acme.example",
                           sender="shop@acme.example", brand=brand, ...)
    survey_app(store, secret, support=[support], ...)

It is an :class:`~shopsync.sinks.Email` (same server settings, templates and at-least-once
Message-ID) that takes only ``survey_detractor`` actions by default, writes to ``to``, and
names the customer (id, email, phone, name) in the message, read from the store at delivery
as every sink does. It does not reach the customer, so it never needs their consent.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any, ClassVar

from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError
from shopsync.sinks._base import Cancelled, DeliveryContext
from shopsync.sinks.email import Email

__all__ = ["SupportEmail"]


class SupportEmail(Email):
    """An email to the shop's support address (``to``) per accepted action."""

    contacts_customer: ClassVar[bool] = False

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        to: str,
        kinds: Iterable[str] = ("survey_detractor",),
        name: str = "support_email",
        **options: Any,
    ) -> None:
        super().__init__(host, port, kinds=frozenset(kinds), name=name, **options)
        if "@" not in to or any(c in to for c in "\r\n<>, "):
            raise ConfigurationError(f"support address {to!r} is not one email address")
        self.to = to
        self._about: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"SupportEmail(host={self.host!r}, port={self.port}, to={self.to!r})"

    def build(self, action: Action, context: DeliveryContext) -> EmailMessage:
        customer = context.customer
        if customer is None:
            raise Cancelled("the customer is no longer in the store")
        names = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        staff = customer.model_copy(update={"email": self.to, "first_name": "", "last_name": ""})
        self._about = {
            "id": customer.id,
            "email": customer.email,
            "phone": customer.phone,
            "name": names,
        }
        try:
            return super().build(action, DeliveryContext(context.store, staff, context.now))
        finally:
            self._about = None

    def _context(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        values = super()._context(action, context)
        values["about"] = self._about
        return values
