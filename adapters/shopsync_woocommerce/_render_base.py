"""What the WooCommerce renderers share: dates in site-local and ``_gmt`` pairs, money as
strings at the currency's precision, ``_links``, addresses and ``meta_data`` entries, and the
corrupt values of invalid-record faults. Split from :mod:`._render`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from shopsync._currencies import EXPONENTS
from shopsync.models import Address, Money

__all__ = ["CORRUPT_DATE", "CORRUPT_MONEY", "WC_PRODUCT_STATUS", "wc_date"]

WC_PRODUCT_STATUS = {"active": "publish", "draft": "draft", "archived": "private"}
"""Shared product status -> WooCommerce post status (the inverse of the mapping's table)."""

CORRUPT_DATE = "not-a-date"
CORRUPT_MONEY = "abc"


def wc_date(value: dt.datetime | None, tz: dt.tzinfo) -> str | None:
    """WooCommerce's date format: to the second, no offset (``2017-03-22T16:28:02``)."""
    if value is None:
        return None
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def _dates(key: str, value: dt.datetime | None, tz: dt.tzinfo) -> dict[str, str | None]:
    return {key: wc_date(value, tz), f"{key}_gmt": wc_date(value, dt.timezone.utc)}


def _money(value: Money | Decimal | None, currency: str | None = None) -> str:
    amount = value.amount if isinstance(value, Money) else (value or Decimal(0))
    code = value.currency if isinstance(value, Money) else currency
    places = EXPONENTS.get(code or "", 2)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        places = -exponent
    return f"{amount:.{places}f}"


def _number(amount: Decimal) -> int | float:
    """WooCommerce writes a line's ``price`` as a JSON number (a PHP float)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _links(base: str, path: str, up: str | None = None) -> dict[str, Any]:
    links: dict[str, Any] = {
        "self": [{"href": f"{base}/wp-json/wc/v3/{path}"}],
        "collection": [{"href": f"{base}/wp-json/wc/v3/{path.rsplit('/', 1)[0]}"}],
    }
    if up:
        links["up"] = [{"href": f"{base}/wp-json/wc/v3/{up}"}]
    return links


def _address(
    address: Address | None, *, email: str | None = None, phone: bool = True
) -> dict[str, str]:
    a = address or Address()
    out = {
        "first_name": a.first_name or "",
        "last_name": a.last_name or "",
        "company": a.company or "",
        "address_1": a.address1 or "",
        "address_2": a.address2 or "",
        "city": a.city or "",
        "state": a.province or "",
        "postcode": a.zip or "",
        "country": a.country_code or "",
    }
    if email is not None:
        out["email"] = email
    if phone:
        out["phone"] = a.phone or ""
    return out


def _meta(pairs: Iterable[tuple[str, Any]], start: int) -> list[dict[str, Any]]:
    return [{"id": start + i, "key": k, "value": v} for i, (k, v) in enumerate(pairs)]
