"""POST each action as signed JSON to an HTTP endpoint (an ESP, Zapier-like tools, your app).

The request::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <the action's idempotency key>
    X-Shopsync-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>
    X-Shopsync-Kind: <the action's kind>

    {"idempotency_key": ..., "kind": ..., "action": {...}, "customer": {...}}

``customer`` holds the contact the receiver needs (id, email, phone, names, locale is not
known) as the store holds it at delivery. The body is the same on every attempt of an action,
so the signature is too. To verify: recompute the HMAC over the raw body bytes and compare
with :func:`hmac.compare_digest` (:func:`verify_signature` does it).

At least once: 5xx, 429 and timeouts are retried by :mod:`shopsync.http` (and later by the
outbox); a receiver must drop a repeated ``Idempotency-Key``. A 4xx parks the action: the
receiver refused it and will refuse it again.

Redirects are never followed. Following one would either turn the POST into a body-less
GET (301/302/303, which ``requests`` would then record as delivered) or send the customer's
data and the custom headers (an ESP's API key) to whatever host the Location names
(307/308). Any 3xx parks the row with the status and the (redacted) Location, so the
operator updates the sink's URL and runs :func:`shopsync.outbox.retry_parked`.

:meth:`Webhook.render` (the dry-run preview) shows custom header names with their values
masked: a preview is printed and pasted into tickets.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError, PlatformError
from shopsync.http import HttpClient, RetryPolicy, redact_url
from shopsync.sinks._base import DeliveryContext, DeliveryError, Guarantee

__all__ = ["SIGNATURE_HEADER", "Webhook", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Shopsync-Signature"


def sign(secret: str | bytes | SecretStr, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=<hex>``."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes | SecretStr, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison).

    False, never an exception, for any header value (None, bytes, non-ASCII text): a
    receiver answers a forgery with 401, not a 500.
    """
    if not isinstance(header, str) or not header or not header.isascii():
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.encode("ascii"))


class Webhook:
    """A signed JSON POST per action to ``url``; ``kinds`` limits it to some action kinds."""

    guarantee: ClassVar[Guarantee] = "at_least_once"
    contacts_customer: ClassVar[bool] = True
    stage: ClassVar[int] = 1

    def __init__(
        self,
        url: str,
        secret: str | SecretStr,
        *,
        name: str | None = None,
        kinds: Iterable[str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("webhook url must start with http:// or https://")
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        if len(self._secret.get_secret_value()) < 16:
            raise ConfigurationError("webhook secret must be at least 16 characters")
        self.url = url
        self.name = name or "webhook"  # not the URL: moving it must not send again
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.headers = dict(headers or {})
        self.http = HttpClient(
            "webhook",
            timeout=timeout,
            policy=retry_policy or RetryPolicy(attempts=4, max_elapsed=60.0),
        )

    def __repr__(self) -> str:
        return f"Webhook({redact_url(self.url)!r})"

    def accepts(self, action: Action) -> bool:
        return self.kinds is None or action.kind in self.kinds

    def close(self) -> None:
        self.http.close()

    def _body(self, action: Action, context: DeliveryContext) -> bytes:
        customer = context.customer
        contact = None
        if customer is not None:
            contact = {
                "id": customer.id,
                "email": customer.email,
                "phone": customer.phone,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
            }
        payload = {
            "idempotency_key": action.idempotency_key,
            "kind": action.kind,
            "action": action.model_dump(mode="json"),
            "customer": contact,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    def _own_headers(self, action: Action) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Idempotency-Key": action.idempotency_key,
            "X-Shopsync-Kind": action.kind,
        }

    def _headers(self, action: Action, body: bytes) -> dict[str, str]:
        return {
            **self.headers,
            **self._own_headers(action),
            SIGNATURE_HEADER: sign(self._secret, body),
        }

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        body = self._body(action, context)
        # Custom headers often carry the receiver's API key: names shown, values masked.
        headers = {**{k: "***" for k in self.headers}, **self._own_headers(action)}
        return {"url": redact_url(self.url), "headers": headers, "body": json.loads(body)}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        body = self._body(action, context)
        try:
            response = self.http.request(
                "POST",
                self.url,
                data=body,
                headers=self._headers(action, body),
                allow_redirects=False,
            )
        except PlatformError as exc:
            # 4xx other than 429: the receiver refused this action; retrying will not help
            raise DeliveryError(str(exc), retryable=exc.retryable) from None
        if 300 <= response.status_code < 400:
            location = redact_url(response.headers.get("Location") or "") or "nowhere"
            raise DeliveryError(
                f"the receiver answered a redirect ({response.status_code}) to {location}: "
                f"not followed, nothing was delivered; point the sink at the new URL and "
                f"retry the parked rows",
                retryable=False,
            )
        return {
            "status": response.status_code,
            "request_id": response.headers.get("X-Request-Id"),
        }
