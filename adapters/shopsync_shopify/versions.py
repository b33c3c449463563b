"""Which Admin API versions Shopify serves on a given day.

Shopify releases a stable version at the start of each quarter (``YYYY-01``, ``-04``, ``-07``,
``-10``, at 17:00 UTC) and supports each for at least twelve months; a request for a version
past its support is answered with the oldest supported one instead, so an app pinned to an
old version silently gets other fields than it was written for. Source:
https://shopify.dev/docs/api/usage/versioning ("Release schedule", "Stable API versions").

:data:`API_VERSION` is the newest stable version on the day this adapter was last updated
(2026-12-02: 2026-10, released 2026-10-01; 2027-01 is a release candidate). Source:
https://shopify.dev/changelog/release-notes.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["API_VERSION", "SUPPORT_MONTHS", "released", "supported", "version_problem"]

API_VERSION = "2026-10"
"""The Admin API version the adapter and the emulator speak (overridable per shop)."""
SUPPORT_MONTHS = 12
_STABLE = re.compile(r"^(?P<year>\d{4})-(?P<month>01|04|07|10)$")


def released(version: str) -> dt.datetime | None:
    """When a stable version was (or will be) released; None for anything that is not a
    stable version name (``unstable``, a typo, ``2026-05``)."""
    match = _STABLE.match(version)
    if match is None:
        return None
    year, month = int(match["year"]), int(match["month"])
    return dt.datetime(year, month, 1, 17, tzinfo=dt.timezone.utc)


def _months_later(moment: dt.datetime, months: int) -> dt.datetime:
    total = moment.month - 1 + months
    return moment.replace(year=moment.year + total // 12, month=total % 12 + 1)


def supported(version: str, now: dt.datetime) -> bool:
    """True when ``version`` is a released stable version still inside its support window."""
    start = released(version)
    if start is None:
        return False
    return start <= now < _months_later(start, SUPPORT_MONTHS)


def version_problem(version: str, now: dt.datetime) -> str | None:
    """Why ``version`` should not be used today, in one sentence naming the fix; None if fine."""
    start = released(version)
    fix = f'set api_version = "{API_VERSION}" (or leave it unset) for this shop'
    if start is None:
        return (
            f"api_version {version!r} is not a stable Shopify API version (YYYY-01/04/07/10): {fix}"
        )
    if now < start:
        return f"api_version {version} is not released yet (release candidate or future): {fix}"
    if not supported(version, now):
        end = _months_later(start, SUPPORT_MONTHS).date().isoformat()
        return (
            f"api_version {version} is no longer supported by Shopify (support ended {end}; "
            f"Shopify answers with another version's fields): {fix}"
        )
    return None
