"""The checkouts table (issue 22): writes keep the newest version and a completion, a redacted
customer's checkouts go and never come back, the access export lists them, the core's frame is
cut at ``as_of``, and the delivery-time stop sees a purchase made after planning."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from shopsync.checkouts import Checkout, CheckoutLine
from shopsync.ingest_columns import OrderRows
from shopsync.models import Customer, FinancialStatus, Money, Order
from shopsync.store import Store
from shopsync.store import _rows as store_rows
from shopsync.store.checkout_recovery import recovered, recovery_url
from shopsync.store.checkout_rows import (
    checkout_frame,
    delete_checkout,
    read_checkouts,
    upsert_checkouts,
)
from shopsync.store.fast_rows import upsert_order_rows

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 5, 1, 9, tzinfo=UTC)
H = dt.timedelta(hours=1)
URL = "https://acme.example/checkouts/ac/k1/recover?key=s3cr3t"


def checkout(**fields: Any) -> Checkout:
    values: dict[str, Any] = {
        "platform": "shopify",
        "shop": "acme",
        "id": "k1",
        "customer_id": "c1",
        "email": "Ann@Example.com",
        "created_at": T0,
        "updated_at": T0,
        "recovery_url": URL,
        "currency": "EUR",
        "subtotal": Money.of("30.5", "EUR"),
        "total": Money.of("35.5", "EUR"),
        "line_items": [
            CheckoutLine(
                product_id="p1",
                title="Beans",
                quantity=Decimal("1.5"),
                unit_price=Money.of("10.25", "EUR"),
            ),
            CheckoutLine(title="Gone", quantity=Decimal(1), unit_price=Money.of("15", "EUR")),
        ],
    }
    values.update(fields)
    return Checkout(**values)


def customer(cid: str = "c1") -> Customer:
    return Customer(
        platform="shopify",
        shop="acme",
        id=cid,
        email="ann@example.com",
        created_at=T0 - 400 * 24 * H,
        updated_at=T0 - 400 * 24 * H,
    )


def order(oid: str, at: dt.datetime, paid: bool = True) -> Order:
    money = Money.of("35.5", "EUR")
    zero = Money.of("0", "EUR")
    return Order(
        platform="shopify",
        shop="acme",
        id=oid,
        customer_id="c1",
        created_at=at,
        updated_at=at,
        paid_at=at if paid else None,
        financial_status=FinancialStatus.PAID if paid else FinancialStatus.PENDING,
        currency="EUR",
        subtotal=money,
        total_discounts=zero,
        total_shipping=zero,
        total_tax=zero,
        total=money,
        total_refunded=zero,
    )


def test_a_checkout_round_trips_exactly(store: Store) -> None:
    original = checkout()
    count = upsert_checkouts(store, [original])
    assert (count.inserted, count.updated, count.stale) == (1, 0, 0)
    assert read_checkouts(store, "shopify", "acme") == [original]


def test_an_older_version_changes_nothing_and_a_completion_is_never_undone(store: Store) -> None:
    upsert_checkouts(store, [checkout(updated_at=T0 + 2 * H, completed_at=T0 + 2 * H)])
    assert upsert_checkouts(store, [checkout(updated_at=T0 + H)]).stale == 1
    upsert_checkouts(store, [checkout(updated_at=T0 + 3 * H, total=Money.of("40", "EUR"))])
    (held,) = read_checkouts(store, "shopify", "acme")
    assert held.completed_at == T0 + 2 * H and held.total == Money.of("40", "EUR")


def test_the_frame_is_cut_at_as_of(store: Store) -> None:
    upsert_checkouts(
        store, [checkout(completed_at=T0 + 5 * H), checkout(id="k2", created_at=T0 + 9 * H)]
    )
    shop_id = store.shop_id("shopify", "acme")
    at = int((T0 + 2 * H - dt.datetime(1970, 1, 1, tzinfo=UTC)) / dt.timedelta(microseconds=1))
    frame = checkout_frame(store, shop_id, at)
    assert frame["id"].to_list() == ["k1"] and frame["completed_at"].to_list() == [None]
    assert frame["total"].to_list() == [355_000] and frame["product_ids"].to_list() == [["p1"]]
    later = checkout_frame(store, shop_id, at + 10 * 3_600_000_000)
    assert later["id"].to_list() == ["k1", "k2"] and later["completed_at"][0] is not None


def test_redaction_erases_checkouts_and_keeps_them_out(store: Store) -> None:
    store.upsert([customer()])
    upsert_checkouts(store, [checkout(), checkout(id="guest", customer_id=None)])
    upsert_checkouts(store, [checkout(id="other", customer_id="c2", email="bob@example.com")])
    store.redact_customer("shopify", "acme", "c1")
    assert [c.id for c in read_checkouts(store, "shopify", "acme")] == ["other"]
    late = upsert_checkouts(store, [checkout(updated_at=T0 + H)])
    assert late.stale == 1 and [c.id for c in read_checkouts(store, "shopify", "acme")] == ["other"]


def test_a_guest_checkout_of_an_erased_email_stays_out(store: Store) -> None:
    """A guest checkout (no customer id) is erased by its e-mail, and a late version of it
    (a webhook retried, a sync page read before the erasure) does not bring it back: the
    store keeps a digest of the e-mail, never the address."""
    store.upsert([customer()])
    upsert_checkouts(store, [checkout(id="guest", customer_id=None)])
    store.redact_customer("shopify", "acme", "c1")
    assert read_checkouts(store, "shopify", "acme") == []
    late = upsert_checkouts(
        store, [checkout(id="guest", customer_id=None, email=" ann@example.COM", updated_at=T0 + H)]
    )
    assert late.stale == 1 and read_checkouts(store, "shopify", "acme") == []
    other = upsert_checkouts(store, [checkout(id="g2", customer_id=None, email="bob@example.com")])
    assert other.stale == 0 and [c.id for c in read_checkouts(store, "shopify", "acme")] == ["g2"]
    kept = store.tombstones("shopify", "acme")
    assert all("ann@" not in repr(t).lower() for t in kept)


def test_the_access_export_lists_the_checkouts_by_id_and_email(store: Store) -> None:
    store.upsert([customer()])
    upsert_checkouts(store, [checkout(), checkout(id="guest", customer_id=None)])
    upsert_checkouts(store, [checkout(id="other", customer_id="c2", email="bob@example.com")])
    exported = store.export_customer("shopify", "acme", "c1")
    assert sorted(c["id"] for c in exported["checkouts"]) == ["guest", "k1"]
    total = exported["checkouts"][0]["total"]
    assert Decimal(total["amount"]) == Decimal("35.5") and total["currency"] == "EUR"


def test_the_recovery_link_is_looked_up_at_delivery_and_kept_out_of_reprs(store: Store) -> None:
    upsert_checkouts(store, [checkout()])
    assert recovery_url(store, "shopify", "acme", "k1") == URL
    assert recovery_url(store, "shopify", "acme", "nope") is None
    assert "s3cr3t" not in repr(checkout()) and "s3cr3t" not in str(checkout())


def test_recovered_sees_a_purchase_a_completion_or_a_newer_checkout(store: Store) -> None:
    store.upsert([customer()])
    upsert_checkouts(store, [checkout()])
    assert recovered(store, "shopify", "acme", "c1", "k1") is None
    store.upsert([order("before", T0 - H)])
    assert recovered(store, "shopify", "acme", "c1", "k1") is None
    store.upsert([order("k1", T0, paid=False)])  # WooCommerce: its own unpaid order
    assert recovered(store, "shopify", "acme", "c1", "k1") is None
    store.upsert([order("o2", T0 + 3 * H, paid=False)])
    assert "order o2" in (recovered(store, "shopify", "acme", "c1", "k1") or "")


@pytest.mark.parametrize("case", ["completed", "paid_own_order", "newer_checkout"])
def test_recovered_other_endings(store: Store, case: str) -> None:
    store.upsert([customer()])
    upsert_checkouts(store, [checkout()])
    if case == "completed":
        upsert_checkouts(store, [checkout(updated_at=T0 + H, completed_at=T0 + H)])
    elif case == "paid_own_order":
        store.upsert([order("k1", T0, paid=True)])
    else:
        upsert_checkouts(store, [checkout(id="k2", created_at=T0 + H, updated_at=T0 + H)])
    assert recovered(store, "shopify", "acme", "c1", "k1") is not None


def test_a_deleted_checkout_is_gone_and_an_older_version_does_not_revive_it(store: Store) -> None:
    """Shopify's ``checkouts/delete``: the row goes (so delivery stops), a version updated
    before the deletion (a late ``checkouts/update``, a sync page read before it) stays out,
    and the deletion is idempotent."""
    upsert_checkouts(store, [checkout(updated_at=T0 + H)])
    with store.transaction() as tx:
        assert delete_checkout(store, tx, "shopify", "acme", "k1", T0 + 2 * H) is True
    assert read_checkouts(store, "shopify", "acme") == []
    assert (
        recovered(store, "shopify", "acme", "c1", "k1") == "checkout k1 is no longer in the store"
    )
    late = upsert_checkouts(store, [checkout(updated_at=T0 + 2 * H), checkout(id="k2")])
    assert (late.inserted, late.stale) == (1, 1)
    assert [c.id for c in read_checkouts(store, "shopify", "acme")] == ["k2"]
    with store.transaction() as tx:  # a retried deletion, and one of a checkout never held
        assert delete_checkout(store, tx, "shopify", "acme", "k1", T0 + 2 * H) is False
        assert delete_checkout(store, tx, "shopify", "acme", "k9", T0 + 2 * H) is False
    assert [t.record_id for t in store.tombstones("shopify", "acme", "checkouts")] == ["k1", "k9"]


def test_the_checkouts_own_order_paid_completes_it(store: Store) -> None:
    """WooCommerce: a checkout is a pending or draft order under the order's id, created at
    the same instant; once that order is paid (``processing``/``completed``), its row is
    completed by the order's write, from a sync or a webhook alike. An order of the same id
    created at another instant (Shopify's checkout and order ids are separate counters), an
    unpaid or on-hold one, completes nothing; a completion is never moved."""
    store.upsert([customer()])
    upsert_checkouts(store, [checkout(id="101"), checkout(id="102"), checkout(id="103")])
    store.upsert([order("101", T0, paid=False)])  # still pending
    store.upsert([order("102", T0 + H)])  # same id, another instant: not this checkout
    held = order("103", T0, paid=False)
    store.upsert([held.model_copy(update={"financial_status": FinancialStatus.AUTHORIZED})])
    assert [c.completed_at for c in read_checkouts(store, "shopify", "acme")] == [None] * 3
    paid = order("101", T0).model_copy(update={"paid_at": T0 + 2 * H, "updated_at": T0 + 2 * H})
    store.upsert([paid])
    done = {c.id: c.completed_at for c in read_checkouts(store, "shopify", "acme")}
    assert done == {"101": T0 + 2 * H, "102": None, "103": None}
    store.upsert([paid.model_copy(update={"paid_at": T0 + 5 * H, "updated_at": T0 + 5 * H})])
    assert read_checkouts(store, "shopify", "acme", ["101"])[0].completed_at == T0 + 2 * H


def test_a_pending_version_arriving_after_the_paid_order_is_stored_completed(store: Store) -> None:
    """Webhooks come in any order: the paid order first, then the ``order.created`` of its
    pending version (which also carries the checkout). The order row stays paid, and the
    checkout it brings is stored completed, not open."""
    store.upsert([customer()])
    paid = order("101", T0).model_copy(update={"paid_at": T0 + 2 * H, "updated_at": T0 + 2 * H})
    store.upsert([paid])
    upsert_checkouts(store, [checkout(id="101"), checkout(id="104")])
    done = {c.id: c.completed_at for c in read_checkouts(store, "shopify", "acme")}
    assert done == {"101": T0 + 2 * H, "104": None}


def _by_rows(store: Store, o: Order) -> None:
    """Write ``o`` as the columnar ingest path does: rows, no model."""
    tables = store_rows.order_rows(0, o)
    tables["orders"][0]["content_hash"] = f"test{o.id}"  # a version of its own
    rows = OrderRows(o.id, o.customer_id, store_rows.to_micros(o.updated_at), tables, {})
    with store.transaction() as tx:
        _, returned = upsert_order_rows(store, tx, o.platform, o.shop, [rows])
    assert not returned


@pytest.mark.parametrize("write", ["model", "rows"])
def test_a_paid_order_completes_its_checkout_on_either_write_path(store: Store, write: str) -> None:
    """The columnar ingest path (sync pages of both platforms) completes checkouts as
    :meth:`Store.upsert` does (CI found the WooCommerce fast path writing paid orders that
    left their checkouts open)."""
    store.upsert([customer()])
    upsert_checkouts(store, [checkout(id="101"), checkout(id="102")])
    paid = order("101", T0).model_copy(update={"paid_at": T0 + 2 * H, "updated_at": T0 + 2 * H})
    other = order("102", T0 + H)  # same id, another instant: not this checkout
    for o in (paid, other):
        store.upsert([o]) if write == "model" else _by_rows(store, o)
    done = {c.id: c.completed_at for c in read_checkouts(store, "shopify", "acme")}
    assert done == {"101": T0 + 2 * H, "102": None}
