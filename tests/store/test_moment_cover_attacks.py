"""Attacks on the moment cover (issue 19, item 4): with the cover up, a plan finds its
customers from the moments' indexes alone, so a change note consumed without a moment
recorded loses a customer for good. The invariant: every customer the full plan gives an
action is among the incremental plan's customers, with the same actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopsync.core.policy import Policy
from shopsync.planning import plan
from shopsync.store import Store
from tests.core.retention_helpers import order
from tests.store.test_moment_cover import HOUR, SHOP, T0, P, _cover, _settled, _shop, _spied_plan

SOFT = Policy.from_dict(
    {
        "replenishment": {"usage_days_by_type": {"Coffee": 21, "Tea": 45}},
        "loyalty": {"enabled": True},
        "consent": {"allow_soft_opt_in": True},  # a buyer without a customer row gets mail
    }
)


def _keys(result: Any, cid: str) -> set[str]:
    return {a.idempotency_key for a in result.actions if getattr(a, "customer_id", None) == cid}


def test_an_order_after_as_of_of_a_customer_without_a_row_keeps_its_note(
    store: Store, tmp_path: Path
) -> None:
    """A guest's (or a platform-deleted customer's) order placed after the plan's as_of (a
    back-dated plan, or the platform's clock ahead of ours): not plannable yet, and no
    customer row, so the plan must keep its note rather than drop it as "gone"; else, the
    cover up, nothing finds them when their review request comes."""
    shop_id = _shop(store)
    _settled(store, tmp_path, T0, SOFT)
    _settled(store, tmp_path, T0 + HOUR, SOFT)
    assert _cover(store, shop_id) == (True, True)
    ghost = order("ghost-1", "ghost", T0 + 5 * HOUR, ptype="Coffee")
    store.upsert([ghost.model_copy(update={"shop": SHOP, "email": "ghost@example.com"})])
    _settled(store, tmp_path, T0 + 2 * HOUR, SOFT)  # before the order
    later = T0 + 25 * 24 * HOUR
    full = plan(store, SOFT, later, platform=P, shop=SHOP)
    assert _keys(full, "ghost")  # a review request, say
    result, found = _spied_plan(store, later, SOFT)
    assert [f.by_index for f in found] == [True]
    assert "ghost" in result.customers
    assert _keys(result, "ghost") == _keys(full, "ghost")
