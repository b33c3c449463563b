"""Settings of the abandoned-checkout program (issue 22): ``[abandoned_checkout]``."""

from __future__ import annotations

from pydantic import model_validator

from shopsync.core.policy_fields import DERIVED, _f, _Section

__all__ = ["AbandonedCheckoutSettings"]

_TIMING = (
    "research retention §1.2 and §8: Klaviyo ~4 h first email, common 4 h / 24 h / 48-72 h "
    "template; Shopify's built-in email offers 1/6/10/24 h"
)


class AbandonedCheckoutSettings(_Section):
    """Reminders for a checkout the customer started and did not finish."""

    enabled: bool = _f(True, "Plan abandoned-checkout reminders.", DERIVED)
    steps_hours: tuple[int, ...] = _f(
        (4, 24, 72),
        "Hours after the checkout started when each reminder is due (1 to 5 steps, "
        "increasing), e.g. `[1, 24, 72]`. A purchase or a newer checkout by the customer "
        "ends the sequence, at planning and again just before delivery.",
        _TIMING,
    )
    late_hours: int = _f(
        24,
        "A step more than this many hours past due is not sent (the next step, or nothing, "
        "follows instead): a first plan on an old store does not remind of old carts.",
        DERIVED,
        ge=1,
    )
    code_percent: int | None = _f(
        None,
        "Percent off in a single-use code for this customer only; null: no code.",
        DERIVED,
        ge=1,
        le=100,
    )
    code_steps: tuple[int, ...] = _f(
        (),
        "The 1-based steps that carry the code; empty: the last step only (the usual "
        "discount-in-the-last-email template).",
        _TIMING,
    )
    code_days: int = _f(7, "Days the code stays valid after it is issued.", DERIVED, ge=1)
    min_total: int = _f(
        0,
        "Checkouts below this total (shop currency, whole units) get no reminder.",
        DERIVED,
        ge=0,
    )
    cooldown_days: int = _f(
        7,
        "A customer reminded about another checkout within this many days before this one "
        "started gets no new sequence.",
        "research retention §1.1 (7 days for cart/checkout flows) and §8",
        ge=0,
    )

    @model_validator(mode="after")
    def _steps(self) -> AbandonedCheckoutSettings:
        s = self.steps_hours
        if not 1 <= len(s) <= 5:
            raise ValueError("steps_hours: between 1 and 5 steps")
        if any(h < 0 for h in s) or list(s) != sorted(set(s)):
            raise ValueError("steps_hours: hours must be non-negative and strictly increasing")
        if any(not 1 <= n <= len(s) for n in self.code_steps):
            raise ValueError(f"code_steps: each step must be between 1 and {len(s)}")
        return self
