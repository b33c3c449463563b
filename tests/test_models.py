from __future__ import annotations

import datetime as dt
import functools
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
        _validator(type(model)).validate(document)
        assert type(model).model_validate_json(model.model_dump_json()) == model
        assert type(model).model_validate(document) == model


@functools.cache
def _validator(model: type[BaseModel]) -> jsonschema.Draft202012Validator:
    """The model's schema, checked once (``jsonschema.validate`` checks the schema again on
    every call, and that was most of these tests' time)."""
    schema = model.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def kg_line(quantity: object, refunded: object = 0) -> LineItem:
    return LineItem(
        id="1",
        title="Coffee beans (kg)",
        quantity=quantity,  # type: ignore[arg-type]
        unit_price=usd("20.00"),
        total=usd("30.00"),
        refunded_quantity=refunded,  # type: ignore[arg-type]
    )


class TestIssue15Fields:
    """What real shops' orders carry (issue 15, item 4)."""

    @pytest.mark.parametrize("given_as", [1.5, "1.5", Decimal("1.50"), "1.5000"])
    def test_a_fractional_quantity_is_kept_exactly(self, given_as: object) -> None:
        line = kg_line(given_as)
        assert line.quantity == Decimal("1.5") and str(line.quantity) == "1.5"

    def test_whole_quantities_stay_whole(self) -> None:
        assert str(kg_line(2).quantity) == "2"
        assert str(kg_line("2.000").quantity) == "2"
        assert str(kg_line(Decimal("1E+1")).quantity) == "10"

    def test_json_numbers_are_read_exactly(self) -> None:
        raw = json.dumps(
            {
                "id": "1",
                "title": "x",
                "quantity": 0.1,
                "unit_price": usd("1").model_dump(mode="json"),
                "total": usd("0.10").model_dump(mode="json"),
                "refunded_quantity": 0.1,
            }
        )
        line = LineItem.model_validate_json(raw)
        assert line.quantity == Decimal("0.1") == line.refunded_quantity

    @pytest.mark.parametrize(
        "bad", [-1, "-0.5", "0.00001", float("nan"), "Infinity", True, 2**31, None, "abc"]
    )
    def test_bad_quantities_are_refused(self, bad: object) -> None:
        with pytest.raises(ValidationError) as info:
            kg_line(bad)
        assert field_of(info.value) == "quantity"

    def test_refunding_more_than_a_fractional_quantity_is_refused(self) -> None:
        assert kg_line("1.5", "1.5").refunded_quantity == Decimal("1.5")
        with pytest.raises(ValidationError):
            kg_line("1.5", "1.5001")

    def test_defaults_are_a_real_complete_non_test_order(self) -> None:
        o = order()
        assert (o.test, o.taxes_included, o.refunds_complete) == (False, None, True)
        assert (o.tax_lines, o.discount_applications, o.fee_lines) == ((), (), ())
        assert (o.cancel_reason, o.total_tip, o.total_duties) == (None, None, None)

    def test_new_amounts_keep_the_order_currency(self) -> None:
        eur = Money.of("1", "EUR")
        for change in (
            {"total_tip": eur},
            {"total_duties": eur},
            {"tax_lines": [{"title": "VAT", "amount": eur}]},
            {"fee_lines": [{"id": "5", "name": "Fee", "total": eur}]},
            {"fee_lines": [{"id": "5", "name": "Fee", "total": usd("1"), "total_tax": eur}]},
        ):
            with pytest.raises(ValidationError, match="carries amounts in"):
                order(**change)

    def test_a_fee_may_be_negative_but_a_tip_may_not(self) -> None:
        fee = {"id": "5", "name": "Loyal customer", "total": usd("-2.00")}
        assert order(fee_lines=[fee]).fee_lines[0].total == usd("-2.00")
        with pytest.raises(ValidationError):
            order(total_tip=usd("-1"))

    def test_discount_applications_and_tax_lines(self) -> None:
        o = order(
            discount_applications=[
                {
                    "type": "discount_code",
                    "code": "SAVE10",
                    "value": "10",
                    "value_type": "percentage",
                }
            ],
            tax_lines=[{"title": "VAT", "rate": "0.2", "amount": usd("1.67")}],
        )
        assert o.discount_applications[0].value == Decimal(10)
        assert o.tax_lines[0].rate == Decimal("0.2")
        for bad in ({"value_type": "bogus"}, {"value": "-1"}, {"value": "NaN"}):
            with pytest.raises(ValidationError):
                order(
                    discount_applications=[
                        {"type": "manual", "value": "1", "value_type": "fixed_amount", **bad}
                    ]
                )


