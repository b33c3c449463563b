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

Beyond reading, each capability the adapter declares (:mod:`shopsync.adapter`) is checked;
the tests of a capability it does not declare are skipped, saying so:

- every declared member is implemented (what :func:`shopsync.connect` checks);
- ``deletions``: orders deleted in the shop are reported by ``read_deletions`` (and no longer
  read);
- ``webhooks``: the emulator's delivery of a changed order parses into an event of this shop
  with that order; a changed body, the wrong secret or no headers raise ``SignatureError``;
  an ``order.deleted`` delivery becomes a :class:`~shopsync.adapter.Deletion`;
- ``tags``: added tags are read back on the customer, twice is once, removal removes only
  those;
- ``customer_fields``: values are set as an upsert (read back with :meth:`customer_fields`);
- ``discount_codes``: an amount and a percent code, limited to the customer, single use,
  expiring when asked (read back with :meth:`discount`); a second create finds the first.

A platform that declares ``webhooks`` sets :attr:`AdapterContract.webhook_topics`; one that
declares ``customer_fields`` or ``discount_codes`` overrides :meth:`customer_fields` or
:meth:`discount` to read what the emulator holds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

import shopsync
from shopsync.adapter import (
    Adapter,
    Capability,
    Page,
    Rejected,
    WebhookParser,
    capabilities,
    capability,
    check_capabilities,
)
from shopsync.errors import ConfigurationError, SignatureError
from shopsync.models import Customer, Money, Order
from shopsync.testing import EmulatedShop
from shopsync.testing.state import Event, Subscription

__all__ = ["AdapterContract", "WrittenDiscount", "read_all"]

SECRET = "contract-webhook-secret"

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


@dataclass(frozen=True)
class WrittenDiscount:
    """A discount code as the emulated shop holds it (see :meth:`AdapterContract.discount`)."""

    code: str
    customer: str
    """What the code is limited to: the customer's id or email (``discount_limited_by``)."""
    usage_limit: int | None
    expires_at: dt.datetime | None
    amount: Decimal | None = None
    percent: Decimal | None = None
    """None when the emulator does not keep a percentage."""


