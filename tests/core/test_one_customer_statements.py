"""A webhook's re-plan (``plan_customer``) runs the same dozen store statements on each call:
they are built once, with bind parameters, not built and keyed again per call (a select
built and keyed cost ~80 us, one built once ~18 us: issue 18, item 4.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.sql.selectable import Select

from shopsync.core.policy import Policy
from shopsync.models import Customer, Order
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from tests.core.test_stored_models import T0, P, _shop


def _selects_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built = [0]
    real = Select.__init__

    def counted(self: Select[Any], *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        real(self, *args, **kwargs)

    monkeypatch.setattr(Select, "__init__", counted)
    return built


def test_a_second_webhook_re_plan_builds_no_select(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    policy = Policy.from_dict(  # every program that reads the store per customer
        {
            "loyalty": {"enabled": True, "category_bonus": {"points": 5}},
            "abandoned_checkout": {"enabled": True},
            "browse_abandonment": {"enabled": True},
            "winback": {"model_min_customers": 5, "model_min_history_days": 30},
        }
    )
    plan(store, policy, T0, platform=P, shop=name)  # the ledger and the models, stored
    buyers = {o.customer_id for o in store.iter(Order, P, name) if o.customer_id}
    first, second = sorted(c.id for c in store.iter(Customer, P, name) if c.id in buyers)[:2]
    plan_customer(store, policy, T0, P, name, first)
    built = _selects_built(monkeypatch)
    again = plan_customer(store, policy, T0, P, name, second)
    assert built[0] == 0
    monkeypatch.undo()
    assert again == plan_customer(store, policy, T0, P, name, second)


def test_a_re_plan_at_a_later_as_of_sends_the_same_sql(store: Store) -> None:
    """A webhook re-plans at now: a later as_of binds new values, never new SQL text."""
    name = _shop(store)
    policy = Policy.from_dict(
        {
            "loyalty": {"enabled": True, "category_bonus": {"points": 5}},
            "abandoned_checkout": {"enabled": True},
            "browse_abandonment": {"enabled": True},
            "winback": {"model_min_customers": 5, "model_min_history_days": 30},
        }
    )
    plan(store, policy, T0, platform=P, shop=name)
    buyers = {o.customer_id for o in store.iter(Order, P, name) if o.customer_id}
    first = sorted(c.id for c in store.iter(Customer, P, name) if c.id in buyers)[0]
    later = T0 + timedelta(seconds=1)
    texts: list[set[str]] = [set(), set()]
    call = [0]

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        texts[call[0]].add(statement)

    engine = store.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        plan_customer(store, policy, T0, P, name, first)
        call[0] = 1
        again = plan_customer(store, policy, later, P, name, first)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sorted(texts[1] - texts[0]) == []  # fails on the base: six selects per as_of
    assert again == plan_customer(store, policy, later, P, name, first)