class TestExcludingTax:
    """One conversion to the normalised meaning (docs/models.md), for both adapters."""

    def test_prices_without_tax_are_kept(self) -> None:
        from shopsync._money import excluding_tax

        for included in (False, None):
            got = excluding_tax(usd("12.00"), taxes_included=included, tax=usd("2.00"))
            assert got == usd("12.00")

    def test_a_reported_tax_is_subtracted_exactly(self) -> None:
        from shopsync._money import excluding_tax

        assert excluding_tax(usd("12.00"), taxes_included=True, tax=usd("2.00")) == usd("10.00")

    def test_rates_alone_use_the_platform_formula(self) -> None:
        from shopsync._money import excluding_tax

        # 20 % VAT included in 10.00: tax = 10 * 0.2 / 1.2 = 1.6666... -> 1.67 (half up, cents).
        assert excluding_tax(
            Money.of("10.00", "EUR"), taxes_included=True, rates=[Decimal("0.2")]
        ) == Money.of("8.33", "EUR")
        # Two taxes on one price (e.g. GST + PST) add their rates; JPY has no decimals.
        got = excluding_tax(
            Money.of("1100", "JPY"), taxes_included=True, rates=[Decimal("0.05"), Decimal("0.05")]
        )
        assert got == Money.of("1000", "JPY")

    def test_no_tax_known_means_none_included(self) -> None:
        from shopsync._money import excluding_tax

        assert excluding_tax(usd("10.00"), taxes_included=True) == usd("10.00")

    def test_a_tax_above_the_amount_or_in_another_currency_is_refused(self) -> None:
        from shopsync._money import excluding_tax

        with pytest.raises(ValueError, match="exceeds"):
            excluding_tax(usd("1.00"), taxes_included=True, tax=usd("2.00"))
        with pytest.raises(CurrencyMismatchError):
            excluding_tax(usd("1.00"), taxes_included=True, tax=Money.of("0.1", "EUR"))
        with pytest.raises(ValueError, match="rate"):
            excluding_tax(usd("1.00"), taxes_included=True, rates=[Decimal("-0.1")])

    def test_a_line_keeps_the_platform_tax_and_scales_price_and_discount(self) -> None:
        from shopsync._money import line_excluding_tax

        # Shopify, EU shop: 2 x 12.00 incl. 20 % VAT, 4.00 off; line tax 3.33 on 20.00.
        net = line_excluding_tax(
            unit_price=Money.of("12.00", "EUR"),
            quantity=Decimal(2),
            total_discount=Money.of("4.00", "EUR"),
            total=Money.of("20.00", "EUR"),
            taxes_included=True,
            tax=Money.of("3.33", "EUR"),
        )
        assert net.total == Money.of("16.67", "EUR")
        assert net.unit_price == Money.of("10.0020", "EUR")
        assert net.total_discount == Money.of("3.334", "EUR")
        assert net.total_discount is not None
        assert net.unit_price.amount * 2 - net.total_discount.amount == net.total.amount

    def test_a_free_line_uses_the_rates(self) -> None:
        from shopsync._money import line_excluding_tax

        net = line_excluding_tax(
            unit_price=Money.of("12.00", "EUR"),
            quantity=Decimal("1.5"),
            total_discount=Money.of("18.00", "EUR"),
            total=Money.of("0", "EUR"),
            taxes_included=True,
            tax=Money.of("0", "EUR"),
            rates=[Decimal("0.2")],
        )
        assert net.unit_price == Money.of("10.00", "EUR")
        assert net.total == Money.of("0", "EUR")
        assert net.total_discount == Money.of("15.00", "EUR")

    def test_a_line_without_included_tax_is_unchanged(self) -> None:
        from shopsync._money import line_excluding_tax

        args = dict(
            unit_price=usd("4.50"), quantity=Decimal(2), total_discount=None, total=usd("9.00")
        )
        net = line_excluding_tax(**args, taxes_included=False, tax=usd("0.90"))  # type: ignore[arg-type]
        assert (net.unit_price, net.total_discount, net.total) == (usd("4.50"), None, usd("9.00"))


@pytest.mark.parametrize("children", ["line_items", "refunds", "fulfillments"])
def test_an_order_naming_a_child_twice_is_refused(children: str) -> None:
    # The store keys them by (shop, order, id): a second copy failed the whole page's
    # transaction, and so the sync, instead of costing this order alone (review of issue 20).
    from shopsync.models import Fulfillment, LineItem, Refund

    one: object = {
        "line_items": LineItem(
            id="9", title="Mug", quantity=1, unit_price=usd("5"), total=usd("5")
        ),
        "refunds": Refund(id="9", created_at=T0, amount=usd("1")),
        "fulfillments": Fulfillment(id="9", created_at=T0, status="success"),
    }[children]
    order(**{children: (one,)})  # once is fine
    with pytest.raises(ValidationError, match=f"{children.replace('_', ' ')}.*'9'.*twice"):
        order(**{children: (one, one)})
