"""When the outbox delivered actions of one kind: what follow-ups (a review reminder) wait on.

A follow-up is timed from the moment its first message reached the customer, not from when
it was planned: a request held by the frequency cap, parked by an SMTP outage or never sent
at all must not be followed by a reminder. An action goes to several sinks; what reached the
customer is the delivery of the latest stage that took the action (stage 1, the messages,
over stage 0, the platform write-back that only tags the customer), so a request whose tag
was written but whose email is still pending counts as not delivered.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, select

from shopsync.store.schema import outbox

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = ["delivered_at"]


@functools.lru_cache(maxsize=64)
def _delivered(key_prefix: str, one: bool) -> Select[Any]:
    """The deliveries of keys starting with ``key_prefix`` in the shop ``:sid`` (of the
    customer ``:cid`` when ``one``), built once per prefix: a webhook's re-plan runs it."""
    query = select(
        outbox.c.idempotency_key, outbox.c.stage, outbox.c.status, outbox.c.finished_at
    ).where(
        outbox.c.shop_id == bindparam("sid"),
        outbox.c.idempotency_key.startswith(key_prefix, autoescape=True),
    )
    return query.where(outbox.c.customer_id == bindparam("cid")) if one else query


def delivered_at(
    store: Store, shop_id: int, key_prefix: str, upto: int, customer_id: str | None = None
) -> dict[str, int]:
    """Idempotency key -> first delivery time (micros) by ``upto``, for keys starting with
    ``key_prefix``; keys not delivered by then are left out. No outbox table: empty."""
    from shopsync.store.read import table_names  # read imports this module

    if outbox.name not in table_names(store):  # read once per store: an inspector per call
        return {}
    query = _delivered(key_prefix, customer_id is not None)
    top: dict[str, int] = {}
    done: dict[tuple[str, int], int] = {}
    with store.engine.connect() as conn:
        for key, stage, status, finished in conn.execute(
            query, {"sid": shop_id, "cid": customer_id}
        ):
            top[key] = max(top.get(key, stage), stage)
            if status == "done" and finished is not None and finished <= upto:
                previous = done.get((key, stage))
                done[(key, stage)] = finished if previous is None else min(previous, finished)
    return {key: done[(key, stage)] for key, stage in top.items() if (key, stage) in done}
