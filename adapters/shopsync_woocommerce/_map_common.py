"""The WooCommerce mapper's readers: the toolkit's mapping context with WooCommerce's ids
(:class:`shopsync.adapter_kit.RecordReader`), dates with their ``*_gmt`` twins, meta_data,
addresses. The rules are in :mod:`shopsync_woocommerce.mapping`."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from shopsync.adapter_kit import RecordReader, parse_timestamp, refusals

T = TypeVar("T")

META = {
    "tags": "_shopsync_tags",
    "consent": "_shopsync_marketing_consent",
    "birthday": "_shopsync_birthday",
    "tracking": "_wc_shipment_tracking_items",
}
"""meta_data keys read for fields WooCommerce core lacks.

- ``_shopsync_tags``: list of strings (or one comma-separated string), customers and orders;
- ``_shopsync_marketing_consent``: ``{"email": {"state", "opt_in_level", "updated_at"},
  "sms": {...}}`` with the :class:`~shopsync.models.ConsentState` values (the ``shopsync``
  consent source; the plugins' keys are in :mod:`.consent`);
- ``_shopsync_birthday``: ``YYYY-MM-DD``;
- ``_wc_shipment_tracking_items``: the Shipment Tracking extension's list of
  ``{tracking_id, tracking_provider, custom_tracking_provider, custom_tracking_link,
  tracking_number, date_shipped}`` (``date_shipped`` in Unix seconds); shopsync also reads
  optional ``status``, ``date_delivered`` (Unix seconds) and ``line_items`` (``[{id, quantity}]``).
"""


def _woo_number(value: Any) -> int:
    """A WooCommerce id as its number: a whole number >= 0, or its digits."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not an id")
    return value


def _woo_id(value: Any) -> str:
    """A WooCommerce id as a string; 0 names no record."""
    if _woo_number(value) == 0:
        raise ValueError("id 0 does not name a record")
    return str(_woo_number(value))


class _Ctx(RecordReader):
    """The toolkit's record reader with WooCommerce's ids and amounts."""

    parse_id = staticmethod(_woo_id)

    def ref(self, value: Any, path: str) -> str | None:
        """An id where 0 means none (a guest's ``customer_id``, a deleted product)."""
        try:
            number = _woo_number(value)
        except ValueError as exc:
            self.fail(path, str(exc))
        return None if number == 0 else str(number)

    def number(self, value: Any, path: str) -> Decimal:
        """An amount; ``""`` and null read as zero, as ``wc_format_decimal`` reads them."""
        return self.amount_or(value, path, Decimal(0))


# --- small readers --------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A display name: WooCommerce HTML-escapes names (``&amp;``, ``&ndash;``); empty is absent."""
    if value is None or value == "":
        return None
    return html.unescape(str(value))


def _plain(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def parse_date(value: Any, *, assume: dt.tzinfo | None = dt.timezone.utc) -> dt.datetime:
    """A WooCommerce date string as an aware UTC datetime (``ValueError`` if it is none).

    ``assume`` is the zone of a value written without an offset (UTC for ``*_gmt`` fields);
    None means such a value is refused.
    """
    return parse_timestamp(value, assume=assume)


def _date(
    ctx: _Ctx,
    payload: Mapping[str, Any],
    key: str,
    path: str,
    site_timezone: dt.tzinfo | None,
    *,
    required: bool,
) -> dt.datetime | None:
    """The ``*_gmt`` twin (UTC), else the site-local value in ``site_timezone``."""
    gmt, local = payload.get(f"{key}_gmt"), payload.get(key)
    if gmt not in (None, ""):
        return ctx.timestamp(gmt, f"{path}{key}_gmt", assume=dt.timezone.utc)
    if local not in (None, ""):
        return ctx.timestamp(local, f"{path}{key}", assume=site_timezone)
    if required:
        ctx.fail(f"{path}{key}_gmt", "missing")
    return None


def _meta(ctx: _Ctx, payload: Mapping[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for i, entry in enumerate(ctx.items(payload.get("meta_data"), f"{path}meta_data")):
        if isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
            found[entry["key"]] = entry.get("value")
        elif entry is not None:
            ctx.fail(f"{path}meta_data[{i}]", "expected {key, value}")
    return found


def _tags(ctx: _Ctx, value: Any) -> tuple[str, ...]:
    """A list of tags as written, or a comma-separated string (split and trimmed)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(t for t in (part.strip() for part in value.split(",")) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(t for t in value if t.strip())
    ctx.fail("meta_data." + META["tags"], "expected a list of tags")


def _address(ctx: _Ctx, value: Any, path: str) -> dict[str, Any] | None:
    data = ctx.obj(value, path)
    address = {
        "first_name": _plain(data.get("first_name")),
        "last_name": _plain(data.get("last_name")),
        "company": _plain(data.get("company")),
        "address1": _plain(data.get("address_1")),
        "address2": _plain(data.get("address_2")),
        "city": _plain(data.get("city")),
        "province": _plain(data.get("state")),
        "zip": _plain(data.get("postcode")),
        "country_code": (_plain(data.get("country")) or "").upper() or None,
        "phone": _plain(data.get("phone")),
    }
    return address if any(v is not None for v in address.values()) else None


def _unix(ctx: _Ctx, value: Any, path: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return dt.datetime.fromtimestamp(int(str(value)), dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        ctx.fail(path, f"{value!r} is not a Unix timestamp")


def _wrap(payload: Any, build: Callable[[_Ctx], T]) -> T:
    """Run a builder; every failure is an InvalidRecordError carrying the raw record, a
    refused model field named by its place in the record (the builders validate whole)."""
    ctx = _Ctx(payload)
    if not isinstance(payload, Mapping):
        ctx.fail("", f"expected a JSON object, got {type(payload).__name__}")
    with refusals(payload, validation_paths=True):
        return build(ctx)
