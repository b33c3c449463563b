"""An erased customer's loyalty ledger rows go with the erasure (``_privacy``), and their
orders stay for the shop's figures with their customer id: a plan that brings the ledger up
to date must not derive their points again (that is profiling an erased person, and a
balance the loyalty write-back would send to the shop)."""

from __future__ import annotations

from sqlalchemy import func, select

from shopsync.planning import plan
from shopsync.store import Store
from shopsync.store.schema import loyalty_ledger
from tests.core.test_incremental_plan import DAY, POLICY, T0, P, _small_shop

SHOP = "a.example"


def _ledger_rows(store: Store, customer_id: str) -> int:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(func.count()).where(loyalty_ledger.c.customer_id == customer_id)
        ).scalar()
    return int(found or 0)


def test_a_plan_derives_no_loyalty_points_for_an_erased_customer(store: Store) -> None:
    _small_shop(store, SHOP)
    at = T0 + DAY
    plan(store, POLICY, at, platform=P, shop=SHOP)  # the ledger brought up to date
    with store.engine.connect() as conn:
        earners = sorted(
            set(conn.execute(select(loyalty_ledger.c.customer_id).distinct()).scalars())
        )
    victim = earners[0]
    assert _ledger_rows(store, victim) > 0
    store.redact_customer(P, SHOP, victim)
    assert _ledger_rows(store, victim) == 0
    plan(store, POLICY, at + DAY, platform=P, shop=SHOP)  # brings the ledger up to date again
    assert _ledger_rows(store, victim) == 0
