"""How the loyalty functions are told who and when: a customer reference, aware instants.

Every public function takes a customer as a model or as ``(platform, shop, customer_id)``
and times as timezone-aware datetimes; the ledger counts microseconds since the epoch.
"""

from __future__ import annotations

import datetime as dt

from shopsync.core.loyalty import to_micros
from shopsync.models import Customer

__all__ = ["CustomerRef", "now_micros", "ref", "utc_micros"]

CustomerRef = Customer | tuple[str, str, str]
"""A customer model, or ``(platform, shop, customer_id)``."""


def ref(customer: CustomerRef) -> tuple[str, str, str]:
    if isinstance(customer, Customer):
        return customer.platform, customer.shop, customer.id
    platform, shop, customer_id = customer
    return platform, shop, str(customer_id)


def utc_micros(value: dt.datetime) -> int:
    """An aware instant as ledger microseconds; a naive one is refused, never guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return to_micros(value.astimezone(dt.timezone.utc))


def now_micros() -> int:
    return to_micros(dt.datetime.now(dt.timezone.utc))
