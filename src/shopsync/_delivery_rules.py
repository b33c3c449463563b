"""Rules that hold when a row is sent, not only when it was planned.

Planning applies quiet hours, quiet periods and the frequency cap as of its ``as_of``. A row
delivered later (a retry hours after planning, a second run, a run after a crash) is checked
again just before delivery, against the clock of delivery and the marketing the outbox has
delivered meanwhile; a row that would break a rule is deferred: left pending, no attempt
counted, the reason kept, delivered by the first run after the rule allows it. A message
that announces a discount code (an email, an ESP webhook) waits until the platform
write-back that creates the code (the action's stage-0 row) is done, whichever run does it.

The rules are those of the policy passed to ``apply``; a run without one uses the policy the
shop's last ``apply`` with a policy left in the store (table ``delivery_policies``), so a
retry script that forgets ``policy=`` does not send marketing in the night.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shopsync.sinks._base import discount_of
from shopsync.store import times
from shopsync.store.delivery import (
    marketing_sent,
    remember_policy,
    remembered_policy,
    write_back_statuses,
)

if TYPE_CHECKING:
    from shopsync.core.actions import Action
    from shopsync.core.policy import Policy
    from shopsync.sinks._base import Sink
    from shopsync.store import Store

__all__ = ["Rules", "deferral"]

log = logging.getLogger("shopsync.outbox")

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


class Rules:
    """The delivery-time rules of each shop in one run: the policy passed to ``apply``, else
    the one remembered from the shop's last apply with a policy, else none."""

    def __init__(self, store: Store, policy: Policy | None) -> None:
        self.store, self.policy = store, policy
        self.found: dict[int, Policy | None] = {}

    def remember(self, shop_ids: set[int], at: int) -> None:
        """Keep the run's policy as the shops' delivery policy."""
        if self.policy is not None:
            remember_policy(self.store, shop_ids, self.policy.model_dump_json(), at)

    def of(self, shop_id: int | None) -> Policy | None:
        if self.policy is not None or shop_id is None:
            return self.policy
        if shop_id not in self.found:
            from shopsync.core.policy import Policy

            text = remembered_policy(self.store, shop_id)
            try:
                self.found[shop_id] = None if text is None else Policy.model_validate_json(text)
            except ValidationError:  # written by another version: consent checks still hold
                log.warning("the remembered delivery policy of shop %s no longer loads", shop_id)
                self.found[shop_id] = None
        return self.found[shop_id]


def deferral(
    store: Store,
    row: Any,
    sink: Sink,
    moment: dt.datetime,
    policy: Policy | None,
    action: Callable[[], Action],
    *,
    creates_code: bool,
) -> str | None:
    """Why this row must wait although it is due (None: it may go now). ``action`` loads
    the row's action; ``creates_code``: a platform sink in the same dry run would create
    the code first."""
    if row.marketing and policy is not None:
        from shopsync.core.planner import quiet_reason

        quiet = quiet_reason(policy, moment)
        if quiet is not None:
            return f"deferred: {quiet} (no marketing goes out inside them)"
        held = _capped(store, row, moment, policy)
        if held is not None:
            return held
    if sink.stage > 0 and getattr(sink, "contacts_customer", True) and not creates_code:
        try:
            discount = discount_of(action())
        except Exception:  # the attempt itself reports a broken action
            return None
        if discount is not None and "done" not in write_back_statuses(
            store, row.shop_id, row.idempotency_key, sink.stage
        ):
            return (
                f"waiting: discount code {discount.code} is not created on the platform yet "
                "(its platform write-back is not done; apply with the shop's sink)"
            )
    return None


def _capped(store: Store, row: Any, moment: dt.datetime, policy: Policy) -> str | None:
    """The frequency cap as the planner applies it, against deliveries the outbox made."""
    cap = policy.frequency_cap
    at = times.to_micros(moment)
    window = cap.window_days * DAY_US
    sent = marketing_sent(
        store,
        row.shop_id,
        row.customer_id,
        since=at - window,
        until=at,
        exclude_key=row.idempotency_key,
    )
    if len(sent) >= cap.max_emails:
        again = times.from_micros(sent[len(sent) - cap.max_emails] + window)
        return (
            f"deferred by the frequency cap: {len(sent)} marketing emails in "
            f"{cap.window_days} days (at most {cap.max_emails}); allowed again after "
            f"{again.isoformat()}"  # type: ignore[union-attr]
        )
    gap = cap.email_hours * HOUR_US
    if sent and at - sent[-1] < gap:
        again = times.from_micros(sent[-1] + gap)
        return (
            f"deferred by the frequency cap: another marketing email within "
            f"{cap.email_hours} hours; allowed again at {again.isoformat()}"  # type: ignore[union-attr]
        )
    return None
