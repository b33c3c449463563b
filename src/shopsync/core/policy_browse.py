"""Settings of the browse-abandonment program (issue 22): ``[browse_abandonment]``."""

from __future__ import annotations

from shopsync.core.policy_fields import DERIVED, _f, _Section

__all__ = ["BrowseSettings"]

_SRC = (
    "research retention §1.2 and §8: 1-2 emails at 2 h / 48 h, skip anyone who ordered in the "
    "last ~10 days, re-entry cool-down 14-30 days (bsandco.us, blossomecom.com)"
)


class BrowseSettings(_Section):
    """A reminder of products an identified customer looked at and did not buy."""

    enabled: bool = _f(True, "Plan browse-abandonment reminders.", DERIVED)
    delay_hours: int = _f(
        2, "Hours after the customer's last product view or add to cart.", _SRC, ge=0
    )
    late_hours: int = _f(24, "Not sent more than this many hours after it was due.", DERIVED, ge=1)
    recent_order_days: int = _f(
        10, "Customers with an order in this many days before get none.", _SRC, ge=0
    )
    cooldown_days: int = _f(
        14, "At most one browse reminder per customer in this many days (the cap).", _SRC, ge=1
    )
    max_products: int = _f(3, "Products named, most recently viewed first.", DERIVED, ge=1)
    session_hours: int = _f(
        24, "Views within this many hours before the last one belong to its session.", DERIVED, ge=1
    )
