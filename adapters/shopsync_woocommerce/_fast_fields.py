"""The field readers of the WooCommerce fast path (:mod:`._fast_orders`): each reads a value
as the model mapper and the model would, or refuses the record (:class:`Refuse`).

The common spellings (an amount written ``"21.64"``, an address of strings, a ``*_gmt``
date) are read without the general readers' calls: a first sync reads some 90 fields an
order, so the calls were most of the mapping's CPU (issue 20, item 3.3).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shopsync._instants import to_micros
from shopsync.adapter_kit import parse_timestamp
from shopsync.models import MAX_AMOUNT

_UTC = dt.timezone.utc
_ZERO = Decimal(0)
_PLACES = Decimal("0.0001")
_UNIT = Decimal(10_000)
MAX_ID = 10**255
MAX_UNITS = MAX_AMOUNT * 10_000
_COUNTRY = re.compile(r"[A-Z]{2}")
"""The model's ``^[A-Z]{2}$`` (pydantic's ``$`` is the text's end): read by ``fullmatch``,
as Python's ``$`` also matches before a final newline (``"DE\\n"``)."""
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_fromiso = dt.datetime.fromisoformat
_SCALE = (10_000, 1_000, 100, 10, 1)

_UNITS: dict[str, int] = {}
"""Plain amount texts already read, and their units (a shop's prices and totals repeat)."""
_UNITS_HELD = 1 << 16


class Refuse(Exception):
    """The record is not one this path maps: the row path takes it."""


def text(value: Any) -> Any:
    """A model ``Text`` (or None): no U+0000, no lone surrogate."""
    if value is None:
        return None
    if type(value) is not str or "\x00" in value:
        raise Refuse
    if not value.isascii():
        value.encode()  # a lone surrogate raises UnicodeEncodeError
    return value


def plain(value: Any) -> str | None:
    """``_map_common._plain`` as ``Text``."""
    return None if value is None or value == "" else text(str(value))


def name(value: Any) -> str | None:
    """``_map_common._text`` (HTML entities decoded) as ``Text``."""
    if value is None or value == "":
        return None
    found = str(value)
    if "&" in found:
        found = html.unescape(found)
    text(found)
    return found


def ident(value: Any) -> str:
    """A record id as ``_Ctx.id`` reads it: a whole number above 0 (other spellings, which the
    model path accepts too, are refused here: they are not what WooCommerce writes)."""
    if type(value) is not int or not 0 < value < MAX_ID:
        raise Refuse
    return str(value)


def ref(value: Any) -> str | None:
    """``_Ctx.ref`` of ``value or 0``: an id where 0 (or nothing) means none."""
    return ident(value) if value else None


def given_id(value: Any) -> str:
    """An ``Id`` the mapper's readers produced (a tracking id may be any text)."""
    if type(value) is not str or not value.strip() or len(value) > 255:
        raise Refuse
    text(value)
    return value


def number(value: Any) -> Decimal:
    """``_Ctx.number``: an amount, ``""`` and null as zero."""
    if type(value) is str:
        stripped = value.strip()
        if not stripped:
            return _ZERO
        found = Decimal(stripped)
    elif value is None:
        return _ZERO
    elif type(value) is int:
        found = Decimal(value)
    elif type(value) is float:
        found = Decimal(repr(value))
    else:
        raise Refuse
    if not found.is_finite():
        raise Refuse
    return found


def units(amount: Decimal, signed: bool = False) -> int:
    """``_rows.to_units`` of an amount ``Money`` accepts (an ``Amount`` unless ``signed``)."""
    if (not signed and amount < 0) or abs(amount) >= MAX_AMOUNT:
        raise Refuse
    if amount != amount.quantize(_PLACES):
        raise Refuse
    return int(amount * _UNIT)


def plain_units(value: Any) -> int | None:
    """The units of an amount written as ASCII digits with at most 4 places and 14 whole
    digits (what WooCommerce writes: ``"21.64"``); None for any other value. Such an amount
    is exactly what :func:`number` reads and :func:`units` accepts."""
    found = _UNITS.get(value) if type(value) is str else None
    if found is not None:
        return found
    if type(value) is not str:
        return None
    whole, dot, fraction = value.partition(".")
    if not (whole.isascii() and whole.isdigit()) or len(whole) > 14:
        return None
    if not dot:
        found = int(whole) * 10_000
    elif fraction.isascii() and fraction.isdigit() and len(fraction) <= 4:
        found = int(whole) * 10_000 + int(fraction) * _SCALE[len(fraction)]
    else:
        return None
    if len(_UNITS) < _UNITS_HELD:
        _UNITS[value] = found
    return found


