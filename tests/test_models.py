from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import jsonschema
import pytest
from hypothesis import given
from pydantic import BaseModel, ValidationError

from shopsync.errors import CurrencyMismatchError, ShopSyncError
from shopsync.models import (
    MODELS,
    Customer,
    LineItem,
    MarketingConsent,
    Money,
    Order,
    json_schema,
)
from tests import strategies

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def order(**changes: object) -> Order:
    fields: dict[str, object] = dict(
        platform="shopify",
        shop="acme.myshopify.com",
        id="1001",
        created_at=T0,
        updated_at=T0,
        financial_status="paid",
        currency="USD",
        subtotal=usd("10.00"),
        total_discounts=usd("0"),
        total_shipping=usd("0"),
        total_tax=usd("0"),
        total=usd("10.00"),
        total_refunded=usd("0"),
    )
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


def field_of(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.errors()[0]["loc"])


class TestMoney:
    def test_accepts_str_int_and_decimal(self) -> None:
        assert usd("19.99").amount == Decimal("19.99")
        assert Money.of(5, "JPY").amount == Decimal(5)
        assert Money.of(Decimal("1.250"), "kwd").currency == "KWD"

    @pytest.mark.parametrize("bad", [1.5, True, "abc", "NaN", "Infinity", None, [1]])
    def test_refuses_floats_and_nonsense(self, bad: object) -> None:
        with pytest.raises(ValidationError) as info:
            Money(amount=bad, currency="USD")  # type: ignore[arg-type]
        assert field_of(info.value) == "amount"

    @pytest.mark.parametrize("code", ["XXY", "usdollar", "", "US"])
    def test_refuses_unknown_currencies(self, code: str) -> None:
        with pytest.raises(ValidationError) as info:
            Money.of("1", code)
        assert field_of(info.value) == "currency"

    def test_refuses_more_than_four_places(self) -> None:
        with pytest.raises(ValidationError):
            usd("0.00001")
        assert usd("1.1250").amount == Decimal("1.125")

    def test_arithmetic_keeps_the_currency(self) -> None:
        assert usd("1.10") + usd("2.20") == usd("3.30")
        assert usd("5") - usd("7.5") == usd("-2.5")
        assert -usd("1") == usd("-1")
        assert usd("1") < usd("2")

    def test_two_currencies_never_mix(self) -> None:
        with pytest.raises(CurrencyMismatchError) as info:
            _ = usd("1") + Money.of("1", "EUR")
        assert isinstance(info.value, ShopSyncError) and isinstance(info.value, ValueError)
        with pytest.raises(CurrencyMismatchError):
            _ = usd("1") < Money.of("1", "EUR")
        assert usd("1") != Money.of("1", "EUR")

    def test_rounded_uses_the_currency_exponent(self) -> None:
        assert usd("1.125").rounded() == usd("1.13")
        assert Money.of("1.5", "JPY").rounded() == Money.of(2, "JPY")
        assert str(Money.of("2", "KWD")) == "2.000 KWD"


class TestRecords:
    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            order(created_at=dt.datetime(2024, 1, 1))
        assert field_of(info.value) == "created_at"
        assert "timezone-aware" in str(info.value)

    def test_datetimes_become_utc(self) -> None:
        plus2 = dt.timezone(dt.timedelta(hours=2))
        o = order(
            created_at=dt.datetime(2024, 1, 1, 14, tzinfo=plus2), updated_at="2024-01-01T12:00:00Z"
        )
        assert o.created_at == dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
        assert o.created_at.tzinfo is UTC and o.updated_at.tzinfo is UTC

    @pytest.mark.parametrize("bad_id", ["", "   ", True])
    def test_empty_ids_are_refused(self, bad_id: object) -> None:
        with pytest.raises(ValidationError) as info:
            order(id=bad_id)
        assert field_of(info.value) == "id"

    def test_integer_ids_become_strings(self) -> None:
        assert order(id=450789469).id == "450789469"

    def test_negative_quantity_is_refused_by_field(self) -> None:
        with pytest.raises(ValidationError) as info:
            LineItem(id="1", title="Mug", quantity=-1, unit_price=usd("5"), total=usd("5"))
        assert field_of(info.value) == "quantity"

    def test_negative_totals_are_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            order(total=usd("-1"))
        assert "total" in field_of(info.value)

    def test_float_money_in_an_order_is_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            order(total={"amount": 10.0, "currency": "USD"})
        assert field_of(info.value) == "total.amount"

    def test_an_order_has_one_currency(self) -> None:
        with pytest.raises(ValidationError, match="carries amounts in"):
            order(total_tax=Money.of("1", "EUR"))

    def test_refunded_more_than_total_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="exceeds"):
            order(total_refunded=usd("11"))

    def test_unknown_fields_are_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            order(colour="red")
        assert field_of(info.value) == "colour"

    def test_models_are_frozen(self) -> None:
        with pytest.raises(ValidationError):
            order().total = usd("1")  # type: ignore[misc]

    def test_guest_orders(self) -> None:
        assert order().is_guest and not order(customer_id="7").is_guest

    def test_email_is_normalised(self) -> None:
        c = Customer(
            platform="shopify",
            shop="s",
            id="1",
            email="  Bob@Example.COM ",
            created_at=T0,
            updated_at=T0,
        )
        assert c.email == "bob@example.com"
        assert (
            Customer(
                platform="shopify", shop="s", id="1", email="", created_at=T0, updated_at=T0
            ).email
            is None
        )
        with pytest.raises(ValidationError) as info:
            Customer(
                platform="shopify",
                shop="s",
                id="1",
                email="not an email",
                created_at=T0,
                updated_at=T0,
            )
        assert field_of(info.value) == "email"

    def test_only_a_subscription_allows_marketing(self) -> None:
        assert MarketingConsent(state="subscribed").allows_marketing
        for state in ("pending", "not_subscribed", "unsubscribed", "redacted", "unknown"):
            assert not MarketingConsent(state=state).allows_marketing  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            MarketingConsent(state="maybe")  # type: ignore[arg-type]

    def test_nul_characters_are_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            order(tags=("ok", "bad\x00tag"))
        assert field_of(info.value) == "tags.1"
        with pytest.raises(ValidationError, match="unicode string"):
            order(source="\ud800")


class TestJsonSchema:
    def test_every_model_has_a_schema(self) -> None:
        schemas = json_schema()
        assert set(schemas) == {m.__name__ for m in MODELS}
        for schema in schemas.values():
            jsonschema.Draft202012Validator.check_schema(schema)

    @given(strategies.orders())
    def test_orders_round_trip_through_json_and_match_the_schema(self, o: Order) -> None:
        self._round_trip(o)

    @given(strategies.customers())
    def test_customers_round_trip(self, c: Customer) -> None:
        self._round_trip(c)

    @given(strategies.products())
    def test_products_round_trip(self, p: BaseModel) -> None:
        self._round_trip(p)

    @staticmethod
    def _round_trip(model: BaseModel) -> None:
        document = json.loads(model.model_dump_json())
        jsonschema.validate(document, type(model).model_json_schema())
        assert type(model).model_validate_json(model.model_dump_json()) == model
        assert type(model).model_validate(document) == model
