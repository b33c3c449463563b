"""What the outbox reads at delivery time, beside the row it is about to deliver.

Rules checked when a plan is made can be broken by the time a row is sent (a retry hours
later, a second apply run, a crash and a re-run), so the outbox asks the store again just
before each marketing delivery: which marketing actions already reached this customer, and
whether the platform write-back an action depends on (its discount code) is done. It also
keeps the policy of the last ``apply`` that passed one, per shop, for the runs that do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shopsync.store.outbox_rows import UNCHANGED_PENDING
from shopsync.store.schema import delivery_policies, outbox

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "defer_row",
    "marketing_sent",
    "remember_policy",
    "remembered_policy",
    "write_back_statuses",
]


_SENT = select(outbox.c.idempotency_key, outbox.c.finished_at).where(
    outbox.c.shop_id == bindparam("sid"),
    outbox.c.customer_id == bindparam("cid"),
    outbox.c.status == "done",
    outbox.c.marketing == 1,
    outbox.c.finished_at.is_not(None),
)
_WRITE_BACKS = select(outbox.c.status).where(
    outbox.c.shop_id == bindparam("sid"),
    outbox.c.idempotency_key == bindparam("key"),
    outbox.c.stage < bindparam("stage"),
)
_DEFER = (
    update(outbox)
    .where(*UNCHANGED_PENDING)
    .values(reason=bindparam("why"), updated_at=bindparam("at"))
)


def marketing_sent(
    store: Store, shop_id: int, customer_id: str, *, since: int, until: int, exclude_key: str
) -> list[int]:
    """When each marketing action other than ``exclude_key`` reached the customer, in
    microseconds, one per action (its first sink), inside ``(since, until]``.

    One per action, as the planner counts: an action sent by email and to an ESP is one
    message, and the second sink of an action already sent is never held back by it. The
    customer's rows are read through ``ix_outbox_customer`` and grouped here: grouped in
    SQL, SQLite read them in key order through the unique index instead, every row of the
    shop for each row delivered (the cost of a delivery grew with the outbox).
    """
    first: dict[str, int] = {}
    with store.engine.connect() as conn:
        for key, finished in conn.execute(_SENT, {"sid": shop_id, "cid": customer_id}):
            if key != exclude_key and (key not in first or finished < first[key]):
                first[key] = int(finished)
    return sorted(t for t in first.values() if since < t <= until)


def write_back_statuses(store: Store, shop_id: int, idempotency_key: str, stage: int) -> list[str]:
    """The statuses of the action's rows in stages before ``stage`` (platform write-backs)."""
    with store.engine.connect() as conn:
        params = {"sid": shop_id, "key": idempotency_key, "stage": stage}
        return [str(r[0]) for r in conn.execute(_WRITE_BACKS, params)]


def remember_policy(store: Store, shop_ids: Iterable[int], policy_json: str, at: int) -> None:
    """Keep ``policy_json`` as the delivery policy of these shops (replacing the last one)."""
    rows = [{"shop_id": s, "policy": policy_json, "recorded_at": at} for s in sorted(set(shop_ids))]
    if not rows:
        return
    with store.transaction() as conn:
        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(delivery_policies)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[delivery_policies.c.shop_id],
                set_={"policy": insert.excluded.policy, "recorded_at": insert.excluded.recorded_at},
            ),
            rows,
        )


def remembered_policy(store: Store, shop_id: int) -> str | None:
    """The policy JSON the last ``apply`` with a policy left for the shop, or None."""
    query = select(delivery_policies.c.policy).where(delivery_policies.c.shop_id == shop_id)
    with store.engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)


def defer_row(store: Store, row_id: int, attempts: int, reason: str, at: int) -> None:
    """Keep a pending row pending with ``reason``; no attempt is counted (and nothing changes
    if another run attempted it meanwhile)."""
    with store.transaction() as conn:
        conn.execute(_DEFER, {"row_id": row_id, "seen": attempts, "why": reason, "at": at})
