"""Hypothesis strategies for the shared models (valid instances only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import strategies as st

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
    Product,
    Refund,
    RefundLine,
    Variant,
)

CURRENCIES = ["USD", "EUR", "JPY", "KWD", "GBP"]
ids = st.integers(min_value=1, max_value=10**15).map(str)
text = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")
opt_text = st.none() | text
tz = st.sampled_from(
    [
        dt.timezone.utc,
        dt.timezone(dt.timedelta(hours=-5)),
        dt.timezone(dt.timedelta(hours=9, minutes=30)),
    ]
)
instants = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=tz
)


def amounts(currency: str, max_units: int = 10**7) -> st.SearchStrategy[Money]:
    places = EXPONENTS[currency]
    return st.integers(min_value=0, max_value=max_units * 10**places).map(
        lambda n: Money(amount=Decimal(n).scaleb(-places), currency=currency)
    )


consents = st.builds(
    MarketingConsent,
    state=st.sampled_from(ConsentState),
    opt_in_level=st.sampled_from(OptInLevel),
    updated_at=st.none() | instants,
)
addresses = st.none() | st.builds(
    Address,
    first_name=opt_text,
    city=opt_text,
    country_code=st.none() | st.sampled_from(["US", "DE", "JP"]),
    address1=opt_text,
)
emails = st.none() | st.from_regex(r"[a-z0-9]{1,10}@[a-z]{1,10}\.[a-z]{2,3}", fullmatch=True)
tags = st.lists(text, max_size=3).map(tuple)


@st.composite
def customers(
    draw: st.DrawFn, platform: str = "shopify", shop: str = "acme.myshopify.com"
) -> Customer:
    created = draw(instants)
    currency = draw(st.sampled_from(CURRENCIES))
    return Customer(
        platform=platform,
        shop=shop,
        id=draw(ids),
        email=draw(emails),
        phone=draw(opt_text),
        first_name=draw(opt_text),
        last_name=draw(opt_text),
        created_at=created,
        updated_at=created
        + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=900))),
        tags=draw(tags),
        consent=Consent(email=draw(consents), sms=draw(consents)),
        birthday=draw(
            st.none() | st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2010, 1, 1))
        ),
        default_address=draw(addresses),
        orders_count=draw(st.none() | st.integers(0, 500)),
        total_spent=draw(st.none() | amounts(currency)),
    )


@st.composite
def line_items(draw: st.DrawFn, currency: str) -> LineItem:
    quantity = draw(st.integers(0, 20))
    return LineItem(
        id=draw(ids),
        product_id=draw(st.none() | ids),
        variant_id=draw(st.none() | ids),
        sku=draw(opt_text),
        title=draw(text),
        product_type=draw(opt_text),
        quantity=quantity,
        unit_price=draw(amounts(currency, 10**4)),
        total_discount=draw(st.none() | amounts(currency, 100)),
        total=draw(amounts(currency, 10**5)),
        refunded_quantity=draw(st.integers(0, quantity)),
    )


@st.composite
def orders(draw: st.DrawFn, platform: str = "shopify", shop: str = "acme.myshopify.com") -> Order:
    currency = draw(st.sampled_from(CURRENCIES))
    created = draw(instants)
    money = amounts(currency)
    total = draw(money)
    refunded = Money(amount=total.amount * draw(st.sampled_from([0, 0, 1])), currency=currency)
    lines = draw(st.lists(line_items(currency), max_size=4, unique_by=lambda li: li.id))
    line_ids = [li.id for li in lines] or ["1"]
    return Order(
        platform=platform,
        shop=shop,
        id=draw(ids),
        name=draw(opt_text),
        customer_id=draw(st.none() | ids),
        email=draw(emails),
        created_at=created,
        updated_at=created
        + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=90))),
        processed_at=draw(st.none() | instants),
        paid_at=draw(st.none() | instants),
        cancelled_at=draw(st.none() | instants),
        closed_at=draw(st.none() | instants),
        financial_status=draw(st.sampled_from(FinancialStatus)),
        fulfillment_status=draw(st.sampled_from(FulfillmentStatus)),
        currency=currency,
        subtotal=draw(money),
        total_discounts=draw(money),
        total_shipping=draw(money),
        total_tax=draw(money),
        total=total,
        total_refunded=refunded,
        line_items=tuple(lines),
        refunds=tuple(
            draw(
                st.lists(
                    st.builds(
                        Refund,
                        id=ids,
                        created_at=instants,
                        amount=amounts(currency, 1000),
                        note=opt_text,
                        lines=st.lists(
                            st.builds(
                                RefundLine,
                                line_item_id=st.sampled_from(line_ids),
                                quantity=st.integers(0, 3),
                                subtotal=st.none() | amounts(currency, 100),
                            ),
                            max_size=2,
                        ).map(tuple),
                    ),
                    max_size=2,
                    unique_by=lambda r: r.id,
                )
            )
        ),
        fulfillments=tuple(
            draw(
                st.lists(
                    st.builds(
                        Fulfillment,
                        id=ids,
                        created_at=instants,
                        status=st.sampled_from(["success", "cancelled", "pending"]),
                        tracking_company=opt_text,
                        tracking_numbers=st.lists(text, max_size=2).map(tuple),
                        tracking_urls=st.lists(text, max_size=1).map(tuple),
                        delivered_at=st.none() | instants,
                        lines=st.lists(
                            st.builds(
                                FulfillmentLine,
                                line_item_id=st.sampled_from(line_ids),
                                quantity=st.integers(0, 3),
                            ),
                            max_size=2,
                        ).map(tuple),
                    ),
                    max_size=2,
                    unique_by=lambda f: f.id,
                )
            )
        ),
        discount_codes=draw(st.lists(text, max_size=2).map(tuple)),
        source=draw(opt_text),
        tags=draw(tags),
        billing_address=draw(addresses),
        shipping_address=draw(addresses),
    )


@st.composite
def products(
    draw: st.DrawFn, platform: str = "shopify", shop: str = "acme.myshopify.com"
) -> Product:
    currency = draw(st.sampled_from(CURRENCIES))
    created = draw(instants)
    return Product(
        platform=platform,
        shop=shop,
        id=draw(ids),
        title=draw(text),
        product_type=draw(opt_text),
        vendor=draw(opt_text),
        tags=draw(tags),
        categories=draw(st.lists(text, max_size=2).map(tuple)),
        status=draw(st.none() | st.sampled_from(["active", "draft"])),
        created_at=created,
        updated_at=created,
        variants=tuple(
            draw(
                st.lists(
                    st.builds(
                        Variant,
                        id=ids,
                        sku=opt_text,
                        title=opt_text,
                        price=st.none() | amounts(currency, 1000),
                    ),
                    max_size=3,
                    unique_by=lambda v: v.id,
                )
            )
        ),
    )
