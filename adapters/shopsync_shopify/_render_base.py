"""What Shopify's GraphQL and REST bodies share: timestamp and amount text, money bags,
the corrupt values of invalid-record faults, and how a payment state is named.

Split from :mod:`._render` so that the GraphQL and REST renderers stay readable on their own.
"""

from __future__ import annotations

import datetime as dt
import zlib
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync.models import FinancialStatus, FulfillmentStatus, Money, Order

__all__ = ["fmt_amount", "fmt_time"]

_CORRUPT_DATE = "not-a-date"
_CORRUPT_AMOUNT = "abc"

_REST_FULFILLMENT = {
    FulfillmentStatus.UNFULFILLED: None,
    FulfillmentStatus.PARTIALLY_FULFILLED: "partial",
    FulfillmentStatus.FULFILLED: "fulfilled",
    FulfillmentStatus.RESTOCKED: "restocked",
    FulfillmentStatus.ON_HOLD: None,
}
_CAPTURED = {
    FinancialStatus.PAID,
    FinancialStatus.PARTIALLY_PAID,
    FinancialStatus.PARTIALLY_REFUNDED,
    FinancialStatus.REFUNDED,
}


def fmt_time(value: dt.datetime | None, *, rest: bool = False) -> str | None:
    """Shopify's timestamp text; fractional seconds only when the model has them (the
    emulator's clock ticks in microseconds, real Shopify in whole seconds)."""
    if value is None:
        return None
    value = value.astimezone(dt.timezone.utc)
    spec = "seconds" if value.microsecond == 0 else "microseconds"
    text = value.isoformat(timespec=spec)
    return text if rest else text.replace("+00:00", "Z")


def fmt_amount(money: Money | Decimal | None) -> str | None:
    """A decimal string at the currency's precision (``"199.00"``), more digits if needed."""
    if money is None:
        return None
    amount, currency = (money.amount, money.currency) if isinstance(money, Money) else (money, None)
    if currency is not None:
        step = Decimal(1).scaleb(-EXPONENTS[currency])
        if amount == amount.quantize(step):
            amount = amount.quantize(step)
    return format(amount, "f")


def _bag(money: Money | None, currency: str) -> dict[str, Any]:
    money = money if money is not None else Money.zero(currency)
    inner = {"amount": fmt_amount(money), "currencyCode": money.currency}
    return {"shopMoney": inner, "presentmentMoney": dict(inner)}


def _rest_set(money: Money | None, currency: str) -> dict[str, Any]:
    money = money if money is not None else Money.zero(currency)
    inner = {"amount": fmt_amount(money), "currency_code": money.currency}
    return {"shop_money": inner, "presentment_money": dict(inner)}


def _collection_id(title: str) -> str:
    return str(zlib.crc32(title.encode()) or 1)


def _financial_gql(order: Order) -> str:
    status = order.financial_status
    if status is FinancialStatus.CANCELLED:
        status = FinancialStatus.VOIDED
    return status.value.upper()
