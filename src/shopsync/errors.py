"""Every error shopsync raises on purpose.

The tree::

    ShopSyncError                    .retryable says whether trying again can help
    ├── ConfigurationError           bad settings, unknown adapter, bad policy file
    │   ├── AdapterNotFoundError     .available lists the installed adapters
    │   ├── CapabilityError          (shopsync.adapter) .missing: declared, not implemented
    │   ├── PolicyError              (shopsync.core.policy) .keys: the dotted keys at fault
    │   └── PostgresUnavailable      (shopsync.testing.postgres) no local server could start
    ├── PlatformError                the shop answered with an error (.status, .request_id)
    │   ├── AuthenticationError      401/403: wrong or revoked credentials, missing scope
    │   ├── NotFoundError            404
    │   ├── RateLimitedError         429 or THROTTLED (.retry_after seconds)     retryable
    │   ├── ServerError              5xx                                          retryable
    │   └── ResponseError            a 2xx whose body is not what the API promises (retryable)
    ├── TransportError               connection refused/reset, timeout, truncated body (retryable)
    ├── InvalidRecordError           a platform record that cannot be mapped (.raw, .path)
    ├── CurrencyMismatchError        arithmetic across two currencies (also a ValueError)
    ├── StoreError                   the local store refused an operation
    ├── FitError                     a CLV model fit did not converge
    ├── LoyaltyError                 (shopsync.core.loyalty) too few points, not a reward step
    └── WebhookError                 a delivery that must not be applied
        └── SignatureError           missing, malformed or wrong signature

Messages never contain credentials: adapters pass URLs through
:func:`shopsync.http.redact_url` before they reach an error.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AdapterNotFoundError",
    "AuthenticationError",
    "ConfigurationError",
    "CurrencyMismatchError",
    "FitError",
    "InvalidRecordError",
    "NotFoundError",
    "PlatformError",
    "RateLimitedError",
    "ResponseError",
    "ServerError",
    "ShopSyncError",
    "SignatureError",
    "StoreError",
    "TransportError",
    "WebhookError",
]


class ShopSyncError(Exception):
    """Root of every error shopsync raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(ShopSyncError):
    """Settings that cannot work: fix the configuration, retrying will not help."""


class AdapterNotFoundError(ConfigurationError):
    """No installed adapter has the requested name."""

    def __init__(self, name: str, available: list[str]) -> None:
        listed = ", ".join(sorted(available)) or "none"
        super().__init__(
            f"no shopsync adapter named {name!r} is installed (installed: {listed}); "
            "adapters register in the 'shopsync.adapters' entry-point group"
        )
        self.name = name
        self.available = sorted(available)


class PlatformError(ShopSyncError):
    """The platform answered a request with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        platform: str | None = None,
    ) -> None:
        details = ", ".join(
            part
            for part in (
                platform and f"platform={platform}",
                status is not None and f"status={status}",
                request_id and f"request_id={request_id}",
            )
            if part
        )
        super().__init__(f"{message} ({details})" if details else message)
        self.status = status
        self.request_id = request_id
        self.platform = platform


class AuthenticationError(PlatformError):
    """Credentials were refused (401) or lack a permission (403)."""


class NotFoundError(PlatformError):
    """The resource does not exist (404)."""


class RateLimitedError(PlatformError):
    """Over the platform's rate limit; wait ``retry_after`` seconds before trying again."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(PlatformError):
    """The platform failed (5xx); usually passing."""

    retryable = True


class ResponseError(PlatformError):
    """A success status whose body is not what the API promises (truncated, not JSON)."""

    retryable = True


class TransportError(ShopSyncError):
    """The request did not complete: refused or reset connection, timeout."""

    retryable = True


REASON_LIMIT = 1_000
"""Characters of an :class:`InvalidRecordError` reason kept; the rest is counted, not kept."""


class InvalidRecordError(ShopSyncError):
    """A platform record that cannot be mapped to a shared model.

    ``raw`` is the record as received, ``path`` the field that failed (dotted), ``reason``
    a sentence for the quarantine, cut to :data:`REASON_LIMIT` characters (a reason quoting a
    500 kB field would fill the log and the quarantine table).
    """

    def __init__(self, reason: str, *, raw: Any = None, path: str | None = None) -> None:
        if len(reason) > REASON_LIMIT:
            reason = f"{reason[:REASON_LIMIT]}… ({len(reason):,} characters)"
        super().__init__(f"{path}: {reason}" if path else reason)
        self.reason = reason
        self.raw = raw
        self.path = path


SHAPE_ERRORS: tuple[type[Exception], ...] = (
    AttributeError,
    TypeError,
    KeyError,
    IndexError,
    ValueError,
    ArithmeticError,
    RecursionError,
)
"""What reading a payload of an unexpected shape raises (``None.get``, an ``int`` iterated,
a number too large for ``Decimal.quantize``, nesting too deep): a mapper turns these into
:class:`InvalidRecordError`."""


class CurrencyMismatchError(ShopSyncError, ValueError):
    """Two amounts in different currencies were combined."""


class StoreError(ShopSyncError):
    """The local store refused an operation."""


class WebhookError(ShopSyncError):
    """A webhook delivery that must not be applied."""


class SignatureError(WebhookError):
    """The delivery's signature is missing, malformed or wrong."""


class FitError(ShopSyncError):
    """A model fit did not reach a maximum of the likelihood.

    Usually the data cannot identify a parameter (nobody ever churns, so b grows without
    bound); a small ``penalizer`` keeps the fit finite.
    """
