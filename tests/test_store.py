from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from decimal import Decimal
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, inspect, text

from shopsync.adapter import Rejected
from shopsync.errors import ConfigurationError, StoreError
from shopsync.models import Customer, LineItem, Money, Order, Product
from shopsync.store import VERSION_TABLE, Store, metadata
from tests import strategies
from tests.test_models import T0, order, usd

Record = TypeVar("Record", Customer, Order, Product)


def customer(**changes: object) -> Customer:
    fields: dict[str, object] = dict(
        platform="shopify",
        shop="acme.myshopify.com",
        id="7",
        email="a@b.co",
        created_at=T0,
        updated_at=T0,
    )
    fields.update(changes)
    return Customer(**fields)  # type: ignore[arg-type]


def full_order(**changes: object) -> Order:
    base = order(
        customer_id="7",
        line_items=[
            {
                "id": "11",
                "title": "Beans",
                "quantity": 2,
                "unit_price": usd("4.50"),
                "total": usd("9.00"),
                "product_id": "501",
            },
            {
                "id": "12",
                "title": "Filter",
                "quantity": 1,
                "unit_price": usd("1.00"),
                "total": usd("1.00"),
                "refunded_quantity": 1,
            },
        ],
        refunds=[
            {
                "id": "91",
                "created_at": T0,
                "amount": usd("1.00"),
                "lines": [{"line_item_id": "12", "quantity": 1}],
            }
        ],
        fulfillments=[
            {
                "id": "71",
                "created_at": T0,
                "tracking_numbers": ["1Z"],
                "lines": [{"line_item_id": "11", "quantity": 2}],
            }
        ],
        total_refunded=usd("1.00"),
    )
    return base.model_copy(update=changes)


