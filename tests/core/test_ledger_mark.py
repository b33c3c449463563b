"""The loyalty ledger's freshness mark on both engines (issue 17.1)."""

from __future__ import annotations

import datetime as dt

import pytest

from shopsync import loyalty
from shopsync.store import Store
from tests.core import retention_helpers as h


def test_the_mark_says_when_the_ledger_is_current(store: Store) -> None:
    store.upsert([h.customer("c1"), h.order("o1", "c1", h.T0, [("p1", 1, "40")])])
    at = h.T0 + h.DAY
    assert "never brought up to date" in (loyalty.ledger_status(store, h.P, h.S, at) or "")
    with pytest.raises(loyalty.LoyaltyError, match=r"shopsync\.plan"):
        loyalty.bring_up_to_date(store, h.P, h.S, as_of=at)  # no settings known yet
    assert loyalty.bring_up_to_date(store, h.P, h.S, as_of=at, policy=loyalty.Policy()) is not None
    assert loyalty.ledger_status(store, h.P, h.S, at) is None
    assert loyalty.bring_up_to_date(store, h.P, h.S, as_of=at) is None  # nothing to do
    # the order's approval (14 days after payment) changes the ledger with no new data
    later = h.T0 + 20 * h.DAY
    assert "changed by time" in (loyalty.ledger_status(store, h.P, h.S, later) or "")
    loyalty.bring_up_to_date(store, h.P, h.S, as_of=later)  # with the settings it had
    assert loyalty.balance(store, (h.P, h.S, "c1"), later).approved == 200
    # a new input makes it stale; other loyalty settings too
    loyalty.adjust(store, (h.P, h.S, "c1"), 5, at=later, reason="goodwill", key="k1")
    assert "data changed" in (loyalty.ledger_status(store, h.P, h.S, later) or "")
    loyalty.bring_up_to_date(store, h.P, h.S, as_of=later)
    assert loyalty.balance(store, (h.P, h.S, "c1"), later).approved == 205
    other = loyalty.Policy.from_dict({"loyalty": {"earn": {"points_per_unit": 3}}})
    assert "other loyalty settings" in (
        loyalty.ledger_status(store, h.P, h.S, later, policy=other) or ""
    )
    # a synced order changes the data version
    store.upsert([h.order("o2", "c1", later, [("p1", 1, "10")])])
    assert "data changed" in (loyalty.ledger_status(store, h.P, h.S, later) or "")
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    with pytest.raises(loyalty.LoyaltyError, match="after the present"):
        loyalty.bring_up_to_date(store, h.P, h.S, as_of=future)
