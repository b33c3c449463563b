"""An erased customer (GDPR ``customers/redact``) gets no action planned at all, not even a
held one: their orders stay for the shop's figures, but nobody may be profiled or written
to from them. A customer deleted on the platform is another case: their orders remain and are
planned (``shopsync.incremental._with_rows``), as the docs say."""

from __future__ import annotations

from shopsync.core.planner import Plan
from shopsync.models import Customer, Order
from shopsync.planning import plan, plan_customer
from shopsync.store import Store
from tests.core.test_incremental_plan import DAY, POLICY, T0, P, _small_shop

SHOP = "a.example"


def _theirs(found: Plan, customer_id: str) -> list[str]:
    """Every key planned or held for the customer."""
    kept = [a.idempotency_key for a in found if a.customer_id == customer_id]
    held = [h.action.idempotency_key for h in found.held if h.action.customer_id == customer_id]
    return kept + held


def test_an_erased_customer_whose_orders_remain_gets_nothing_planned_or_held(
    store: Store,
) -> None:
    _small_shop(store, SHOP)
    at = T0 + DAY
    before = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
    busy = sorted({a.customer_id for a in before} | {h.action.customer_id for h in before.held})
    victim, deleted = busy[0], busy[1]
    assert _theirs(before, victim) and _theirs(before, deleted)
    store.redact_customer(P, SHOP, victim)
    store.delete(Customer, P, SHOP, deleted, deleted_at=at)
    assert any(o.customer_id == victim for o in store.iter(Order, P, SHOP))  # orders stay
    full = plan(store, POLICY, at, platform=P, shop=SHOP, update_ledger=False)
    assert _theirs(full, victim) == []
    assert _theirs(plan_customer(store, POLICY, at, P, SHOP, victim), victim) == []
    inc = plan(store, POLICY, at, platform=P, shop=SHOP, only_changed=True)
    assert _theirs(inc, victim) == []
    assert victim not in inc.customers  # nothing to plan: not chosen at every plan either
    # deleted on the platform, not erased: the orders remain and are still planned
    assert _theirs(full, deleted) == _theirs(before, deleted)
