"""The referral rules: each referral judged for the whole shop, fraud checks first, and
the approved ones turned into bonuses for the advocate's and the friend's histories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from shopsync.core.loyalty_records import DAY, UNIT, Bonus, OrderFacts, round_half_up, source_key
from shopsync.core.policy import LoyaltySettings

__all__ = [
    "Person",
    "Referral",
    "ReferralOutcome",
    "judge_referrals",
    "normalize_email",
    "normalize_text",
]


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral as recorded: who referred whom, when, from where."""

    key: str
    advocate_id: str
    at: int
    friend_id: str | None = None
    friend_email: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    """What the fraud checks compare between advocate and friend."""

    customer_id: str
    email: str | None = None
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class ReferralOutcome:
    key: str
    status: str
    """``rewarded``, ``waiting`` (no qualifying order approved yet) or ``blocked``."""
    reason: str
    friend_id: str | None = None
    order_id: str | None = None


def normalize_email(email: str | None) -> str | None:
    """Lower case, ``+tag`` and dots of the local part removed: "similar" addresses match."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().partition("@")
    return local.split("+", 1)[0].replace(".", "") + "@" + domain


def normalize_text(value: str | None) -> str | None:
    if not value:
        return None
    squeezed = re.sub(r"[^0-9a-z]+", " ", value.casefold()).strip()
    return squeezed or None


def judge_referrals(
    referrals: Iterable[Referral],
    people: Mapping[str, Person],
    orders: Mapping[str, Sequence[OrderFacts]],
    email_to_customer: Mapping[str, str],
    settings: LoyaltySettings,
    as_of: int,
    *,
    currency: str,
) -> tuple[list[ReferralOutcome], dict[str, list[Bonus]]]:
    """Decide every referral up to ``as_of``; the bonuses are keyed by customer id.

    Blocked (each checked in this order): the friend is the advocate or shares their
    (normalized) email, name or address; the advocate or the IP made ``max_per_window``
    referrals within ``window_days``; the friend had a paid order before the referral (not
    their first order); the friend's first order is under ``min_order``; the friend has no
    account to credit. A referral waits until the friend's first order is past its approval
    period, and earns nothing if that order was cancelled or fully refunded by then.
    """
    rules = settings.referral
    outcomes: list[ReferralOutcome] = []
    bonuses: dict[str, list[Bonus]] = {}
    ordered = sorted((r for r in referrals if r.at <= as_of), key=lambda r: (r.at, r.key))
    for index, ref in enumerate(ordered):
        friend_id = ref.friend_id
        if friend_id is None and ref.friend_email:
            friend_id = email_to_customer.get(ref.friend_email.strip().lower())
        reason = _fraud(ref, friend_id, people, ordered[: index + 1], rules)
        if reason is None and friend_id is None:
            reason = "the friend has no customer account to credit"
        if reason is not None:
            outcomes.append(ReferralOutcome(ref.key, "blocked", reason, friend_id))
            continue
        assert friend_id is not None
        paid = sorted(
            (o for o in orders.get(friend_id, ()) if o.paid_at is not None and o.purchase),
            key=lambda o: (o.paid_at or 0, o.order_id),
        )
        if paid and (paid[0].paid_at or 0) < ref.at:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", "not the friend's first order", friend_id, paid[0].order_id
                )
            )
            continue
        first = paid[0] if paid else None
        if first is None or (first.paid_at or 0) > as_of:
            outcomes.append(ReferralOutcome(ref.key, "waiting", "no order yet", friend_id))
            continue
        if first.currency != currency:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", f"order in {first.currency}", friend_id, first.order_id
                )
            )
            continue
        if Fraction(first.value, UNIT) < Fraction(rules.min_order):
            outcomes.append(
                ReferralOutcome(
                    ref.key, "blocked", "order below the minimum", friend_id, first.order_id
                )
            )
            continue
        approve_at = (first.paid_at or 0) + settings.earn.pending_days * DAY
        if approve_at > as_of:
            outcomes.append(
                ReferralOutcome(
                    ref.key, "waiting", "order in its return window", friend_id, first.order_id
                )
            )
            continue
        if first.cancelled_at is not None and first.cancelled_at <= approve_at:
            outcomes.append(
                ReferralOutcome(ref.key, "blocked", "order cancelled", friend_id, first.order_id)
            )
            continue
        refunded = sum(a for _, w, a in first.refunds if w <= approve_at)
        kept = Fraction(first.value) * (1 - Fraction(min(refunded, first.total), first.total or 1))
        if kept <= 0:
            outcomes.append(
                ReferralOutcome(ref.key, "blocked", "order refunded", friend_id, first.order_id)
            )
            continue
        per_point = settings.redemption.points_per_unit
        for who, percent, side in (
            (ref.advocate_id, rules.advocate_percent, "advocate"),
            (friend_id, rules.friend_percent, "friend"),
        ):
            points = round_half_up(kept * Fraction(percent) * per_point / (100 * UNIT))
            if points > 0:
                bonuses.setdefault(who, []).append(
                    Bonus(
                        source_key("bonus", "referral", ref.key, side),
                        approve_at,
                        points,
                        f"referral reward ({side}) for order {first.order_id}",
                        first.order_id,
                    )
                )
        outcomes.append(ReferralOutcome(ref.key, "rewarded", "", friend_id, first.order_id))
    return outcomes, bonuses


def _fraud(
    ref: Referral,
    friend_id: str | None,
    people: Mapping[str, Person],
    earlier: Sequence[Referral],
    rules: Any,
) -> str | None:
    advocate = people.get(ref.advocate_id)
    friend = people.get(friend_id) if friend_id else None
    if friend_id == ref.advocate_id:
        return "self-referral: the friend is the advocate"
    friend_email = normalize_email(friend.email if friend else ref.friend_email)
    if advocate is not None:
        if friend_email and friend_email == normalize_email(advocate.email):
            return "self-referral: same email as the advocate"
        if friend is not None:
            if friend.name and friend.name == advocate.name:
                return "self-referral: same name as the advocate"
            if friend.address and friend.address == advocate.address:
                return "self-referral: same address as the advocate"
    start = ref.at - rules.window_days * DAY
    recent = [r for r in earlier if r.at > start]
    by_advocate = sum(1 for r in recent if r.advocate_id == ref.advocate_id)
    by_ip = sum(1 for r in recent if ref.ip and r.ip == ref.ip)
    if max(by_advocate, by_ip) >= rules.max_per_window:
        return f"too many referrals: {rules.max_per_window} within {rules.window_days} days"
    return None