def later(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class TestUpsert:
    def test_the_same_order_twice_is_stored_once(self, store: Store) -> None:
        first = store.upsert([full_order()])
        again = store.upsert([full_order()])
        assert (first.inserted, again.unchanged) == (1, 1)
        assert store.count(Order, "shopify", "acme.myshopify.com") == 1
        assert store.get(Order, "shopify", "acme.myshopify.com", "1001") == full_order()

    def test_a_newer_version_replaces_children_exactly(self, store: Store) -> None:
        store.upsert([full_order()])
        newer = full_order(
            updated_at=later(5),
            line_items=(full_order().line_items[0],),
            refunds=(),
            fulfillments=(),
        )
        result = store.upsert([newer])
        assert result.updated == 1
        stored = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert stored == newer
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM line_items")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM refunds")).scalar() == 0

    def test_an_older_version_is_ignored(self, store: Store) -> None:
        store.upsert([full_order(updated_at=later(10), name="#new")])
        result = store.upsert([full_order(updated_at=later(1), name="#old")])
        assert result.stale == 1
        stored = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert stored is not None and stored.name == "#new"

    def test_same_timestamp_other_content_replaces(self, store: Store) -> None:
        # WooCommerce keeps whole seconds: two quick changes carry one updated_at.
        store.upsert([full_order(name="refunded")])
        result = store.upsert([full_order(name="cancelled")])
        assert (result.updated, result.unchanged) == (1, 0)
        stored = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert stored is not None and stored.name == "cancelled"
        assert store.upsert([full_order(name="cancelled")]).unchanged == 1

    def test_a_delivery_never_replaces_a_version_with_the_same_stamp(self, store: Store) -> None:
        store.upsert([full_order(name="synced")])
        result = store.upsert([full_order(name="from a webhook")], same_stamp=False)
        assert result.stale == 1
        stored = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert stored is not None and stored.name == "synced"

    def test_within_a_batch_the_newest_wins(self, store: Store) -> None:
        result = store.upsert(
            [full_order(updated_at=later(3), name="b"), full_order(updated_at=later(1), name="a")]
        )
        assert result.inserted == 1
        stored = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert stored is not None and stored.name == "b"

    def test_shops_are_kept_apart(self, store: Store) -> None:
        store.upsert(
            [
                full_order(),
                full_order(shop="other.myshopify.com"),
                full_order(platform="woocommerce"),
            ]
        )
        assert sorted(store.shops()) == [
            ("shopify", "acme.myshopify.com"),
            ("shopify", "other.myshopify.com"),
            ("woocommerce", "acme.myshopify.com"),
        ]

    def test_customers_and_products(self, store: Store) -> None:
        product = Product(
            platform="shopify",
            shop="acme.myshopify.com",
            id="501",
            title="Beans",
            created_at=T0,
            updated_at=T0,
            variants=[{"id": "9", "sku": "B-1", "price": usd("4.50")}],
        )
        store.upsert([customer(), product])
        assert store.get(Customer, "shopify", "acme.myshopify.com", "7") == customer()
        assert store.get(Product, "shopify", "acme.myshopify.com", "501") == product
        assert store.get(Customer, "shopify", "acme.myshopify.com", "404") is None

    def test_money_keeps_every_decimal_and_currency(self, store: Store) -> None:
        for cur, amount in [("JPY", "1234"), ("KWD", "1.234"), ("USD", "1.125")]:
            o = order(
                id=cur,
                currency=cur,
                subtotal=Money.of(amount, cur),
                total=Money.of(amount, cur),
                total_discounts=Money.zero(cur),
                total_shipping=Money.zero(cur),
                total_tax=Money.zero(cur),
                total_refunded=Money.zero(cur),
            )
            store.upsert([o])
            stored = store.get(Order, "shopify", "acme.myshopify.com", cur)
            assert stored is not None and stored.total == Money.of(amount, cur)

    def test_a_failure_rolls_back_the_whole_batch(self, store: Store) -> None:
        store.upsert([full_order()])
        fails_on_refunds = full_order(updated_at=later(9), name="changed")

        def explode(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT INTO REFUNDS"):
                raise RuntimeError("disk on fire")

        event.listen(store.engine, "before_cursor_execute", explode)
        try:
            with pytest.raises((StoreError, RuntimeError)):
                store.upsert([fails_on_refunds, full_order(id="2002")])
        finally:
            event.remove(store.engine, "before_cursor_execute", explode)
        assert store.get(Order, "shopify", "acme.myshopify.com", "1001") == full_order()
        assert store.get(Order, "shopify", "acme.myshopify.com", "2002") is None

    def test_iter_reads_everything_in_batches(self, store: Store) -> None:
        store.upsert([full_order(id=str(n)) for n in range(25)])
        got = list(store.iter(Order, "shopify", "acme.myshopify.com", batch=7))
        assert sorted(o.id for o in got) == sorted(str(n) for n in range(25))
        assert all(len(o.line_items) == 2 for o in got)

    def test_delete_removes_children(self, store: Store) -> None:
        store.upsert([full_order()])
        assert store.delete(Order, "shopify", "acme.myshopify.com", "1001")
        assert not store.delete(Order, "shopify", "acme.myshopify.com", "1001")
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM line_items")).scalar() == 0


def fresh_shop(record: Record) -> Record:
    """The record in a shop of its own: hypothesis runs every example against one store."""
    return record.model_copy(update={"shop": f"shop-{uuid.uuid4().hex}"})


class TestRoundTrip:
    @settings(max_examples=40)
    @given(st.lists(strategies.orders(), max_size=3, unique_by=lambda o: o.id))
    def test_orders(self, store: Store, batch: list[Order]) -> None:
        shop = f"shop-{uuid.uuid4().hex}"
        batch = [o.model_copy(update={"shop": shop}) for o in batch]
        store.upsert(batch)
        for o in batch:
            assert store.get(Order, o.platform, o.shop, o.id) == o

    @settings(max_examples=40)
    @given(strategies.customers())
    def test_customers(self, store: Store, c: Customer) -> None:
        c = fresh_shop(c)
        store.upsert([c])
        assert store.get(Customer, c.platform, c.shop, c.id) == c

    @settings(max_examples=20)
    @given(strategies.products())
    def test_products(self, store: Store, p: Product) -> None:
        p = fresh_shop(p)
        store.upsert([p])
        assert store.get(Product, p.platform, p.shop, p.id) == p


class TestConsentHistory:
    def test_records_changes_only(self, store: Store) -> None:
        sub = {"email": {"state": "subscribed"}}
        store.upsert([customer(consent=sub)])
        store.upsert([customer(updated_at=later(1), consent=sub, first_name="Ann")])
        store.upsert([customer(updated_at=later(2), consent={"email": {"state": "unsubscribed"}})])
        history = store.consent_history("shopify", "acme.myshopify.com", "7")
        assert [(ch, state) for ch, _, state in history if ch == "email"] == [
            ("email", "subscribed"),
            ("email", "unsubscribed"),
        ]
        assert [at for ch, at, _ in history if ch == "email"] == [T0, later(2)]


def test_reading_an_unknown_shop_does_not_create_it(store: Store) -> None:
    assert store.get(Order, "shopify", "nobody.myshopify.com", "1") is None
    assert store.count(Customer, "shopify", "nobody.myshopify.com") == 0
    assert list(store.iter(Order, "shopify", "nobody.myshopify.com")) == []
    assert store.get_cursor("shopify", "nobody.myshopify.com", "orders") is None
    assert not store.delete(Order, "shopify", "nobody.myshopify.com", "1")
    assert store.shops() == []


def test_a_same_second_consent_change_replaces_its_history_row(store: Store) -> None:
    store.upsert([customer(consent={"email": {"state": "not_subscribed"}})])
    store.upsert([customer(consent={"email": {"state": "subscribed"}})])
    history = store.consent_history("shopify", "acme.myshopify.com", "7")
    assert [state for channel, _, state in history if channel == "email"] == ["subscribed"]


class TestCursorsAndQuarantine:
    def test_cursor_round_trip(self, store: Store) -> None:
        assert store.get_cursor("shopify", "s", "orders") is None
        store.set_cursor("shopify", "s", "orders", cursor="abc", high_water=T0, state={"page": 3})
        store.set_cursor("shopify", "s", "orders", cursor="def", high_water=later(1))
        got = store.get_cursor("shopify", "s", "orders")
        assert got is not None and (got.cursor, got.high_water, got.state) == ("def", later(1), {})

    def test_cursor_commits_with_the_page(self, store: Store) -> None:
        with pytest.raises(RuntimeError), store.transaction() as tx:
            store.upsert([full_order()], conn=tx)
            store.set_cursor(
                "shopify", "acme.myshopify.com", "orders", cursor="x", high_water=T0, conn=tx
            )
            raise RuntimeError("crash before commit")
        assert store.get_cursor("shopify", "acme.myshopify.com", "orders") is None
        assert store.count(Order, "shopify", "acme.myshopify.com") == 0

    def test_quarantine_keeps_raw_and_reason(self, store: Store) -> None:
        bad = Rejected(
            resource="orders",
            record_id="5",
            raw='{"id": 5, "total": "abc"}',
            reason="total: not a decimal",
        )
        store.quarantine("shopify", "s", [bad, Rejected("orders", None, "{}", "no id")])
        store.quarantine("shopify", "s", [bad])
        items = store.quarantined()
        assert [(q.record_id, q.times_seen, q.reason) for q in items] == [
            ("5", 2, "total: not a decimal"),
            (None, 1, "no id"),
        ]
        assert items[0].raw == bad.raw
        store.resolve_quarantined(items[0].id)
        assert [q.record_id for q in store.quarantined()] == [None]
        assert len(store.quarantined(include_resolved=True)) == 2


def real_shop_order(**changes: object) -> Order:
    """An order with everything issue 15 added: a test order in a tax-inclusive shop selling
    coffee by weight, with tax lines, a code discount, a fee, a tip, duties and partial refunds."""
    fields: dict[str, object] = dict(
        customer_id="7",
        line_items=[
            {
                "id": "11",
                "title": "Beans by weight",
                "quantity": "1.5",
                "unit_price": usd("20.00"),
                "total": usd("30.00"),
                "refunded_quantity": "0.25",
            },
            {
                "id": "12",
                "title": "Filter",
                "quantity": 2,
                "unit_price": usd("1"),
                "total": usd("2"),
            },
        ],
        refunds=[
            {
                "id": "91",
                "created_at": T0,
                "amount": usd("1.00"),
                "lines": [{"line_item_id": "11", "quantity": "0.25", "subtotal": usd("5.00")}],
            }
        ],
        fulfillments=[
            {"id": "71", "created_at": T0, "lines": [{"line_item_id": "11", "quantity": "1.25"}]}
        ],
        test=True,
        taxes_included=True,
        cancel_reason="customer",
        total_tip=usd("3.3333"),
        total_duties=usd("0.01"),
        tax_lines=[
            {"title": "VAT", "rate": "0.2", "amount": usd("5.33")},
            {"title": "Eco", "amount": usd("0.0125")},
        ],
        discount_applications=[
            {
                "type": "discount_code",
                "code": "SAVE10",
                "title": None,
                "value": "10",
                "value_type": "percentage",
                "allocation": "across",
            },
            {"type": "manual", "value": "2.50", "value_type": "fixed_amount"},
        ],
        fee_lines=[
            {"id": "301", "name": "Gift wrap", "total": usd("1.50"), "total_tax": usd("0.30")},
            {"id": "302", "name": "Loyalty discount", "total": usd("-2.00")},
        ],
        refunds_complete=False,
        total=usd("40.00"),
        total_refunded=usd("1.00"),
    )
    fields.update(changes)
    return order(**fields)


class TestIssue15RoundTrip:
    """Every field issue 15 added comes back exactly, in both engines."""

    def test_everything_new_comes_back(self, store: Store) -> None:
        o = real_shop_order()
        store.upsert([o])
        back = store.get(Order, "shopify", "acme.myshopify.com", "1001")
        assert back == o
        assert back is not None
        assert [str(li.quantity) for li in back.line_items] == ["1.5", "2"]
        assert str(back.line_items[0].refunded_quantity) == "0.25"
        assert back.refunds[0].lines[0].quantity == Decimal("0.25")
        assert back.fulfillments[0].lines[0].quantity == Decimal("1.25")

    def test_the_defaults_come_back(self, store: Store) -> None:
        o = real_shop_order(
            id="2",
            test=False,
            taxes_included=False,
            cancel_reason=None,
            total_tip=None,
            total_duties=None,
            tax_lines=(),
            discount_applications=(),
            fee_lines=(),
            refunds_complete=True,
        )
        store.upsert([o, o.model_copy(update={"id": "3", "taxes_included": None})])
        assert store.get(Order, "shopify", "acme.myshopify.com", "2") == o
        third = store.get(Order, "shopify", "acme.myshopify.com", "3")
        assert third is not None and third.taxes_included is None

    def test_quantities_are_integers_of_ten_thousandths(self, store: Store) -> None:
        store.upsert([real_shop_order()])
        with store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT quantity, refunded_quantity FROM line_items ORDER BY position")
            ).all()
            total = conn.execute(text("SELECT sum(quantity) FROM line_items")).scalar()
        assert [tuple(r) for r in rows] == [(15000, 2500), (20000, 0)]
        assert int(total) == 35000

    @settings(max_examples=30)
    @given(st.decimals(min_value=0, max_value=2**31 - 1, places=4, allow_nan=False))
    def test_any_quantity_round_trips(self, store: Store, quantity: Decimal) -> None:
        line = LineItem(id="1", title="t", quantity=quantity, unit_price=usd("1"), total=usd("1"))
        o = order(shop=f"shop-{uuid.uuid4().hex}", line_items=[line])
        store.upsert([o])
        back = store.get(Order, o.platform, o.shop, o.id)
        assert back is not None and back.line_items[0].quantity == quantity
        assert str(back.line_items[0].quantity) == str(line.quantity)


