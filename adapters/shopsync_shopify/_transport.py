"""The GraphQL transport of :class:`~shopsync_shopify.adapter.ShopifyAdapter`: one query
under the cost bucket's pacing and the one retry policy.

Pacing: every answer carries ``extensions.cost.throttleStatus``. The adapter keeps the last
one, refills it at ``restoreRate`` with the clock, and before each request waits
``(requested - available) / restoreRate`` seconds if the bucket cannot hold the request, so
``THROTTLED`` is rare; when it happens anyway it becomes a :class:`RateLimitedError` with that
wait as ``retry_after`` and the one retry policy of :mod:`shopsync.http` handles it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr

from shopsync.errors import PlatformError, RateLimitedError, ResponseError
from shopsync.http import HttpClient, decode_json
from shopsync_shopify.mapping import PLATFORM

__all__ = ["GraphQLTransport", "iso", "max_cost"]


class GraphQLTransport:
    """The base of the adapter's parts: the GraphQL call and the state it keeps (the
    adapter's ``__init__`` sets every attribute declared here)."""

    shop: str
    http: HttpClient
    endpoint: str
    _token: SecretStr
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]
    _bucket: tuple[float, float, float, float] | None
    counters: dict[str, int]

    def _available(self) -> float | None:
        if self._bucket is None:
            return None
        maximum, available, rate, at = self._bucket
        return min(maximum, available + (self._clock() - at) * rate)

    def _pace(self, requested: float) -> None:
        """Wait until the bucket (as last reported, refilled since) can hold ``requested``."""
        available = self._available()
        if available is None or self._bucket is None or requested <= available:
            return
        wait = (requested - available) / self._bucket[2]
        self.counters["paced_seconds"] += wait  # type: ignore[assignment]
        self.http.stats.add(throttle_waits=1, throttle_seconds=wait)
        self._sleep(wait)

    def _note_cost(self, cost: Mapping[str, Any] | None) -> None:
        status = (cost or {}).get("throttleStatus")
        if status:
            self._bucket = (
                float(status["maximumAvailable"]),
                float(status["currentlyAvailable"]),
                float(status["restoreRate"]),
                self._clock(),
            )

    def graphql(
        self, query: str, variables: Mapping[str, Any] | None = None, *, requested: float = 0
    ) -> dict[str, Any]:
        """Run one query under pacing and the retry policy; returns ``data`` and the cost
        extension (``{"data": ..., "cost": ...}``)."""

        def once() -> dict[str, Any]:
            self._pace(requested)
            self.counters["queries"] += 1
            response = self.http.send_once(
                "POST",
                self.endpoint,
                json={"query": query, "variables": dict(variables or {})},
                headers={"X-Shopify-Access-Token": self._token.get_secret_value()},
            )
            body = decode_json(response, where=f"POST {self.endpoint}", platform=PLATFORM)
            if not isinstance(body, dict):
                raise ResponseError(
                    "GraphQL answer is not an object",
                    status=response.status_code,
                    platform=PLATFORM,
                )
            cost = (body.get("extensions") or {}).get("cost")
            self._note_cost(cost)
            errors = body.get("errors")
            if errors:
                items: list[Any] = (
                    errors if isinstance(errors, list) else [{"message": str(errors)}]
                )
                codes = {
                    ((e.get("extensions") or {}).get("code")) for e in items if isinstance(e, dict)
                }
                if "THROTTLED" in codes:
                    self.counters["throttled"] += 1
                    wait = None
                    status = (cost or {}).get("throttleStatus") or {}
                    if cost and status.get("restoreRate"):
                        need = float(cost.get("requestedQueryCost") or requested)
                        wait = max(
                            0.0,
                            (need - float(status["currentlyAvailable"]))
                            / float(status["restoreRate"]),
                        )
                    raise RateLimitedError(
                        "GraphQL query THROTTLED", retry_after=wait, status=200, platform=PLATFORM
                    )
                message = "; ".join(str(e.get("message")) for e in items if isinstance(e, dict))
                error = PlatformError(f"GraphQL error: {message}", status=200, platform=PLATFORM)
                error.codes = codes  # type: ignore[attr-defined]
                error.body = body  # type: ignore[attr-defined]
                raise error
            if cost and cost.get("actualQueryCost") is not None:
                self.counters["actual_cost"] += int(cost["actualQueryCost"])
            return {"data": body.get("data") or {}, "cost": cost or {}}

        return self.http.call(once)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def max_cost(exc: PlatformError) -> float | None:
    """The cost Shopify names in a ``MAX_COST_EXCEEDED`` refusal from :meth:`graphql`."""
    if "MAX_COST_EXCEEDED" not in getattr(exc, "codes", set()):
        return None
    for error in (getattr(exc, "body", None) or {}).get("errors") or ():
        cost = (error.get("extensions") or {}).get("cost")
        if cost is not None:
            return float(cost)
    return None
