"""A referral naming its friend by an e-mail two customers hold credits one of them, the same
whatever order the customer rows come in: a whole read (PostgreSQL: heap order, which an
update moves) and a read of some customers (a plan in parts, through an index) hand them
over in different orders, and the friend's reward went to the other customer."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl

from shopsync.core.loyalty_shop import referral_parties


def test_the_friend_by_email_is_the_same_whatever_the_rows_order() -> None:
    referral = SimpleNamespace(
        kind="referral",
        key="r1",
        customer_id="adv",
        occurred_at=1,
        data={"friend_id": None, "friend_email": "dup@example.com", "ip": None},
    )
    rows = pl.DataFrame(
        {
            "id": ["aa", "zz", "other"],
            "birthday": [None, None, None],
            "updated_at": [5, 3, 9],
            "email": ["dup@example.com", "dup@example.com", "x@example.com"],
        },
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
    )
    found = {
        frozenset(referral_parties([referral], rows[list(order)]))
        for order in ([0, 1, 2], [1, 0, 2], [2, 1, 0])
    }
    # the most recently updated of the customers holding it
    assert found == {frozenset({"adv", "aa"})}
