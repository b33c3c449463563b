"""The platform sink asks an adapter for capabilities, never for its name: a third-party
adapter writes back through the same vocabulary as the built-in two."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

import shopsync
from shopsync.adapter import CapabilityError, CustomerFieldWriter, DiscountWriter, Page, TagWriter
from shopsync.core.actions import WinBack
from shopsync.errors import ConfigurationError
from shopsync.models import Customer, Money, Order, Product
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Platform
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge, tier

SHOP = "bigshop-1"


class _Reads:
    platform = "bigshop"
    shop = SHOP

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def read_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Customer]]:
        yield Page(records=[])

    def read_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Order]]:
        yield Page(records=[])

    def read_products(self, updated_since: dt.datetime | None = None) -> Iterator[Page[Product]]:
        yield Page(records=[])

    def close(self) -> None:
        pass


class Tags(_Reads, TagWriter):
    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self.calls.append(("add_customer_tags", (customer_id, list(tags))))

    def remove_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        self.calls.append(("remove_customer_tags", (customer_id, list(tags))))


class Everything(Tags, DiscountWriter, CustomerFieldWriter):
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "email"

    def create_discount_code(
        self,
        code: str,
        *,
        customer: Customer,
        amount: Money | None = None,
        percent: int | None = None,
        starts_at: dt.datetime,
        expires_at: dt.datetime,
        title: str = "",
    ) -> dict[str, Any]:
        self.calls.append(("create_discount_code", (code, customer.id, percent, expires_at)))
        return {"id": "d1", "code": code, "created": True}

    def set_customer_fields(
        self, customer_id: str, namespace: str, values: Mapping[str, str | int]
    ) -> None:
        self.calls.append(("set_customer_fields", (customer_id, namespace, dict(values))))


class ById(Everything):
    discount_limited_by: ClassVar[Literal["customer_id", "email"]] = "customer_id"


class HalfTags(_Reads, TagWriter):
    def add_customer_tags(self, customer_id: str, tags: Sequence[str]) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upsert(
        [
            customer("1", platform="bigshop", shop=SHOP),
            customer("2", platform="bigshop", shop=SHOP, email=None),
        ]
    )
    shopsync.loyalty.update_ledger(store, "bigshop", SHOP, as_of=NOW)
    yield store
    store.close()


def offer(customer_id: str) -> WinBack:
    return WinBack(
        platform="bigshop",
        shop=SHOP,
        customer_id=customer_id,
        due_at=NOW,
        reason="no order for 120 days: win-back 2 of 3 (offer)",
        idempotency_key=f"winback:{SHOP}:{customer_id}:o1:stage2",
        stage=2,
        stage_name="offer",
        last_order_id="o1",
        trigger="rhythm",
        discount_percent=15,
    )


def test_a_third_party_adapter_writes_codes_fields_and_tags(store: Store) -> None:
    adapter = Everything()
    change = tier("bigshop", SHOP, "1")
    report = apply([offer("1"), change], store, [Platform(adapter)], now=NOW)
    assert report.delivered == 2, list_outbox(store)
    names = [name for name, _ in adapter.calls]
    assert names.count("create_discount_code") == 1
    (code_call,) = [args for name, args in adapter.calls if name == "create_discount_code"]
    assert code_call[1:3] == ("1", 15)
    (fields,) = [args for name, args in adapter.calls if name == "set_customer_fields"]
    assert fields[:2] == ("1", "loyalty")
    assert fields[2]["tier"] == "gold" and isinstance(fields[2]["points_balance"], int)
    assert ("remove_customer_tags", ("1", ["shopsync-tier-silver"])) in adapter.calls
    assert ("add_customer_tags", ("1", ["shopsync-winback"])) in adapter.calls


def test_a_code_limited_by_email_needs_one_and_by_id_does_not(store: Store) -> None:
    by_email, by_id = Everything(), ById()
    apply([offer("2")], store, [Platform(by_email)], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "cancelled" and "email" in (row.reason or "")
    assert by_email.calls == []
    store2_report = Platform(by_id).render(offer("2"), _context(store, "2"))
    assert [op["op"] for op in store2_report["operations"]] == ["discount_code", "add_tags"]


def test_an_action_needing_a_capability_the_adapter_lacks_is_cancelled(store: Store) -> None:
    adapter = Tags()
    report = apply(
        [offer("1"), nudge("1", platform="bigshop", shop=SHOP)], store, [Platform(adapter)], now=NOW
    )
    rows = {row.kind: row for row in list_outbox(store)}
    assert rows["winback"].status == "cancelled"
    assert "discount codes" in (rows["winback"].reason or "")
    assert report.delivered == 1 and rows["nudge"].status == "done"
    assert adapter.calls == [("add_customer_tags", ("1", ["shopsync-nudge"]))]


def test_loyalty_fields_are_left_out_when_the_adapter_cannot_write_them(store: Store) -> None:
    adapter = Tags()
    report = apply([tier("bigshop", SHOP, "1")], store, [Platform(adapter)], now=NOW)
    assert report.delivered == 1
    assert [name for name, _ in adapter.calls] == ["add_customer_tags", "remove_customer_tags"]


def test_an_adapter_without_write_capabilities_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="declares no write capability"):
        Platform(_Reads())


def test_a_declared_but_missing_write_method_is_refused_with_its_name() -> None:
    with pytest.raises(CapabilityError, match="remove_customer_tags"):
        Platform(HalfTags())  # type: ignore[abstract]


def _context(store: Store, customer_id: str) -> Any:
    from shopsync.sinks import DeliveryContext

    found = {c.id: c for c in store.iter(Customer, "bigshop", SHOP)}
    return DeliveryContext(store=store, now=NOW, customer=found[customer_id])
