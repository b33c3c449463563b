"""A one-customer plan (a webhook's re-plan) never rebuilds the shop models: stale ones are
used as stored and named on the plan; only a whole-shop plan rebuilds (issue 19, item 4)."""

from __future__ import annotations

from typing import Any

import pytest

from shopsync import stored_models
from shopsync.core.policy import Policy
from shopsync.models import Customer, Order
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from tests.core.test_stored_models import DAY, DAY0, T0, P, _head, _keys, _policy, _shop, _used


def _no_shop_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test on any whole-shop read or model build from here on."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a one-customer plan read the whole shop")

    monkeypatch.setattr(stored_models, "_whole", refused)
    monkeypatch.setattr(stored_models, "shop_models", refused)


def _customer(store: Store, name: str) -> str:
    with_orders = {o.customer_id for o in store.iter(Order, P, name) if o.customer_id}
    return sorted(c.id for c in store.iter(Customer, P, name) if c.id in with_orders)[0]


def test_a_webhook_after_a_policy_change_does_not_read_the_shop(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    plan(store, _policy(), T0, platform=P, shop=name)  # stores version 1
    cid = _customer(store, name)
    newest = max(
        (o for o in store.iter(Order, P, name) if o.customer_id == cid), key=lambda o: o.created_at
    )
    store.upsert([newest.model_copy(update={"tags": ("hooked",), "updated_at": T0 - DAY / 2})])
    other = Policy.from_dict(
        {**_policy().model_dump(mode="json"), "replenishment": {"min_repeat_pairs": 17}}
    )
    _no_shop_read(monkeypatch)
    one = plan_customer(store, other, T0, P, name, cid)
    used = _used(one)
    assert (used.version, used.rebuilt, used.why) == (1, False, "built with other settings")
    assert "reused though stale (built with other settings)" in used.describe()
    assert any("version 1 used as stored though stale" in n for n in one.notes)
    head = _head(store, name)
    assert head is not None and head.version == 1  # nothing rebuilt, nothing stored


def test_stale_models_serve_one_customer_and_plan_as_the_whole_shop_did_with_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    policy = _policy(refresh_every_days=3)
    plan(store, policy, T0, platform=P, shop=name)
    later = T0 + 4 * DAY
    cid = _customer(store, name)
    _no_shop_read(monkeypatch)
    one = plan_customer(store, policy, later, P, name, cid)
    used = _used(one)
    assert (used.version, used.rebuilt) == (1, False)
    assert "refresh_every_days" in used.why
    monkeypatch.undo()
    # the whole-shop plan rebuilds; with the same (stale) models it plans the same actions
    whole = plan(store, policy, later, platform=P, shop=name)
    assert (_used(whole).version, _used(whole).rebuilt) == (2, True)
    fresh = plan_customer(store, policy, later, P, name, cid)
    assert (_used(fresh).version, _used(fresh).why) == (2, "")
    assert not any("stale" in n for n in fresh.notes)
    assert _keys(fresh) == [a.idempotency_key for a in whole if a.customer_id == cid]


def test_with_no_models_ever_stored_the_first_webhook_builds_and_stores_them_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _shop(store)
    policy = _policy()
    cid = _customer(store, name)
    first = plan_customer(store, policy, T0, P, name, cid)
    assert (_used(first).version, _used(first).rebuilt) == (1, True)
    assert _used(first).why == "no stored models"
    _no_shop_read(monkeypatch)
    again = plan_customer(store, policy, T0, P, name, cid)
    assert (_used(again).version, _used(again).rebuilt) == (1, False)
    monkeypatch.undo()
    whole = plan(store, policy, T0, platform=P, shop=name)
    assert (_used(whole).version, _used(whole).rebuilt) == (1, False)
    assert _keys(first) == [a.idempotency_key for a in whole if a.customer_id == cid]


def test_models_of_a_later_day_never_serve_an_earlier_one_customer_plan(store: Store) -> None:
    name = _shop(store)
    policy = _policy()
    plan(store, policy, T0 + 5 * DAY, platform=P, shop=name)
    cid = _customer(store, name)
    back = _used(plan_customer(store, policy, T0, P, name, cid))
    assert (back.version, back.rebuilt) == (None, True)  # built for that day, not stored
    assert back.data_as_of == DAY0  # never a later day's models


def test_the_loyalty_currency_is_counted_again_only_when_changes_could_overturn_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopsync import planning
    from shopsync.store import shop_models as rows
    from shopsync.store.shop_figures import main_currency

    name = _shop(store)
    counted: list[int] = []
    real = rows.currency_lead
    monkeypatch.setattr(rows, "currency_lead", lambda s, i: counted.append(i) or real(s, i))
    policy, shop_id = _policy(), store.shop_id(P, name, create=False)
    orders = sorted(store.iter(Order, P, name), key=lambda o: o.id)
    assert (
        planning._loyalty_currency(store, P, name, policy) == "USD" == main_currency(store, shop_id)
    )
    assert len(counted) == 1
    edit = {"tags": ("hooked",), "updated_at": T0}  # every webhook moves the newest update
    store.upsert([orders[0].model_copy(update=edit)])
    assert planning._loyalty_currency(store, P, name, policy) == "USD"
    assert len(counted) == 1  # one changed order cannot overturn a lead of many
    euros = [
        o.model_copy(update={**edit, "currency": "EUR"}) for o in orders[: len(orders) // 2 + 1]
    ]
    store.upsert(euros)
    assert (
        planning._loyalty_currency(store, P, name, policy) == "EUR" == main_currency(store, shop_id)
    )
    assert len(counted) == 2


def test_the_loyalty_currency_asks_no_count_of_changes_when_nothing_was_written_since(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shop's order-facts sequence unmoved since the currency was counted: no order
    changed, so the kept currency stands without counting changes (one statement a call)."""
    from shopsync import planning
    from shopsync.store import shop_models as rows

    name = _shop(store)
    asked: list[int] = []
    real = rows.changes_since
    monkeypatch.setattr(rows, "changes_since", lambda s, i, q: asked.append(q) or real(s, i, q))
    policy = _policy()
    assert planning._loyalty_currency(store, P, name, policy) == "USD"
    assert planning._loyalty_currency(store, P, name, policy) == "USD"
    assert asked == []
    orders = sorted(store.iter(Order, P, name), key=lambda o: o.id)
    euros = [o.model_copy(update={"currency": "EUR"}) for o in orders[: len(orders) // 2 + 1]]
    store.upsert(euros)  # a write moves the sequence: the changes are counted, and overturn it
    assert planning._loyalty_currency(store, P, name, policy) == "EUR"
    assert len(asked) == 1


def test_a_second_webhook_of_a_store_reflects_no_table(store: Store) -> None:
    """The schema does not change under a running process: a re-plan asks the store for the
    tables it reads once per store object (an inspector per call cost a quarter of a ms)."""
    from sqlalchemy import event

    name = _shop(store)
    plan(store, _policy(), T0, platform=P, shop=name)
    cid = _customer(store, name)
    plan_customer(store, _policy(), T0, P, name, cid)
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        plan_customer(store, _policy(), T0, P, name, cid)
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    assert seen  # the plan read its customer
    catalogue = ("table_info", "sqlite_master", "pg_catalog", "information_schema")
    reflected = [s for s in seen if any(c in s.lower() for c in catalogue)]
    assert reflected == []
