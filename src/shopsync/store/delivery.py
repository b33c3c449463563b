"""What the outbox reads at delivery time, beside the row it is about to deliver.

Rules checked when a plan is made can be broken by the time a row is sent (a retry hours
later, a second apply run, a crash and a re-run), so the outbox asks the store again just
before each marketing delivery: which marketing actions already reached this customer, and
whether the platform write-back an action depends on (its discount code) is done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from shopsync.store.schema import outbox

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["marketing_sent", "write_back_statuses"]


def marketing_sent(
    store: Store, shop_id: int, customer_id: str, *, since: int, until: int, exclude_key: str
) -> list[int]:
    """When each marketing action other than ``exclude_key`` reached the customer, in
    microseconds, one per action (its first sink), inside ``(since, until]``.

    One per action, as the planner counts: an action sent by email and to an ESP is one
    message, and the second sink of an action already sent is never held back by it.
    """
    first = func.min(outbox.c.finished_at)
    query = (
        select(first)
        .where(
            outbox.c.shop_id == shop_id,
            outbox.c.customer_id == customer_id,
            outbox.c.status == "done",
            outbox.c.marketing == 1,
            outbox.c.finished_at.is_not(None),
            outbox.c.idempotency_key != exclude_key,
        )
        .group_by(outbox.c.idempotency_key)
        .having(first > since, first <= until)
    )
    with store.engine.connect() as conn:
        return sorted(int(r[0]) for r in conn.execute(query))


def write_back_statuses(store: Store, shop_id: int, idempotency_key: str, stage: int) -> list[str]:
    """The statuses of the action's rows in stages before ``stage`` (platform write-backs)."""
    query = select(outbox.c.status).where(
        outbox.c.shop_id == shop_id,
        outbox.c.idempotency_key == idempotency_key,
        outbox.c.stage < stage,
    )
    with store.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(query)]
