"""The loyalty actions a derivation calls for: awards, tier promotions, expiry warnings.

Pure: a :class:`~shopsync.core.loyalty.Derivation` of one customer in, actions out. The
same builder serves the shop-wide derivation (:func:`shopsync.loyalty.update_ledger`) and the one
customer of :func:`shopsync.plan_customer`, so both plan the same notices under the same
idempotency keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shopsync.core import loyalty as rules
from shopsync.core import milestones
from shopsync.core.actions import Action, LoyaltyAward, PointsExpiryWarning, TierChange
from shopsync.core.loyalty import DAY, Derivation, from_micros

if TYPE_CHECKING:
    from shopsync.core.policy import Policy

__all__ = ["loyalty_actions"]


def loyalty_actions(
    platform: str,
    shop: str,
    derivation: Derivation,
    customer_id: str,
    policy: Policy,
    at: int,
    since: int,
) -> list[Action]:
    """Awards and tier promotions dated in ``(since, at]``, milestone notices, and expiry
    warnings whose warning date has passed while the expiry has not: the idempotency keys
    let a planner run every day without sending anything twice."""
    found: list[Action] = []
    base = {"platform": platform, "shop": shop, "customer_id": customer_id}
    for entry in derivation.entries:
        if entry.kind not in ("earn", "bonus") or not since < entry.at <= at:
            continue
        if entry.kind == "bonus" and entry.detail.get("milestone"):
            continue  # announced by a milestone notice below
        points = entry.pending + entry.approved
        ref = entry.order_id if entry.kind == "earn" else entry.key
        found.append(
            LoyaltyAward(
                **base,
                due_at=from_micros(entry.at),
                reason=entry.reason,
                facts={"points": points, "source_key": entry.key},
                idempotency_key=rules.source_key("loyalty_award", shop, ref),
                points=points,
                order_id=entry.order_id,
            )
        )
    for change in derivation.tier_changes:
        if change.promoted and change.to_tier and since < change.at <= at:
            day = from_micros(change.at).date().isoformat()
            found.append(
                TierChange(
                    **base,
                    due_at=from_micros(change.at),
                    reason=f"entered the {change.to_tier} tier",
                    facts={"from": change.from_tier, "to": change.to_tier},
                    idempotency_key=rules.source_key(
                        "loyalty_tier_change", shop, customer_id, change.to_tier, day
                    ),
                    from_tier=change.from_tier,
                    to_tier=change.to_tier,
                )
            )
    found += milestones.notices(platform, shop, customer_id, derivation, policy, at, since)
    expires = derivation.expires_at
    if expires is not None and derivation.approved > 0:
        for days in policy.loyalty.expiry.warn_days_before:
            warn_at = expires - days * DAY
            if warn_at <= at < expires:
                day = from_micros(expires).date().isoformat()
                found.append(
                    PointsExpiryWarning(
                        **base,
                        due_at=from_micros(warn_at),
                        reason=f"{derivation.approved} points expire on {day} without activity",
                        facts={"points": derivation.approved, "expires_on": day},
                        idempotency_key=rules.source_key(
                            "loyalty_expiry_warning", shop, customer_id, day, f"{days}d"
                        ),
                        points=derivation.approved,
                        expires_at=from_micros(expires),
                        days_before=days,
                    )
                )
    return found
