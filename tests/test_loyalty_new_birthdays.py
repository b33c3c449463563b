"""The birthdays a loyalty update records (``shopsync.loyalty._histories.new_birthdays``,
computed over the customers' frame): a value the inputs do not hold yet for its customer,
up to ``as_of``, keyed as :func:`shopsync.core.loyalty.source_key` keys it (hashed when too
long), in the frame's order."""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl

from shopsync.core import loyalty as rules
from shopsync.loyalty._histories import new_birthdays

LONG = "x" * 260  # a customer id whose key is hashed


def _input(customer: str, birthday: str) -> SimpleNamespace:
    return SimpleNamespace(
        kind="birthday", key=f"k{customer}", customer_id=customer, data={"birthday": birthday}
    )


def test_new_birthdays_of_a_hand_built_frame() -> None:
    frame = pl.DataFrame(
        {
            "id": ["c5", "c1", "c2", "c3", "c4", LONG, "c1"],
            "birthday": [
                "1990-05-01",
                "1980-01-02",
                "1970-03-04",
                None,
                "1960-07-08",
                "1999-12-31",
                "1980-01-02",
            ],
            "updated_at": [50, 10, 20, 30, 999, 40, 11],
            "email": [None] * 7,
        },
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
    )
    inputs = [
        _input("c2", "1970-03-04"),  # held: nothing new
        _input("c1", "1981-01-01"),  # then changed: new
        SimpleNamespace(kind="adjust", key="a", customer_id="c5", data={"points": 5}),
        _input("c5", "1990-05-01"),
        _input("c5", "1991-05-01"),  # the latest counts: 1990 again is new
    ]
    found = new_birthdays(7, frame, inputs, 100)
    assert [(r["customer_id"], r["key"]) for r in found] == [
        ("c5", "birthday:c5:1990-05-01:50"),
        ("c1", "birthday:c1:1980-01-02:10"),
        (LONG, rules.source_key("birthday", LONG, "1999-12-31", 40)),
        ("c1", "birthday:c1:1980-01-02:11"),
    ]
    assert found[2]["key"].startswith("birthday:sha256:")
    assert found[0] == {
        "shop_id": 7,
        "key": "birthday:c5:1990-05-01:50",
        "kind": "birthday",
        "customer_id": "c5",
        "occurred_at": 50,
        "data": {"birthday": "1990-05-01"},
    }
    assert new_birthdays(7, frame.clear(), inputs, 100) == []