def _extras(currency: str) -> st.SearchStrategy[dict[str, object]]:
    """Issue 15's order fields, drawn for one currency."""
    money = strategies.amounts(currency, 10**6)
    return st.fixed_dictionaries(
        {
            "test": st.booleans(),
            "taxes_included": st.none() | st.booleans(),
            "cancel_reason": st.none() | st.sampled_from(["customer", "fraud", "other"]),
            "total_tip": st.none() | money,
            "total_duties": st.none() | money,
            "refunds_complete": st.booleans(),
            "tax_lines": st.lists(
                st.fixed_dictionaries(
                    {
                        "title": st.text(max_size=8).filter(lambda t: "\x00" not in t),
                        "rate": st.none()
                        | st.decimals(min_value=0, max_value=1, places=4, allow_nan=False),
                        "amount": money,
                    }
                ),
                max_size=2,
            ),
            "discount_applications": st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["discount_code", "automatic", "coupon"]),
                        "code": st.none() | st.text(max_size=8).filter(lambda t: "\x00" not in t),
                        "value": st.decimals(min_value=0, max_value=1000, places=2),
                        "value_type": st.sampled_from(["percentage", "fixed_amount"]),
                    }
                ),
                max_size=2,
            ),
            "fee_lines": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.integers(1, 10**6).map(str),
                        "name": st.just("Fee"),
                        "total": money | money.map(lambda m: -m),
                        "total_tax": st.none() | money,
                    }
                ),
                max_size=2,
                unique_by=lambda f: f["id"],
            ),
        }
    )


