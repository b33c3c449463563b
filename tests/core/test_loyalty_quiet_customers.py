"""The customers the columns show can have no action build none (``with_actions``, 30c323e):
their actions, for any lookback and expiry warnings, are the rules' (which build every
customer's), so a plan announces what it announced before."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core.loyalty_records import DAY, add_months
from shopsync.core.loyalty_shop import LoyaltyTables
from shopsync.core.policy import Policy
from tests.core.test_loyalty_columns_oracle import EXAMPLES, _derive, moments, policies, shops


@settings(max_examples=max(60, EXAMPLES), deadline=None)
@given(
    shop=shops(),
    policy=policies(),
    lookback=st.sampled_from([0, 1, 7, 7, 45, 400]),
    warn=st.sampled_from([[30, 7], [30, 7], [0], [400, 1], []]),
    data=st.data(),
)
def test_quiet_customers_have_the_rules_actions(
    shop: tuple[LoyaltyTables, list[Any]],
    policy: Policy,
    lookback: int,
    warn: list[int],
    data: st.DataObject,
) -> None:
    tables, inputs = shop
    months = policy.loyalty.expiry.inactivity_months or 12
    paid = [t for t in tables.orders["created_at"].to_list()]
    # as_of anywhere, or days (by a warning, or not yet) before an order's expiry
    near = st.sampled_from(paid).flatmap(
        lambda t: st.integers(-2, 40).map(lambda d: add_months(t, months) - d * DAY)
    )
    at = data.draw(moments | near if paid else moments)
    raw = policy.model_dump(mode="json")
    raw["loyalty"]["expiry"]["warn_days_before"] = warn
    policy = Policy.from_dict(raw)
    back = {"lookback": dt.timedelta(days=lookback)}
    _, columns = _derive(tables, inputs, policy, at, "columns", **back)
    _, rules = _derive(tables, inputs, policy, at, "rules", **back)
    assert [(c, a) for c, _, a in columns] == [(c, a) for c, _, a in rules]
    # a dry run's actions alone: the same actions, the customers with none left out
    _, alone = _derive(tables, inputs, policy, at, "columns", actions_only=True, **back)
    assert [(c, a) for c, _, a in alone if a] == [(c, a) for c, _, a in rules if a]
