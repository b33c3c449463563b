"""The loyalty derivation in blocks of customers at its edges: the shops of the columns'
oracle test with negative refunds (the rules' customers, in a block of their own or not),
ties in placement, customers listed in another order, missing, unknown or twice, and a few
customers asked for; and the cycle collector paused while records are built is always
resumed, never resumed for a caller who had paused it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import threading
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.core import loyalty_derivations
from shopsync.core.loyalty_records import DAY, UNIT
from shopsync.core.loyalty_shop import LoyaltyTables, derive_shop
from shopsync.core.policy import Policy
from tests.core.test_loyalty_columns_oracle import EXAMPLES, T0, _derive, moments, policies, shops


def _customers(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": ids,
            "birthday": [None] * len(ids),
            "updated_at": [T0] * len(ids),
            "email": [f"{c}@example.com" for c in ids],
        },
        schema={"id": pl.String, "birthday": pl.String, "updated_at": pl.Int64, "email": pl.String},
    )


@st.composite
def edgy_shops(draw: st.DrawFn) -> tuple[LoyaltyTables, list[Any]]:
    tables, inputs = draw(shops())
    orders, refunds = tables.orders, tables.refunds
    if refunds.height and draw(st.booleans()):
        negative = pl.Series(draw(st.lists(st.booleans(), min_size=refunds.height)))[
            : refunds.height
        ]
        amount = pl.col("amount")
        refunds = refunds.with_columns(
            pl.when(negative).then(-amount - UNIT).otherwise(amount).alias("amount")
        )
    if orders.height and draw(st.booleans()):  # every order placed at one moment
        orders = orders.with_columns(pl.lit(orders["created_at"][0]).alias("created_at"))
    ids = tables.customers["id"].to_list()
    listed = draw(
        st.sampled_from(["as is", "some", "shuffled", "unknown too", "twice"]).flatmap(
            lambda how: {
                "as is": st.just(ids),
                "some": st.integers(0, len(ids)).map(lambda n: ids[:n]),
                "shuffled": st.permutations(ids),
                "unknown too": st.just([*ids, "zz", "a0"]),
                "twice": st.permutations([*ids, *ids[:2]]),
            }[how]
        )
    )
    return LoyaltyTables(orders, refunds, _customers(listed)), inputs


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(
    shop=edgy_shops(),
    policy=policies(),
    at=moments,
    size=st.sampled_from([1, 2, 3]),
    some=st.booleans(),
)
def test_blocks_at_their_edges_derive_what_one_block_and_the_rules_derive(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, at: int, size: int, some: bool
) -> None:
    tables, inputs = shop
    more: dict[str, Any] = {"customer_ids": ["c1", "c3", "zz"]} if some else {}
    whole, one = _derive(tables, inputs, policy, at, "columns", **more)
    blocks, many = _derive(tables, inputs, policy, at, "columns", block_orders=size, **more)
    _, oracle = _derive(tables, inputs, policy, at, "rules", **more)
    assert many == one == oracle
    assert (blocks.referrals, blocks.by_rules) == (whole.referrals, whole.by_rules)
    _, few = _derive(tables, inputs, policy, at, "columns", block_orders=size, all_entries=False)
    since = at - 7 * DAY
    if not some:
        for (customer, full, actions), (same, kept, also) in zip(one, few, strict=True):
            assert (customer, actions) == (same, also)
            wanted = [e for e in full.entries if e.kind in ("earn", "bonus")]
            wanted = [e for e in wanted if since < e.at <= at]
            assert kept == dataclasses.replace(full, entries=wanted)


def _shop(ids: list[str], refund: int = 0) -> LoyaltyTables:
    """c0 and c1 with an order each (o1 with a refund of ``refund`` units when not 0)."""
    at = [T0, T0 + DAY]
    orders = pl.DataFrame(
        {
            "id": ["o1", "o2"],
            "customer_id": ["c0", "c1"],
            "created_at": at,
            "paid_at": at,
            "processed_at": at,
            "cancelled_at": pl.Series([None, None], dtype=pl.Int64),
            "financial_status": ["paid"] * 2,
            "currency": ["USD"] * 2,
            "total": [100 * UNIT, 50 * UNIT],
            "subtotal": [100 * UNIT, 50 * UNIT],
            "total_shipping": [0, 0],
        }
    )
    refunds = pl.DataFrame(
        [("o1", "r1", T0 + 2 * DAY, refund * UNIT)] if refund else [],
        schema={"order_id": pl.String, "id": pl.String, "created_at": pl.Int64, "amount": pl.Int64},
        orient="row",
    )
    return LoyaltyTables(orders, refunds, _customers(ids))


POLICY = Policy.from_dict({"currency": "USD", "loyalty": {"earn": {"pending_days": 0}}})


def _ledgers(tables: LoyaltyTables, **more: Any) -> list[tuple[str, Any]]:
    at = T0 + 30 * DAY
    found = derive_shop(tables, [], {}, POLICY, at, currency="USD", platform="x", shop="y", **more)
    return [(c.customer_id, c.derivation) for c in found.customers]


@pytest.mark.parametrize("more", [{}, {"block_orders": 1}, {"engine": "rules"}])
def test_a_customer_listed_twice_gets_one_ledger_of_their_own(more: dict[str, Any]) -> None:
    """Customers listed twice: each derived once, with their own entries (the columns gave
    c1's entry to c0, then failed outright; the rules gave a second, empty ledger)."""
    once = _ledgers(_shop(["c0", "c1", "c2"]), **more)
    assert _ledgers(_shop(["c0", "c1", "c0", "c2", "c1"]), **more) == once
    assert [[e.key for e in d.entries] for _, d in once] == [["earn:c0:o1"], ["earn:c1:o2"], []]


# -- the cycle collector -----------------------------------------------------------------------


def _all(**more: Any) -> list[tuple[str, Any]]:
    return _ledgers(_shop(["c0", "c1", "c2"]), **more)


def test_a_caller_who_paused_the_collector_finds_it_paused() -> None:
    gc.disable()
    try:
        _all()
        _all(block_orders=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_runs_again_after_a_failure_inside_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bool] = []

    def failing(*args: Any) -> Any:
        seen.append(gc.isenabled())
        raise RuntimeError("inside a batch")

    monkeypatch.setattr(loyalty_derivations, "_LOOSE_ENTRY", failing)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="inside a batch"):
        _all()
    assert seen == [False]  # paused while building, and running again
    assert gc.isenabled()


