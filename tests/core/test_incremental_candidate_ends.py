"""Review of issue 19's candidate ends (a customer the cap holds behind a message it never
counts rests until that message stops being a candidate) and of the reviews noted on insert:
random rounds of reviews, late fulfilments, refunds, cancellations, deletions and guest
orders, applied to sinks that count for the cap or not, each incremental plan checked
against the full one (``SHOPSYNC_INCREMENTAL_EXAMPLES`` sets how many it tries)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync import reviews
from shopsync.core.policy import Policy
from shopsync.models import Customer, Order
from shopsync.outbox import apply
from shopsync.planning import plan
from shopsync.sinks import JsonLines
from shopsync.store import Store
from tests.core.retention_helpers import DAY, T0, P, customer, order, product
from tests.core.test_incremental_plan import EXAMPLES, PHASES, _equal_to_the_full_plan, store_for

HOUR = dt.timedelta(hours=1)
_names = itertools.count()
RUN = uuid.uuid4().hex[:8]


class _Mailer(JsonLines):
    """A file sink standing for an email one: its deliveries count for the frequency cap."""

    contacts_customer = True


SINKS = st.sampled_from(["file", "file", "file", "mail", "both"])
OPS = st.sampled_from(
    ["review", "order", "fulfil", "refund", "cancel", "delete_customer", "guest", "none"]
)
ROUND = st.tuples(st.lists(st.tuples(OPS, st.integers(0, 10**6)), max_size=4), SINKS)


def _sinks(which: str, tmp: Path) -> list[JsonLines]:
    files: list[JsonLines] = [JsonLines("out.jsonl", root=tmp)]
    mail: list[JsonLines] = [_Mailer("mail.jsonl", root=tmp, name="mail")]
    return {"file": files, "mail": mail, "both": files + mail}[which]


def _shop(store: Store, shop: str) -> None:
    rows: list[Any] = [product(f"p{i}").model_copy(update={"shop": shop}) for i in range(4)]
    for c in range(5):
        cid = f"c{c}"
        rows.append(customer(cid).model_copy(update={"shop": shop}))
        for k in range(3):  # fulfilled a day or two apart: the cap holds the later requests
            made = T0 - (12 - 2 * k - c % 2) * DAY
            lines = [(f"p{(c + k) % 4}", 1, "20")]
            ptype = ("Coffee", "Electronics", None)[k]  # replenishment, warranty, reviews
            made_order = order(f"o{c}-{k}", cid, made, lines, ptype=ptype)
            rows.append(made_order.model_copy(update={"shop": shop}))
    store.upsert(rows)


def _change(store: Store, shop: str, op: str, pick: int, at: dt.datetime) -> str | None:
    ids = sorted(c.id for c in store.iter(Customer, P, shop))
    if not ids:
        return None
    cid = ids[pick % len(ids)]
    mine = sorted(
        (o for o in store.iter(Order, P, shop) if o.customer_id == cid), key=lambda o: o.id
    )
    when = at - dt.timedelta(hours=pick % 30)
    if op == "review" and mine:
        o = mine[pick % len(mine)]
        reviews.record(store, P, shop, cid, o.line_items[0].product_id, when, order_id=o.id)
    elif op == "order":
        pid = f"p{pick % 4}"
        made = order(f"n{pick}", cid, when - 3 * DAY, [(pid, 1, "20")], fulfilled=False)
        store.upsert([made.model_copy(update={"shop": shop})])
    elif op == "fulfil":
        late = [o for o in mine if not o.fulfillments]
        if not late:
            return None
        o = late[pick % len(late)]
        made = order(o.id, cid, o.created_at, [(o.line_items[0].product_id, 1, "20")])
        made = made.model_copy(update={"shop": shop, "updated_at": max(o.updated_at, when) + HOUR})
        store.upsert([made])
    elif op in ("refund", "cancel") and mine:
        o = mine[pick % len(mine)]
        extra: dict[str, Any] = {}
        if op == "refund":
            extra["refund"] = (when, "20")
        else:
            extra["cancelled"] = when
        made = order(o.id, cid, o.created_at, [(o.line_items[0].product_id, 1, "20")], **extra)
        made = made.model_copy(update={"shop": shop, "updated_at": max(o.updated_at, when) + HOUR})
        store.upsert([made])
    elif op == "delete_customer":
        store.delete(Customer, P, shop, cid, deleted_at=when)
    elif op == "guest":
        made = order(f"g{pick}", f"guest{pick % 3}", when - 12 * DAY, [("p1", 1, "20")])
        store.upsert([made.model_copy(update={"shop": shop})])
        return None
    else:
        return None
    return cid


@pytest.mark.slow(seconds=90)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES)
@given(
    rounds=st.lists(st.tuples(ROUND, st.integers(1, 60)), min_size=2, max_size=6),
    email_hours=st.sampled_from([0, 16, 72]),
    max_emails=st.integers(1, 3),
    reminder=st.sampled_from([None, 2, 5]),
    late=st.integers(1, 6),
)
def test_plans_of_customers_resting_behind_an_uncounted_message_are_the_full_plans(
    kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    rounds: list[tuple[tuple[list[tuple[str, int]], str], int]],
    email_hours: int,
    max_emails: int,
    reminder: int | None,
    late: int,
) -> None:
    store = store_for(kind, tmp_path_factory)
    tmp = tmp_path_factory.mktemp("sink")
    shop = f"ends{RUN}-{next(_names)}.example"
    _shop(store, shop)
    policy = Policy.from_dict(
        {
            "frequency_cap": {"email_hours": email_hours, "max_emails": max_emails},
            "reviews": {"reminder_days": reminder, "max_late_days": late},
            "replenishment": {"usage_days_by_type": {"Coffee": 10}, "late_days": late},
            "warranty": {"days_by_type": {"Electronics": 20}, "days_before": 5},
        }
    )
    at = T0 + 4 * DAY  # the first requests are due: the cap holds the later ones
    apply(plan(store, policy, at, platform=P, shop=shop, only_changed=True), store,
          _sinks("file", tmp), now=at)  # fmt: skip
    for (ops, which), hours in rounds:
        for op, pick in ops:
            _change(store, shop, op, pick, at)
        at += hours * HOUR
        inc, _ = _equal_to_the_full_plan(store, shop, at, set(), policy)
        apply(inc, store, _sinks(which, tmp), now=at)
