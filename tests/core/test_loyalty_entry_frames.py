"""The entries of a derivation handed over as frames (``derive_shop(on_entries=...)``, what the
ledger writer reads): the same entries, in the same order, as the records of a full
derivation, each block's frame handed before its customers are yielded; the derivations and
actions those of a dry run's (the entries the actions read)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync import loyalty
from shopsync.core.loyalty import Entry
from shopsync.core.loyalty_derivations import ROW_COLUMNS
from shopsync.core.loyalty_records import DAY
from shopsync.core.loyalty_shop import LoyaltyTables, derive_shop
from shopsync.core.policy import Policy
from shopsync.loyalty import _derivation
from shopsync.store import Store
from shopsync.testing.generator import generate_shop
from tests.core.frames_kit import entry_of_row
from tests.core.test_loyalty_blocks_edges import edgy_shops
from tests.core.test_loyalty_columns_oracle import EXAMPLES, _derive, moments, policies

P, S = "shopify", "acme"


def _entries(frame: pl.DataFrame, per_unit: int) -> dict[str, list[Entry]]:
    """The frame's rows as entries, by customer, in the frame's order."""
    found: dict[str, list[Entry]] = {}
    assert frame.columns == list(ROW_COLUMNS)
    for row in frame.iter_rows():
        entry = entry_of_row(row, per_unit)
        found.setdefault(entry.customer_id, []).append(entry)
    return found


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(
    shop=edgy_shops(),
    policy=policies(),
    at=moments,
    size=st.sampled_from([1, 2, 3, 100_000]),
)
def test_entries_handed_as_frames_are_the_full_derivations_entries(
    shop: tuple[LoyaltyTables, list[Any]], policy: Policy, at: int, size: int
) -> None:
    tables, inputs = shop
    _, full = _derive(tables, inputs, policy, at, "columns", block_orders=size)
    handed: list[pl.DataFrame] = []
    found = derive_shop(
        tables,
        inputs,
        {},
        policy,
        at,
        currency="USD",
        platform="shopify",
        shop="acme",
        block_orders=size,
        on_entries=handed.append,
    )
    per_unit = policy.loyalty.earn.points_per_unit
    rows: dict[str, list[Entry]] = {}
    since = at - 7 * DAY
    for one, (customer, derivation, actions) in zip(found.customers, full, strict=True):
        for frame in handed:
            for who, some in _entries(frame, per_unit).items():
                assert who not in rows  # a customer's entries come in one frame
                rows[who] = some
        handed.clear()
        assert (one.customer_id, one.actions) == (customer, actions)
        assert one.entry_count == len(derivation.entries)
        if one.entries_handed:  # handed before the customer is yielded
            assert rows.pop(customer, []) == derivation.entries
            wanted = [e for e in derivation.entries if e.kind in ("earn", "bonus")]
            wanted = [e for e in wanted if since < e.at <= at]
            assert one.derivation == dataclasses.replace(derivation, entries=wanted)
        else:  # the rules' customers, or none: every entry in the derivation
            assert customer not in rows
            assert one.derivation == derivation
    assert not rows and all(f.is_empty() for f in handed)  # a block of no one: no rows


def test_a_dry_runs_actions_alone_hand_no_entries() -> None:
    tables = LoyaltyTables(
        pl.DataFrame(schema={"id": pl.String, "customer_id": pl.String}),
        pl.DataFrame(schema={"order_id": pl.String}),
        pl.DataFrame(schema={"id": pl.String}),
    )
    with pytest.raises(ValueError, match="on_entries"):
        derive_shop(
            tables,
            [],
            {},
            Policy(),
            0,
            currency="USD",
            platform="x",
            shop="y",
            actions_only=True,
            on_entries=print,
        )


def test_a_ledger_written_from_frames_in_small_slices_is_the_records_ledger(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``update_ledger`` writes the frames' rows (here 7 at a time) as it wrote the records:
    the same rows, keys, amounts, reasons and details."""
    end = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    state = generate_shop(platform=P, shop=S, seed=7, customers=40, orders=200, end=end)
    records = Store(f"sqlite:///{tmp_path / 'records.db'}")
    for one in (store, records):
        one.upsert([*state.customers.values(), *state.orders.values()])
    monkeypatch.setattr(_derivation, "_FLUSH", 7)
    framed = loyalty.update_ledger(store, P, S, as_of=end)
    real = _derivation.derive_shop

    def no_frames(*args: Any, on_entries: Any = None, **more: Any) -> Any:
        return real(*args, **more)

    monkeypatch.setattr(_derivation, "derive_shop", no_frames)
    built = loyalty.update_ledger(records, P, S, as_of=end)
    records.close()

    def rows(where: Store) -> list[tuple[Any, ...]]:
        return sorted(
            (
                *(r.customer_id, r.source_key, r.kind, r.pending, r.approved, r.effective_at),
                *(r.order_id, r.reason, json.dumps(r.detail, sort_keys=True)),
            )
            for r in loyalty.ledger_entries(where, P, S)
        )

    assert framed.added == built.added == framed.derived > 7
    assert rows(store) == rows(Store(f"sqlite:///{tmp_path / 'records.db'}"))
