"""Amounts to the normalised meaning of the shared models: excluding tax (docs/models.md).

Shopify reports prices as the shop shows them, tax-inclusive when ``taxesIncluded`` is true;
WooCommerce's REST line totals already exclude tax. Both adapters call these two functions, so
"a line's total" means the same on either platform and the conversion lives in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from shopsync._currencies import EXPONENTS
from shopsync.errors import CurrencyMismatchError
from shopsync.models import MONEY_DECIMALS, Money

__all__ = ["NetLine", "excluding_tax", "line_excluding_tax", "share"]

_PLACES = Decimal(1).scaleb(-MONEY_DECIMALS)


def _rate_sum(rates: Sequence[Decimal]) -> Decimal:
    total = Decimal(0)
    for rate in rates:
        if not rate.is_finite() or rate < 0:
            raise ValueError(f"a tax rate must be a non-negative fraction, not {rate}")
        total += rate
    return total


def _same_currency(amount: Money, other: Money | None) -> None:
    if other is not None and other.currency != amount.currency:
        raise CurrencyMismatchError(f"cannot combine {amount.currency} and {other.currency}")


def excluding_tax(
    amount: Money,
    *,
    taxes_included: bool | None,
    tax: Money | None = None,
    rates: Sequence[Decimal] = (),
) -> Money:
    """``amount`` without the tax it includes.

    Unless ``taxes_included`` is true the amount is returned as it is (None: the payload did
    not say, and both platforms default to prices without tax). Otherwise the ``tax`` the
    platform reported for this amount is subtracted exactly, keeping the platform's rounding;
    without it, ``rates`` (fractions: 0.2 for 20 %, several taxes add up) give the tax as
    ``amount * r / (1 + r)`` rounded half up to the currency's decimals, which is how a
    tax-inclusive price is split; with neither, the amount carries no tax.
    """
    _same_currency(amount, tax)
    rate = _rate_sum(rates)
    if not taxes_included:
        return amount
    if tax is not None:
        if abs(tax.amount) > abs(amount.amount):
            raise ValueError(f"the tax {tax} exceeds the amount {amount} it is included in")
        return amount - tax
    if rate == 0:
        return amount
    step = Decimal(1).scaleb(-EXPONENTS[amount.currency])
    included = (amount.amount * rate / (1 + rate)).quantize(step, rounding=ROUND_HALF_UP)
    return Money(amount=amount.amount - included, currency=amount.currency)


@dataclass(frozen=True)
class NetLine:
    """A line's amounts excluding tax, ready for :class:`shopsync.models.LineItem`."""

    unit_price: Money
    total_discount: Money | None
    total: Money


def line_excluding_tax(
    *,
    unit_price: Money,
    quantity: Decimal,
    total_discount: Money | None,
    total: Money,
    taxes_included: bool | None,
    tax: Money | None = None,
    rates: Sequence[Decimal] = (),
) -> NetLine:
    """A line's unit price, discount and total without the tax they include.

    The total loses exactly the tax the platform reported for the line (Shopify's line
    ``taxLines`` are computed on the discounted total), so line totals plus tax still add up to
    what the customer paid. Unit price and discount scale by the same ratio (net / gross total),
    to a ten-thousandth; a line whose total is zero (given away) scales by ``1 / (1 + rates)``.
    ``quantity`` is accepted so callers pass the whole line; the ratio does not depend on it.
    """
    del quantity  # the ratio is per line, not per unit
    _same_currency(total, unit_price)
    _same_currency(total, total_discount)
    net_total = excluding_tax(total, taxes_included=taxes_included, tax=tax, rates=rates)
    if not taxes_included:
        return NetLine(unit_price, total_discount, total)
    # A line given away (total 0) has no reported tax to learn the ratio from.
    ratio = net_total.amount / total.amount if total.amount else 1 / (1 + _rate_sum(rates))

    def scaled(money: Money) -> Money:
        amount = (money.amount * ratio).quantize(_PLACES, rounding=ROUND_HALF_UP)
        return Money(amount=amount, currency=money.currency)

    return NetLine(
        unit_price=scaled(unit_price),
        total_discount=None if total_discount is None else scaled(total_discount),
        total=net_total,
    )


def share(amount: Money, part: Decimal | int, whole: Decimal | int) -> Money:
    """``amount x part / whole`` rounded to the currency's decimals, half up: the part of a
    line's discount that its kept (or refunded) units carry when an edit changed how many
    there are. ``part == whole`` gives ``amount`` itself, a zero ``whole`` gives zero."""
    if part == whole:
        return amount
    if not whole:
        return Money.zero(amount.currency)
    step = Decimal(1).scaleb(-EXPONENTS[amount.currency])
    value = (amount.amount * Decimal(part) / Decimal(whole)).quantize(step, ROUND_HALF_UP)
    return Money(amount=value, currency=amount.currency)