def amount(value: Any) -> int:
    """``units(number(value))``: the units of an amount ``Money`` accepts."""
    found = plain_units(value)
    return units(number(value)) if found is None else found


def money(amount: Decimal, currency: str, signed: bool = False) -> dict[str, str]:
    """``Money.model_dump(mode="json")``."""
    units(amount, signed)
    return {"amount": str(amount), "currency": currency}


def micros(value: str) -> int:
    """``to_micros`` of a ``*_gmt`` date (UTC unless it carries its own offset)."""
    if len(value) == 19 and value[10] == "T":
        at = _fromiso(value)
        if at.tzinfo is None:  # ``2026-03-01T10:00+01`` is 19 characters too
            seconds = (at.toordinal() - _EPOCH_DAY) * 86_400 + at.hour * 3_600
            return (seconds + at.minute * 60 + at.second) * 1_000_000 + at.microsecond
    return to_micros(parse_timestamp(value, assume=_UTC))


def date(payload: Mapping[str, Any], key: str) -> int | None:
    """``_map_common._date`` when the ``*_gmt`` twin is there; refused when only the
    site-local value is (its zone is the row path's to apply)."""
    gmt = payload.get(key + "_gmt")
    if gmt is None or gmt == "":
        local = payload.get(key)
        if local is None or local == "":
            return None
        raise Refuse
    if type(gmt) is not str:
        raise Refuse
    return micros(gmt)


_ADDRESS = (
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("company", "company"),
    ("address1", "address_1"),
    ("address2", "address_2"),
    ("city", "city"),
    ("province", "state"),
    ("zip", "postcode"),
)


def address_row(value: Any) -> dict[str, Any] | None:
    """``Address.model_dump(mode="json")`` of ``_map_common._address`` (the billing email,
    which the row path leaves out first, is not read). An address of strings, as
    WooCommerce writes it, is checked in one go; any other by :func:`_checked_address`."""
    if type(value) is not dict:
        return _checked_address(value)
    get = value.get
    parts = (
        get("first_name"),
        get("last_name"),
        get("company"),
        get("address_1"),
        get("address_2"),
        get("city"),
        get("state"),
        get("postcode"),
        get("country"),
        get("phone"),
    )
    try:
        joined = "".join(parts)  # type: ignore[arg-type]
    except TypeError:  # null or a number somewhere
        return _checked_address(value)
    if "\x00" in joined:
        raise Refuse
    if not joined.isascii():
        joined.encode()  # a lone surrogate raises UnicodeEncodeError
    country = parts[8].upper() or None  # type: ignore[union-attr]
    if country is not None and not _COUNTRY.fullmatch(country):
        raise Refuse
    if not joined or joined == parts[8]:  # nothing but (perhaps) the country
        return None if country is None else _checked_address(value)
    return {
        "first_name": parts[0] or None,
        "last_name": parts[1] or None,
        "company": parts[2] or None,
        "address1": parts[3] or None,
        "address2": parts[4] or None,
        "city": parts[5] or None,
        "province": parts[6] or None,
        "zip": parts[7] or None,
        "country_code": country,
        "phone": parts[9] or None,
    }


def _checked_address(value: Any) -> dict[str, Any] | None:
    """:func:`address_row` of any value, field by field."""
    if value is None:
        return None
    if type(value) is not dict:
        raise Refuse
    out: dict[str, Any] = {}
    found = False
    for field, source in _ADDRESS:
        part = value.get(source)
        if part is None or part == "":
            out[field] = None
            continue
        if type(part) is not str:
            part = str(part)
        if "\x00" in part:
            raise Refuse
        if not part.isascii():
            part.encode()  # a lone surrogate raises UnicodeEncodeError
        out[field] = part
        found = True
    country = (plain(value.get("country")) or "").upper() or None
    if country is not None and not _COUNTRY.fullmatch(country):
        raise Refuse
    phone = plain(value.get("phone"))
    out["country_code"] = country
    out["phone"] = phone
    return out if found or country is not None or phone is not None else None
