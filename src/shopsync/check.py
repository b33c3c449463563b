"""Can shopsync work with a configured shop? Reach it, authenticate, and compare the access
it was granted with the access each use needs (``shopsync check``).

An adapter that can tell what it was granted offers, beside the :class:`~shopsync.adapter.
Adapter` protocol:

- ``access_needed``: a mapping from a use (``"sync"``, ``"apply"``) to the scopes or
  permissions it needs, in the platform's own names;
- ``access_hint``: one sentence saying where the merchant grants them;
- ``granted_access()``: one cheap authenticated request answering the granted set;
- optionally ``config_problems()`` (settings that stop the adapter working right, such as an
  API version the platform no longer serves) and ``access_notes(granted)`` (what the granted
  set means beyond a missing name, such as Shopify's 60-day order window).

An adapter without them is only checked for reaching the shop: it reads one page of products.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shopsync.config import RetrySettings, ShopConfig
from shopsync.errors import ShopSyncError

__all__ = ["AccessCheck", "check_access"]

CHECK_RETRY = RetrySettings(attempts=2, max_elapsed=15.0)
"""A check fails fast: one retry, unless the shop's own ``retry`` says otherwise."""


@dataclass(frozen=True)
class AccessCheck:
    """What :func:`check_access` found for one shop."""

    name: str
    platform: str
    shop: str | None = None
    """The shop as the store names it (None when the adapter could not even be built)."""
    error: ShopSyncError | None = None
    """Why the shop could not be reached or used (its message holds no secret)."""
    granted: frozenset[str] | None = None
    """What the credentials were granted; None when the adapter cannot tell."""
    needed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per use that applies to this shop, what it needs."""
    hint: str = ""
    problems: tuple[str, ...] = ()
    """Settings that stop the adapter working right (each makes the check fail)."""
    notes: tuple[str, ...] = ()
    """What the granted access means for the data a sync sees."""

    @property
    def missing(self) -> dict[str, tuple[str, ...]]:
        """Per use, what it needs and was not granted."""
        if self.granted is None:
            return {}
        return {
            use: tuple(s for s in scopes if s not in self.granted)
            for use, scopes in self.needed.items()
            if any(s not in self.granted for s in scopes)
        }

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing and not self.problems

    def lines(self) -> list[str]:
        """The report, one line per fact."""
        title = f"{self.name} ({self.platform}{' ' + self.shop if self.shop else ''})"
        if self.error is not None:
            return [f"{title}: FAILED: {self.error}"]
        out = [f"{title}: reached, credentials accepted"]
        out.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        if self.granted is None:
            out.append("  this adapter cannot list its permissions: one page of products was read")
            return out
        missing = self.missing
        for use, scopes in self.needed.items():
            state = f"MISSING {', '.join(missing[use])}" if use in missing else "granted"
            out.append(f"  {use} needs {', '.join(scopes)}: {state}")
        if missing:
            out.append(f"  to fix: {self.hint}" if self.hint else "  to fix: grant what is missing")
        out.extend(f"  note: {note}" for note in self.notes)
        return out


def check_access(shop: ShopConfig) -> AccessCheck:
    """Connect to ``shop``, make one authenticated read, and compare granted with needed
    access: reading for ``sync``, and writing for ``apply`` when ``write_back`` is on."""
    quick = shop if shop.retry is not None else shop.model_copy(update={"retry": CHECK_RETRY})
    try:
        adapter = quick.connect()
    except ShopSyncError as exc:
        return AccessCheck(shop.name, shop.platform, error=exc)
    try:
        wanted = getattr(adapter, "access_needed", None)
        if wanted is None or not hasattr(adapter, "granted_access"):
            next(iter(adapter.read_products()), None)
            return AccessCheck(shop.name, shop.platform, adapter.shop)
        uses = ("sync", "apply") if shop.write_back else ("sync",)
        granted = frozenset(adapter.granted_access())
        problems = getattr(adapter, "config_problems", None)
        notes = getattr(adapter, "access_notes", None)
        return AccessCheck(
            shop.name,
            shop.platform,
            adapter.shop,
            granted=granted,
            needed={use: tuple(wanted[use]) for use in uses if use in wanted},
            hint=str(getattr(adapter, "access_hint", "")),
            problems=tuple(problems()) if problems else (),
            notes=tuple(notes(granted)) if notes else (),
        )
    except ShopSyncError as exc:
        return AccessCheck(shop.name, shop.platform, adapter.shop, error=exc)
    finally:
        adapter.close()
