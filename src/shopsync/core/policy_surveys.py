"""The NPS / CSAT survey section of the policy (issue 22): when to ask, how often, and who
counts as a detractor or a promoter for the follow-ups."""

from __future__ import annotations

from typing import Literal

from shopsync.core.policy_fields import DERIVED, _f, _Section

__all__ = ["SurveySettings"]

WIREDASH = "Wiredash promoter score survey (docs.wiredash.com/reference/sdk/promoter-score)"
NPS_SRC = "Reichheld, The Ultimate Question 2.0 (0-6 detractors, 9-10 promoters)"


class SurveySettings(_Section):
    """One NPS (0-10) or CSAT (1-5) question after delivery, with one-click answers."""

    enabled: bool = _f(
        False,
        "Plan satisfaction surveys. Off by default: answers need the survey app "
        "(`shopsync.surveys.survey_app`) served where the email links point.",
        DERIVED,
    )
    scale: Literal["nps", "csat"] = _f(
        "nps",
        "`nps`: 'How likely are you to recommend us?' 0-10; `csat`: 'How satisfied are you "
        "with your order?' 1-5.",
        NPS_SRC,
    )
    days_after_delivery: int = _f(
        3,
        "Days after the order's last shipment was delivered: long enough to have tried it, "
        "and before the review request (`reviews.days_after_delivery`, 7).",
        DERIVED,
        ge=0,
    )
    days_after_fulfillment: int = _f(
        10,
        "Days after the last shipment when a shipment has no delivery date (the carrier "
        "never scanned it, or the platform does not say).",
        DERIVED,
        ge=0,
    )
    period_days: int = _f(
        90,
        "A customer is asked at most once per this many days, however often they buy.",
        WIREDASH,
        ge=1,
    )
    max_late_days: int = _f(
        14,
        "A survey not sent within this many days of its due date is dropped: an answer "
        "about an order from long ago says little.",
        DERIVED,
        ge=0,
    )
    promoter_followup: Literal["review", "referral", "none"] = _f(
        "review",
        "What a promoter is asked next: `review` asks for a review of the order's products "
        "(the review request of that order, so never twice; a referral ask when it was "
        "already sent), `referral` asks to refer a friend, `none` nothing.",
        DERIVED,
    )