@st.composite
def real_orders(draw: st.DrawFn) -> Order:
    o = draw(strategies.orders())
    quantities = [
        draw(st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False))
        for _ in o.line_items
    ]
    lines = [
        li.model_dump() | {"quantity": q, "refunded_quantity": draw(st.sampled_from([0, q]))}
        for li, q in zip(o.line_items, quantities, strict=True)
    ]
    data = o.model_dump() | draw(_extras(o.currency)) | {"line_items": lines}
    data["shop"] = f"shop-{uuid.uuid4().hex}"
    return Order.model_validate(data)


@settings(max_examples=40)
@given(real_orders())
def test_every_issue_15_field_round_trips(store: Store, o: Order) -> None:
    store.upsert([o])
    assert store.get(Order, o.platform, o.shop, o.id) == o


class TestSchema:
    def test_migrations_build_exactly_the_declared_schema(self, store: Store) -> None:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            assert compare_metadata(context, metadata) == []
        assert store.schema_version() == Store.head_version()

    def test_upgrade_from_the_previous_version_keeps_data(self, store_url: str) -> None:
        old = Store(store_url, migrate=False)
        old.migrate("0001")
        assert old.schema_version() == "0001"
        assert "consent_history" not in inspect(old.engine).get_table_names()
        with old.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO shops (shop_id, platform, shop, created_at)"
                    " VALUES (1, 'shopify', 's', 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO customers (shop_id, id, created_at, updated_at, tags,"
                    " email_consent, email_opt_in, sms_consent, sms_opt_in)"
                    " VALUES (1, '7', 0, 5, '[]', 'subscribed', 'unknown', 'unknown', 'unknown')"
                )
            )
        old.close()
        upgraded = Store(store_url)
        assert upgraded.schema_version() == Store.head_version()
        assert [(ch, s) for ch, _, s in upgraded.consent_history("shopify", "s", "7")] == [
            ("email", "subscribed"),
            ("sms", "unknown"),
        ]
        c = upgraded.get(Customer, "shopify", "s", "7")
        assert c is not None and c.consent.email.state.value == "subscribed"
        upgraded.close()

    def test_upgrade_to_0009_keeps_quantities_and_marks_nothing_as_test(
        self, store_url: str
    ) -> None:
        old = Store(store_url, migrate=False)
        old.migrate("0008")
        o = full_order()
        with old.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO shops (shop_id, platform, shop, created_at)"
                    " VALUES (1, 'shopify', 'acme.myshopify.com', 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO orders (shop_id, id, created_at, updated_at, financial_status,"
                    " fulfillment_status, currency, subtotal, total_discounts, total_shipping,"
                    " total_tax, total, total_refunded, discount_codes, tags)"
                    " VALUES (1, '1001', :t, :t, 'paid', 'unfulfilled', 'USD', 100000, 0, 0,"
                    " 0, 100000, 10000, '[]', '[]')"
                ),
                {"t": int(T0.timestamp() * 1_000_000)},
            )
            for pos, (lid, qty, refunded, unit, total) in enumerate(
                [("11", 2, 0, 45000, 90000), ("12", 1, 1, 10000, 10000)]
            ):
                conn.execute(
                    text(
                        "INSERT INTO line_items (shop_id, order_id, id, position, title,"
                        " quantity, unit_price, total, refunded_quantity)"
                        " VALUES (1, '1001', :id, :pos, 't', :q, :u, :tot, :r)"
                    ),
                    {"id": lid, "pos": pos, "q": qty, "u": unit, "tot": total, "r": refunded},
                )
        old.close()
        upgraded = Store(store_url)
        back = upgraded.get(Order, "shopify", "acme.myshopify.com", "1001")
        upgraded.close()
        assert back is not None
        assert [(str(li.quantity), str(li.refunded_quantity)) for li in back.line_items] == [
            ("2", "0"),
            ("1", "1"),
        ]
        assert (back.test, back.refunds_complete, back.taxes_included) == (False, True, None)
        assert (back.tax_lines, back.discount_applications, back.fee_lines) == ((), (), ())
        assert back.total == o.total

    def test_opening_twice_is_harmless(self, store_url: str) -> None:
        Store(store_url).close()
        again = Store(store_url)
        assert again.schema_version() == Store.head_version()
        again.close()

    def test_sqlite_money_is_integer(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        path = tmp_path / "m.db"
        s = Store(f"sqlite:///{path}")
        s.upsert([order(total=usd("19.99"), subtotal=usd("19.99"))])
        s.close()
        ((value, kind),) = (
            sqlite3.connect(path).execute("SELECT total, typeof(total) FROM orders").fetchall()
        )
        assert (value, kind) == (199900, "integer")

    def test_bad_url_is_a_configuration_error_without_password(self) -> None:
        with pytest.raises(ConfigurationError) as info:
            Store("nosuchdb+driver://user:hunter2@host/db")
        assert "hunter2" not in str(info.value)

    def test_repr_hides_the_password(self) -> None:
        engine_url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/db"
        s = Store(engine_url, migrate=False)
        assert "hunter2" not in repr(s)
        s.close()


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    """Opening a current store skips Alembic (:func:`shopsync.store._engine.upgrade`): the
    newest revision it compares with is read from the scripts' text, and must be Alembic's."""
    from alembic.script import ScriptDirectory

    from shopsync.store._engine import MIGRATIONS, scripts_head

    assert scripts_head() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
