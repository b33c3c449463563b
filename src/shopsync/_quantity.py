"""Exact quantities: stores that sell by weight or length sell 1.5 of a line.

Kept apart from :mod:`shopsync.models` (which re-exports them) to keep that module short.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["MAX_QUANTITY", "QUANTITY_DECIMALS", "Quantity", "quantity_from_units"]

MAX_QUANTITY = 2**31 - 1
"""Largest quantity, as the store's counts (models.MAX_COUNT)."""

QUANTITY_DECIMALS = 4
"""Most decimal places a quantity may carry (the store keeps ten-thousandths, as for money):
enough for a shop selling by the gram in kilograms (0.125 kg) or by the centimetre."""


def _quantity(value: Any) -> Decimal:
    # A JSON number arrives as a float (WooCommerce sends 1.5 for a line sold by weight): its
    # shortest repr is the decimal the platform wrote, so it is read through that, exactly.
    if isinstance(value, bool):
        raise ValueError("a quantity must be a number, not a boolean")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a quantity must be finite")
        value = Decimal(repr(value))
    elif isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal quantity") from None
    if not isinstance(value, Decimal):
        raise ValueError(f"a quantity must be a number or decimal string, not {value!r}")
    if not value.is_finite():
        raise ValueError("a quantity must be finite")
    if value < 0:
        raise ValueError("a quantity must not be negative")
    if value > MAX_QUANTITY:
        raise ValueError(f"a quantity must be at most {MAX_QUANTITY:,}")
    if value != value.quantize(Decimal(1).scaleb(-QUANTITY_DECIMALS)):
        raise ValueError(f"a quantity may have at most {QUANTITY_DECIMALS} decimal places")
    # One spelling per value, so equal quantities dump, hash and store alike: 2 not 2.0.
    integral = value.to_integral_value()
    return integral.quantize(Decimal(1)) if value == integral else value.normalize()


Quantity = Annotated[Decimal, BeforeValidator(_quantity)]
"""An exact non-negative quantity (``Decimal``, at most 4 places): ``2`` or ``1.5`` (kg)."""


def quantity_from_units(units: int) -> Decimal:
    """A quantity from ten-thousandths (the store's and the frames' integer form), in its one
    spelling: 20000 -> ``2``, 15000 -> ``1.5``."""
    return _quantity(Decimal(units).scaleb(-QUANTITY_DECIMALS))