def test_the_collector_runs_between_batches_and_after_an_early_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loyalty_derivations, "_BATCH", 1)
    found = derive_shop(
        _shop(["c0", "c1", "c2"]),
        [],
        {},
        POLICY,
        T0 + 30 * DAY,
        currency="USD",
        platform="shopify",
        shop="acme",
    ).customers
    next(found)
    assert gc.isenabled()  # handed out: the pause is over
    found.close()  # type: ignore[attr-defined]
    assert gc.isenabled()


def test_threads_deriving_at_once_leave_the_collector_running() -> None:
    errors: list[BaseException] = []
    want = _all(block_orders=1)

    def derive() -> None:
        try:
            for _ in range(5):
                assert _all(block_orders=1) == want
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=derive) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert gc.isenabled()


@pytest.mark.parametrize("more", [{}, {"block_orders": 1}, {"engine": "rules"}])
def test_a_dry_run_keeps_the_entries_dated_after_the_window_start_up_to_as_of(
    more: dict[str, Any],
) -> None:
    """o1 paid at the window's start (outside it), o2 at ``as_of`` itself (inside)."""
    found = derive_shop(
        _shop(["c0", "c1", "c2"]),
        [],
        {},
        POLICY,
        T0 + DAY,
        currency="USD",
        platform="x",
        shop="y",
        lookback=dt.timedelta(days=1),
        all_entries=False,
        **more,
    )
    kept = [
        (c.customer_id, [e.key for e in c.derivation.entries], c.entry_count)
        for c in found.customers
    ]
    assert kept == [("c0", [], 1), ("c1", ["earn:c1:o2"], 1), ("c2", [], 0)]


@pytest.mark.parametrize("more", [{}, {"block_orders": 1}, {"block_orders": 2}])
def test_a_negative_refund_sends_its_customer_to_the_rules_in_any_block(
    more: dict[str, Any],
) -> None:
    """c0's refund of -5 (its own block at one order a block, or with c1 at two): c0 alone
    goes to the rules, and every ledger is the rules' own."""
    tables = _shop(["c0", "c1", "c2"], refund=-5)
    at = T0 + 30 * DAY
    found = derive_shop(tables, [], {}, POLICY, at, currency="USD", platform="x", shop="y", **more)
    assert found.by_rules == ["c0"]
    ledgers = [(c.customer_id, c.derivation) for c in found.customers]
    assert ledgers == _ledgers(tables, engine="rules")
    assert [e.kind for e in ledgers[0][1].entries] == ["earn"]
