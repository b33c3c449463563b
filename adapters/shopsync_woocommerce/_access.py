"""What the key of :class:`~shopsync_woocommerce.adapter.WooCommerceAdapter` may do, and
where the store's marketing consent comes from (``shopsync check``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from shopsync.adapter import Page
from shopsync.http import error_for_response
from shopsync.models import ConsentState, Customer
from shopsync_woocommerce._transport import RestTransport, refusal_body
from shopsync_woocommerce.mapping import PLATFORM

__all__ = ["AccessChecks"]


class AccessChecks(RestTransport):
    """Granted permissions and the consent source (a part of the adapter)."""

    consent_sources: tuple[str, ...]

    if TYPE_CHECKING:  # what this part uses of the reads (._reads)

        def read_customers(
            self, updated_since: dt.datetime | None = None, *, cursor: str | None = None
        ) -> Iterator[Page[Customer]]: ...

    def access_notes(self, granted: frozenset[str]) -> list[str]:
        """Where marketing consent comes from, read off the first page of customers: WooCommerce
        core has no consent field, so a store without a plugin the settings name (or an
        import, or double opt-ins) can contact nobody (:mod:`.consent`)."""
        if "read" not in granted:
            return []
        page = next(iter(self.read_customers()), None)
        records = list(page.records) if page is not None else []
        said = sum(c.consent.email.state is not ConsentState.UNKNOWN for c in records)
        sources = ", ".join(self.consent_sources) or "none"
        if not records:
            return []
        if not said:
            return [
                f"NO MARKETING CONSENT: none of the first {len(records)} customers carries the "
                f"consent meta of the configured sources ({sources}). WooCommerce core has no "
                "consent field, so no customer can be e-mailed until you name your newsletter "
                "plugin in consent_sources, import a consent list (shopsync consent import "
                "FILE) or collect double opt-ins (docs/adapters/woocommerce.md)"
            ]
        return [
            f"marketing consent comes from plugin meta ({sources}): {said} of the first "
            f"{len(records)} customers carry it"
        ]

    def granted_access(self) -> frozenset[str]:
        """``read`` and ``write`` as far as the key's permissions and its user's role allow,
        found by two requests that change nothing: a one-order page and an empty customer
        batch. WooCommerce refuses a key without the permission before any route runs."""
        granted = {
            name
            for name, method, endpoint in (
                ("read", "GET", "orders"),
                ("write", "POST", "customers/batch"),
            )
            if self._permitted(method, endpoint)
        }
        return frozenset(granted)

    def _permitted(self, method: str, endpoint: str) -> bool:
        def once() -> bool:
            response = self._sent(
                method,
                endpoint,
                lambda: (
                    self.api.get(endpoint, params={"per_page": "1"})
                    if method == "GET"
                    else self.api.post(endpoint, {})
                ),
            )
            error = error_for_response(response, PLATFORM)
            if error is None:
                return True
            body = refusal_body(response)
            code = str(body.get("code", "")) if isinstance(body, dict) else ""
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
            if code.startswith("woocommerce_rest_cannot_") or "permissions" in message:
                return False  # a valid key without this permission (or a user without the role)
            if method == "POST" and error.status in (400, 404):
                return True  # authenticated and permitted; the empty batch itself is moot
            raise error

        return self.http.call(once)
