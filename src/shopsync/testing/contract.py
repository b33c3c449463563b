"""The contract every adapter passes against its platform's emulator.

Subclass :class:`AdapterContract` in a test module and provide the ``emulated`` fixture (a
started :class:`~shopsync.testing.EmulatedShop` of your platform); pytest collects the
inherited tests::

    class TestBigCommerceContract(AdapterContract):
        @pytest.fixture
        def emulated(self):
            with emulate("bigcommerce", customers=40, orders=200, products=15) as shop:
                yield shop

What it checks, for customers, orders and products alike: a full read returns exactly the
emulator's records; a read ``updated_since`` a time returns every record changed since then,
changes made after a first read included; 429, 5xx, dropped and truncated responses are
survived; records the emulator serves corrupted are quarantined as ``Rejected`` with a
reason while the rest are read; and reading the same shop twice gives the same records.

Records are compared with what the platform can hold of them: if the emulator has a
``view(model)`` method (e.g. WooCommerce keeps dates to the second), the expected record is
``emulator.view(state_record)``; otherwise the state record itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

import shopsync
from shopsync.adapter import Adapter, Page, Rejected
from shopsync.testing import EmulatedShop

__all__ = ["AdapterContract", "read_all"]

RESOURCES = ("customers", "orders", "products")


def read_all(
    adapter: Adapter, resource: str, updated_since: dt.datetime | None = None
) -> tuple[dict[str, Any], list[Rejected], list[Page[Any]]]:
    """Every page of one resource: (records by id, rejected, pages)."""
    reader = getattr(adapter, f"read_{resource}")
    records: dict[str, Any] = {}
    rejected: list[Rejected] = []
    pages: list[Page[Any]] = list(reader(updated_since))
    for page in pages:
        for record in page.records:
            records[record.id] = record  # a later copy (overlap) replaces an earlier one
        rejected.extend(page.rejected)
    return records, rejected, pages


class AdapterContract:
    """Adapter contract tests; subclass and provide the ``emulated`` fixture."""

    resources: ClassVar[tuple[str, ...]] = RESOURCES

    @pytest.fixture
    def emulated(self) -> Iterator[EmulatedShop]:
        """A started emulated shop of the platform under test (abstract)."""
        raise NotImplementedError("provide an 'emulated' fixture yielding an EmulatedShop")
        yield  # pragma: no cover

    # ---------------------------------------------------------------- hooks

    def adapter_settings(self, shop: EmulatedShop) -> dict[str, Any]:
        """Settings for ``shopsync.connect``; override to add e.g. a fast retry policy."""
        return dict(shop.settings)

    def connect(self, shop: EmulatedShop) -> Adapter:
        return shopsync.connect(shop.platform, **self.adapter_settings(shop))

    def expected(self, shop: EmulatedShop, record: BaseModel) -> BaseModel:
        view = getattr(shop.emulator, "view", None)
        return view(record) if callable(view) else record

    def state_records(self, shop: EmulatedShop, resource: str) -> dict[str, Any]:
        with shop.state.lock:
            records = dict(shop.state.records(resource))
        return {k: self.expected(shop, v) for k, v in records.items()}

    @pytest.fixture
    def adapter(self, emulated: EmulatedShop) -> Iterator[Adapter]:
        adapter = self.connect(emulated)
        yield adapter
        adapter.close()

    # ---------------------------------------------------------------- tests

    @pytest.mark.parametrize("resource", RESOURCES)
    def test_full_read_matches_the_shop(
        self, emulated: EmulatedShop, adapter: Adapter, resource: str
    ) -> None:
        if resource not in self.resources:
            pytest.skip(f"{resource} not read by this adapter")
        records, rejected, pages = read_all(adapter, resource)
        assert rejected == []
        want = self.state_records(emulated, resource)
        assert want, "the emulated shop should not be empty"
        assert set(records) == set(want)
        for record_id, record in records.items():
            assert record == want[record_id], f"{resource} {record_id} differs"
        assert all(page.cursor for page in pages)
        newest = max(r.updated_at for r in records.values())
        assert pages[-1].high_water == newest
        assert emulated.server.errors == []

    @pytest.mark.parametrize("resource", RESOURCES)
    def test_incremental_read_returns_everything_changed_since(
        self, emulated: EmulatedShop, adapter: Adapter, resource: str
    ) -> None:
        if resource not in self.resources:
            pytest.skip(f"{resource} not read by this adapter")
        want = self.state_records(emulated, resource)
        stamps = sorted(r.updated_at for r in want.values())
        since = stamps[len(stamps) // 2]
        records, rejected, _ = read_all(adapter, resource, since)
        assert rejected == []
        due = {k for k, r in want.items() if r.updated_at >= since}
        assert due <= set(records), f"skipped {sorted(due - set(records))[:5]}"
        for record_id, record in records.items():
            assert record == want[record_id]

    @pytest.mark.parametrize("resource", RESOURCES)
    def test_changes_after_a_read_are_seen_by_the_next(
        self, emulated: EmulatedShop, adapter: Adapter, resource: str
    ) -> None:
        """The overlap never skips: change records after a full read, read from its high water."""
        if resource not in self.resources:
            pytest.skip(f"{resource} not read by this adapter")
        _, _, pages = read_all(adapter, resource)
        high_water = pages[-1].high_water
        assert high_water is not None
        state = emulated.state
        ids = sorted(state.records(resource), key=lambda i: (len(i), i))
        changed = {ids[0], ids[len(ids) // 2], ids[-1]}
        for record_id in changed:
            if resource == "customers":
                state.update_customer(record_id, tags=("contract-check",))
            elif resource == "orders":
                state.update_order(record_id, tags=("contract-check",))
            else:
                state.update_product(record_id, tags=("contract-check",))
        records, rejected, _ = read_all(adapter, resource, high_water)
        assert rejected == []
        assert changed <= set(records)
        want = self.state_records(emulated, resource)
        for record_id in changed:
            assert records[record_id] == want[record_id]
            assert "contract-check" in records[record_id].tags

    def test_faults_are_survived(self, emulated: EmulatedShop, adapter: Adapter) -> None:
        faults = emulated.faults
        faults.retry_after = 0.01
        for kind, count in (("429", 2), ("5xx", 2), ("drop", 1), ("truncate", 1)):
            faults.inject(kind, count)  # type: ignore[arg-type]
        records, rejected, pages = read_all(adapter, "orders")
        assert faults.pending == 0
        for kind in ("429", "5xx", "drop", "truncate"):
            assert faults.counts[kind] >= 1, kind
        assert rejected == []
        assert records == self.state_records(emulated, "orders")
        assert sum(page.stats.get("retries", 0) for page in pages) >= 6

    def test_invalid_records_are_quarantined(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        chosen: dict[str, set[str]] = {}
        for resource in self.resources:
            ids = sorted(emulated.state.records(resource), key=lambda i: (len(i), i))
            chosen[resource] = {ids[1], ids[-2]}
            emulated.faults.invalid_records |= {(resource, i) for i in chosen[resource]}
        for resource in self.resources:
            records, rejected, _ = read_all(adapter, resource)
            assert {r.record_id for r in rejected} == chosen[resource]
            for bad in rejected:
                assert bad.resource == resource
                assert bad.reason
                assert str(json.loads(bad.raw)["id"]) == bad.record_id
            want = self.state_records(emulated, resource)
            assert set(records) == set(want) - chosen[resource]
            assert all(records[k] == want[k] for k in records)

    def test_reading_twice_gives_the_same_records(self, adapter: Adapter) -> None:
        for resource in self.resources:
            first, _, _ = read_all(adapter, resource)
            second, _, _ = read_all(adapter, resource)
            assert first == second
