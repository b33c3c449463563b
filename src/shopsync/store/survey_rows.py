"""NPS / CSAT answers as rows: the SQL behind :mod:`shopsync.surveys` (issue 22).

Imported after the store package (never from it at import time: it imports the package).
An answer and the outbox rows of its follow-ups (the detractor alert, the promoter's ask)
are written in one transaction, under the shop's writer lock that an erasure also takes: a
crash leaves both or neither, a second click finds the answer and plans nothing, and an
answer cannot slip in beside an erasure committed at the same time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, func, select, update

from shopsync.store import NO_SHOP, _engine, _rows, insert_ignoring_duplicates, outbox_rows
from shopsync.store.schema import customers, orders, outbox, survey_answers, tombstones

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "Answer",
    "Outcome",
    "add_comment",
    "export_answers",
    "record_answer",
    "redact_answers",
    "survey_answer_rows",
]

Outcome = Literal["recorded", "answered", "no_shop", "erased"]
"""recorded: new; answered: this survey had an answer already (nothing changed); no_shop: the
store does not know the shop; erased: the customer is not in the store (erased or unknown)."""


@dataclass(frozen=True)
class Answer:
    survey_key: str
    customer_id: str | None
    order_id: str
    scale: str
    score: int
    cohort: str | None
    comment: str | None
    answered_at: dt.datetime
    commented_at: dt.datetime | None


def _answer(row: Any) -> Answer:
    return Answer(
        row.survey_key,
        row.customer_id,
        row.order_id,
        row.scale,
        row.score,
        row.cohort,
        row.comment,
        _rows.from_micros(row.answered_at),  # type: ignore[arg-type]
        _rows.from_micros(row.commented_at),
    )


def _present(conn: Connection, shop_id: int, customer_id: str) -> bool:
    """Whether the customer is stored and not erased (an erasure deletes the row and leaves a
    ``redacted`` tombstone; both are checked, the tombstone outliving a later re-sync)."""
    buried = conn.execute(
        select(tombstones.c.reason).where(
            tombstones.c.shop_id == shop_id,
            tombstones.c.resource == "customers",
            tombstones.c.id == customer_id,
            tombstones.c.reason == "redacted",
        )
    ).first()
    if buried is not None:
        return False
    stored = conn.execute(
        select(customers.c.id).where(customers.c.shop_id == shop_id, customers.c.id == customer_id)
    ).first()
    return stored is not None


def _cohort(conn: Connection, shop_id: int, customer_id: str) -> str | None:
    first = conn.execute(
        select(func.min(orders.c.created_at)).where(
            orders.c.shop_id == shop_id, orders.c.customer_id == customer_id
        )
    ).scalar()
    moment = _rows.from_micros(first)
    return None if moment is None else moment.strftime("%Y-%m")


def _lock(store: Store, conn: Connection, platform: str, shop: str) -> int | None:
    # Never create the shop: after shop/redact a late click must not bring it back.
    shop_id = store.shop_id(platform, shop, conn, create=False)
    if shop_id == NO_SHOP:
        return None
    _engine.exclusive(conn, f"shop:{shop_id}")
    return shop_id


def record_answer(
    store: Store,
    platform: str,
    shop: str,
    answer: dict[str, Any],
    followups: Callable[[int, Callable[[str], bool]], Sequence[dict[str, Any]]],
    now: dt.datetime,
) -> tuple[Outcome, Answer | None]:
    """Record ``answer`` (survey_key, customer_id, order_id, scale, score) once, with the
    outbox rows ``followups(shop_id, queued)`` returns (``queued(key)``: whether the outbox
    holds the key already), in one transaction. Returns the outcome and the stored answer
    (the earlier one when the survey was answered before)."""
    at = _rows.to_micros(now)
    with store.transaction() as conn:
        shop_id = _lock(store, conn, platform, shop)
        if shop_id is None:
            return "no_shop", None
        if not _present(conn, shop_id, answer["customer_id"]):
            return "erased", None
        values = {
            **answer,
            "shop_id": shop_id,
            "cohort": _cohort(conn, shop_id, answer["customer_id"]),
            "answered_at": at,
        }
        if insert_ignoring_duplicates(conn, survey_answers, [values]) != 1:
            return "answered", _find(conn, shop_id, answer["survey_key"])

        def queued(key: str) -> bool:
            found = select(outbox.c.id).where(
                outbox.c.shop_id == shop_id, outbox.c.idempotency_key == key
            )
            return conn.execute(found.limit(1)).first() is not None

        outbox_rows.record_rows(conn, list(followups(shop_id, queued)))
        return "recorded", _find(conn, shop_id, answer["survey_key"])


def _find(conn: Connection, shop_id: int, survey_key: str) -> Answer | None:
    row = conn.execute(
        select(survey_answers).where(
            survey_answers.c.shop_id == shop_id, survey_answers.c.survey_key == survey_key
        )
    ).first()
    return None if row is None else _answer(row)


def add_comment(
    store: Store,
    platform: str,
    shop: str,
    survey_key: str,
    comment: str,
    followups: Callable[[int, Answer], Sequence[dict[str, Any]]],
    now: dt.datetime,
) -> tuple[Literal["recorded", "commented", "unanswered", "no_shop", "erased"], Answer | None]:
    """Add the one comment of an answered survey, with the outbox rows ``followups`` returns,
    in one transaction; a second comment changes nothing (``commented``)."""
    at = _rows.to_micros(now)
    with store.transaction() as conn:
        shop_id = _lock(store, conn, platform, shop)
        if shop_id is None:
            return "no_shop", None
        found = _find(conn, shop_id, survey_key)
        if found is None:
            return "unanswered", None
        if found.customer_id is None or not _present(conn, shop_id, found.customer_id):
            return "erased", None
        changed = conn.execute(
            update(survey_answers)
            .where(
                survey_answers.c.shop_id == shop_id,
                survey_answers.c.survey_key == survey_key,
                survey_answers.c.comment.is_(None),
            )
            .values(comment=comment, commented_at=at)
        ).rowcount
        if not changed:
            return "commented", found
        stored = _find(conn, shop_id, survey_key)
        assert stored is not None
        outbox_rows.record_rows(conn, list(followups(shop_id, stored)))
        return "recorded", stored


def survey_answer_rows(store: Store, platform: str, shop: str) -> list[Answer]:
    """A shop's answers, oldest first."""
    shop_id = store.shop_id(platform, shop, create=False)
    query = (
        select(survey_answers)
        .where(survey_answers.c.shop_id == shop_id)
        .order_by(survey_answers.c.answered_at, survey_answers.c.id)
    )
    with store.engine.connect() as conn:
        return [_answer(r) for r in conn.execute(query)]


def export_answers(conn: Connection, shop_id: int, customer_id: str) -> list[dict[str, Any]]:
    """One customer's answers as JSON-ready data (GDPR access)."""
    query = (
        select(survey_answers)
        .where(survey_answers.c.shop_id == shop_id, survey_answers.c.customer_id == customer_id)
        .order_by(survey_answers.c.id)
    )
    out = []
    for row in conn.execute(query):
        a = _answer(row)
        out.append(
            {
                "survey_key": a.survey_key,
                "order_id": a.order_id,
                "scale": a.scale,
                "score": a.score,
                "comment": a.comment,
                "answered_at": a.answered_at.isoformat(),
                "commented_at": a.commented_at.isoformat() if a.commented_at else None,
            }
        )
    return out


def redact_answers(conn: Connection, shop_id: int, customer_id: str) -> int:
    """Erase a customer from their answers (GDPR erasure): the customer id and the free-text
    comment go; the score, its date and cohort stay for the shop's figures, no longer linked
    to anyone."""
    return int(
        conn.execute(
            update(survey_answers)
            .where(survey_answers.c.shop_id == shop_id, survey_answers.c.customer_id == customer_id)
            .values(customer_id=None, comment=None)
        ).rowcount
    )