class AdapterContract:
    """Adapter contract tests; subclass and provide the ``emulated`` fixture."""

    resources: ClassVar[tuple[str, ...]] = RESOURCES
    webhook_topics: ClassVar[Mapping[str, str]] = {}
    """Neutral event topic (:data:`shopsync.testing.TOPICS`) -> the platform topic to
    subscribe to: ``order.updated`` is required with ``webhooks``, ``order.deleted`` checked
    when given."""

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

    def customer_fields(
        self, shop: EmulatedShop, customer_id: str, namespace: str
    ) -> Mapping[str, str]:
        """The fields under ``namespace`` the emulator holds for a customer, as text."""
        raise NotImplementedError(
            "declaring customer_fields: override customer_fields() to read the emulator"
        )

    def discount(self, shop: EmulatedShop, code: str) -> WrittenDiscount | None:
        """The discount code the emulator holds under ``code`` (any case), or None."""
        raise NotImplementedError("declaring discount_codes: override discount() to read it")

    def _needs(self, adapter: Adapter, name: Capability) -> None:
        if name not in capabilities(adapter):
            pytest.skip(f"{type(adapter).__name__} does not declare {name!r}")

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
                raw = json.loads(bad.raw)  # the record as received, e.g. a GraphQL node
                assert bad.record_id and bad.record_id in json.dumps(raw.get("id"))
            want = self.state_records(emulated, resource)
            assert set(records) == set(want) - chosen[resource]
            assert all(records[k] == want[k] for k in records)

    def test_reading_twice_gives_the_same_records(self, adapter: Adapter) -> None:
        for resource in self.resources:
            first, _, _ = read_all(adapter, resource)
            second, _, _ = read_all(adapter, resource)
            assert first == second

    # ---------------------------------------------------------------- capabilities

    def test_declared_capabilities_are_implemented(self, adapter: Adapter) -> None:
        check_capabilities(adapter)
        assert "read" in capabilities(adapter)

    def test_deleted_orders_are_reported(self, emulated: EmulatedShop, adapter: Adapter) -> None:
        self._needs(adapter, "deletions")
        reader = capability(adapter, "deletions")
        assert reader is not None
        state = emulated.state
        before = state.clock() - dt.timedelta(seconds=1)
        ids = sorted(state.orders, key=lambda i: (len(i), i))
        gone = {ids[0], ids[len(ids) // 2]}
        for order_id in gone:
            state.delete_order(order_id)
        for since in (before, None):
            found = list(reader.read_deletions(since))
            assert {("orders", i) for i in gone} <= {(d.resource, d.record_id) for d in found}
            assert all(d.deleted_at.tzinfo is not None for d in found)
        records, _, _ = read_all(adapter, "orders")
        assert not gone & set(records)

    def _delivery(
        self, emulated: EmulatedShop, neutral: str, change: Any
    ) -> tuple[dict[str, str], bytes]:
        """The signed delivery the emulator renders for the event ``change()`` causes."""
        events: list[Event] = []
        stop = emulated.state.subscribe(events.append)
        try:
            change()
        finally:
            stop()
        topic = self.webhook_topics.get(neutral)
        assert topic, f"set webhook_topics[{neutral!r}] to the platform's topic"
        subscription = Subscription("contract-1", topic, "http://127.0.0.1:9/hook", SECRET)
        assert emulated.emulator is not None
        for event in events:
            if event.topic == neutral:
                delivery = emulated.emulator.webhook(event, subscription)
                if delivery is not None:
                    return {k.lower(): v for k, v in delivery.headers.items()}, delivery.body
        raise AssertionError(f"the emulator rendered no {topic!r} delivery for {neutral!r}")

    def _order_update(
        self, emulated: EmulatedShop, adapter: Adapter, tag: str
    ) -> tuple[WebhookParser, str, dict[str, str], bytes]:
        """The adapter's parser, and the delivery of tagging the shop's first order ``tag``."""
        self._needs(adapter, "webhooks")
        parser = capability(adapter, "webhooks")
        assert parser is not None
        order_id = sorted(emulated.state.orders)[0]
        headers, body = self._delivery(
            emulated,
            "order.updated",
            lambda: emulated.state.update_order(order_id, tags=(tag,)),
        )
        return parser, order_id, headers, body

    def test_a_webhook_delivery_parses_into_the_changed_order(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        parser, order_id, headers, body = self._order_update(emulated, adapter, "contract-hook")
        event = parser.parse_webhook(headers, body, SECRET)
        assert event.shop == adapter.shop and event.topic
        assert event.delivery_id, "a delivery id is the de-dup key of retried deliveries"
        orders = [r for r in event.records if isinstance(r, Order)]
        assert [o.id for o in orders] == [order_id]
        assert orders[0].platform == adapter.platform and orders[0].shop == adapter.shop
        assert "contract-hook" in orders[0].tags
        assert parser.parse_webhook(headers, body, SECRET).delivery_id == event.delivery_id

    def test_a_webhook_with_a_bad_signature_is_refused(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        parser, order_id, headers, body = self._order_update(emulated, adapter, "contract-sig")
        changed = body.replace(order_id.encode(), (order_id + "9").encode(), 1)
        assert changed != body
        for bad_headers, bad_body, secret in (
            (headers, changed, SECRET),
            (headers, body, SECRET + "x"),
            ({}, body, SECRET),
        ):
            with pytest.raises(SignatureError):
                parser.parse_webhook(bad_headers, bad_body, secret)

    def test_an_order_deleted_webhook_is_a_deletion(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        self._needs(adapter, "webhooks")
        if "order.deleted" not in self.webhook_topics:
            pytest.skip("webhook_topics names no order.deleted topic")
        parser = capability(adapter, "webhooks")
        assert parser is not None
        order_id = sorted(emulated.state.orders)[-1]
        headers, body = self._delivery(
            emulated, "order.deleted", lambda: emulated.state.delete_order(order_id)
        )
        event = parser.parse_webhook(headers, body, SECRET)
        assert [(d.resource, d.record_id) for d in event.deleted] == [("orders", order_id)]
        assert not event.records

    # ---------------------------------------------------------------- write-back

    def _customer(self, shop: EmulatedShop) -> Customer:
        with shop.state.lock:
            found = [c for c in shop.state.customers.values() if c.email]
        return min(found, key=lambda c: (len(c.id), c.id))

    def _tags(self, adapter: Adapter, customer_id: str) -> set[str]:
        records, _, _ = read_all(adapter, "customers")
        return set(records[customer_id].tags)

    def test_tags_are_added_once_and_removed_alone(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        self._needs(adapter, "tags")
        writer = capability(adapter, "tags")
        assert writer is not None
        customer = self._customer(emulated)
        before = self._tags(adapter, customer.id)
        writer.add_customer_tags(customer.id, ["contract-a", "contract-b"])
        writer.add_customer_tags(customer.id, ["contract-a"])
        assert self._tags(adapter, customer.id) == before | {"contract-a", "contract-b"}
        writer.remove_customer_tags(customer.id, ["contract-a", "contract-absent"])
        assert self._tags(adapter, customer.id) == before | {"contract-b"}

    def test_customer_fields_are_upserted(self, emulated: EmulatedShop, adapter: Adapter) -> None:
        self._needs(adapter, "customer_fields")
        writer = capability(adapter, "customer_fields")
        assert writer is not None
        customer = self._customer(emulated)
        writer.set_customer_fields(customer.id, "contract", {"points_balance": 120, "tier": "gold"})
        writer.set_customer_fields(customer.id, "contract", {"points_balance": 120})
        got = self.customer_fields(emulated, customer.id, "contract")
        assert dict(got) == {"points_balance": "120", "tier": "gold"}
        writer.set_customer_fields(customer.id, "contract", {"points_balance": 80})
        got = self.customer_fields(emulated, customer.id, "contract")
        assert dict(got) == {"points_balance": "80", "tier": "gold"}

    def test_discount_codes_are_single_use_for_one_customer_and_made_once(
        self, emulated: EmulatedShop, adapter: Adapter
    ) -> None:
        self._needs(adapter, "discount_codes")
        writer = capability(adapter, "discount_codes")
        assert writer is not None
        customer = self._customer(emulated)
        limited_to = customer.id if writer.discount_limited_by == "customer_id" else customer.email
        now = emulated.state.clock().replace(microsecond=0)
        expires = now + dt.timedelta(days=30)
        five = Money.of("5.00", emulated.state.currency)
        made = writer.create_discount_code(
            "Contract-Five", customer=customer, amount=five, starts_at=now, expires_at=expires
        )
        assert made["created"] is True and str(made["code"]).lower() == "contract-five"
        again = writer.create_discount_code(
            "Contract-Five", customer=customer, amount=five, starts_at=now, expires_at=expires
        )
        assert again["created"] is False and again["id"] == made["id"]
        found = self.discount(emulated, "contract-five")
        assert found is not None
        assert (found.customer, found.usage_limit, found.expires_at) == (limited_to, 1, expires)
        assert found.amount == Decimal("5") and not found.percent
        writer.create_discount_code(
            "contract-pct", customer=customer, percent=15, starts_at=now, expires_at=expires
        )
        pct = self.discount(emulated, "contract-pct")
        assert pct is not None and pct.amount is None and pct.percent in (None, Decimal(15))
        with pytest.raises(ConfigurationError):
            writer.create_discount_code(
                "contract-none", customer=customer, starts_at=now, expires_at=expires
            )
        assert self.discount(emulated, "contract-none") is None
