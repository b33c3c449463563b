"""What the token of :class:`~shopsync_shopify.adapter.ShopifyAdapter` may see and do, and
what in its settings stops it working (``shopsync check`` and the sync report)."""

from __future__ import annotations

import datetime as dt
import logging

from shopsync.errors import PlatformError, ResponseError, TransportError
from shopsync.http import redact_url
from shopsync_shopify._transport import GraphQLTransport
from shopsync_shopify.mapping import PLATFORM
from shopsync_shopify.versions import version_problem

__all__ = ["ORDER_WINDOW", "AccessChecks"]

log = logging.getLogger("shopsync.shopify")

ORDER_WINDOW = dt.timedelta(days=60)
"""What Shopify shows of a shop's orders to a token without ``read_all_orders``."""


class AccessChecks(GraphQLTransport):
    """Granted scopes, the order window and the API version (a part of the adapter)."""

    api_version: str
    base_url: str
    _granted: frozenset[str] | None

    def order_window(self) -> dt.datetime | None:
        """The creation time before which Shopify hides orders from this token: 60 days
        ago without ``read_all_orders`` (silently: the API answers as if there were no
        older orders; https://shopify.dev/docs/api/usage/access-scopes), else None."""
        if self._granted is None:
            try:
                self._granted = self.granted_access()
            except (PlatformError, TransportError) as exc:  # say nothing rather than guess
                log.info("could not read the granted scopes: %s", exc)
                return None
        if "read_all_orders" in self._granted:
            return None
        return dt.datetime.now(dt.timezone.utc) - ORDER_WINDOW

    def read_limits(self) -> list[str]:
        """What this token cannot see, one sentence each naming the fix (sync report)."""
        since = self.order_window()
        if since is None:
            return []
        return [
            f"orders: Shopify shows this app only the last 60 days (since {since:%Y-%m-%d}) "
            "because the token lacks read_all_orders; older orders were not read. "
            + self.access_notes(frozenset())[0].split(": ", 1)[1]
        ]

    def config_problems(self) -> list[str]:
        """What in this adapter's settings stops it working right today (``shopsync check``):
        an API version Shopify no longer supports, or one that is not a stable version."""
        problem = version_problem(self.api_version, dt.datetime.now(dt.timezone.utc))
        return [problem] if problem else []

    def access_notes(self, granted: frozenset[str]) -> list[str]:
        """What the granted scopes mean beyond a missing name (``shopsync check``)."""
        if "read_all_orders" in granted:
            return []
        return [
            "without read_all_orders Shopify returns only the orders of the last 60 days, "
            "silently: a custom app adds it under Admin API access scopes; a public app must "
            "first request it from Shopify (Partner Dashboard > the app > API access > "
            "Access requests: read_all_orders), then ask for it at install"
        ]

    def granted_access(self) -> frozenset[str]:
        """The scopes the token holds (``GET /admin/oauth/access_scopes.json``, one cheap
        authenticated read); a ``write_`` scope implies its ``read_`` one, as on Shopify."""
        url = f"{self.base_url}/admin/oauth/access_scopes.json"
        body = self.http.json(
            "GET", url, headers={"X-Shopify-Access-Token": self._token.get_secret_value()}
        )
        rows = body.get("access_scopes") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise ResponseError(f"no access_scopes in GET {redact_url(url)}", platform=PLATFORM)
        handles = {str(r["handle"]) for r in rows if isinstance(r, dict) and r.get("handle")}
        implied = {"read_" + h[len("write_") :] for h in handles if h.startswith("write_")}
        return frozenset(handles | implied)
