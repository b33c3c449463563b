"""Server-side REST authentication, checked the way ``WC_REST_Authentication`` checks it.

Over https a store accepts HTTP Basic (or ``consumer_key``/``consumer_secret`` in the query);
over plain http it only accepts OAuth 1.0a one-legged signatures. The signature is
recomputed from the store's *configured* site URL (not the Host header), the parameters
sorted byte-wise, keys and values ``rawurlencode``-d and then each ``key=value`` encoded
again, signed with ``consumer_secret + "&"``. Timestamps must be within 15 minutes and a
nonce is refused when it was used before (WooCommerce remembers them per key, by timestamp).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

__all__ = ["AuthError", "Credentials", "OAuthVerifier", "rawurlencode", "string_to_sign"]

WINDOW = 15 * 60
"""Seconds a timestamp may be off, and how long a nonce is remembered."""

OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)


class AuthError(Exception):
    """A refused request: WooCommerce's error code and message (always HTTP 401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str = field(repr=False)
    permissions: str = "read_write"
    """``read``, ``write`` or ``read_write``."""


def rawurlencode(value: str) -> str:
    """PHP's ``rawurlencode`` (RFC 3986: only ``A-Za-z0-9-_.~`` stay as they are)."""
    return quote(value, safe="-_.~")


def string_to_sign(method: str, site_url: str, path: str, params: Mapping[str, str]) -> str:
    """The OAuth base string WooCommerce signs: ``METHOD&base_uri&k%3Dv%26...``."""
    base_uri = rawurlencode(site_url.rstrip("/") + path)
    pairs = sorted(
        ((k, v) for k, v in params.items() if k != "oauth_signature"),
        key=lambda kv: kv[0].encode(),
    )
    joined = "%26".join(rawurlencode(f"{rawurlencode(k)}={rawurlencode(v)}") for k, v in pairs)
    return f"{method.upper()}&{base_uri}&{joined}"


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _oauth_header(header: str | None) -> dict[str, str]:
    if not header or not header.lower().startswith("oauth "):
        return {}
    found = {}
    for part in header[6:].split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            found[unquote(key)] = unquote(value.strip('"'))
    return found


class OAuthVerifier:
    """Authenticates requests for one store; remembers nonces per consumer key."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        site_url: Callable[[], str],
        is_ssl: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.site_url = site_url
        self.is_ssl = is_ssl
        self.clock = clock
        self._nonces: dict[int, str] = {}
        self._lock = threading.Lock()

    def authenticate(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None = None,
    ) -> bool:
        """True when the request carries valid credentials, False when it carries none.

        Raises :class:`AuthError` for wrong ones, as WooCommerce answers them with a 401
        before any route runs.
        """
        query = dict(parse_qsl(query_string, keep_blank_values=True))  # last value wins, as PHP
        if self.is_ssl:
            given = None
            if "consumer_key" in query:
                given = (query["consumer_key"], query.get("consumer_secret", ""))
            else:
                given = _basic(headers.get("authorization"))
            if given is not None:
                self._check_key(given[0])
                if not hmac.compare_digest(
                    given[1].encode(), self.credentials.consumer_secret.encode()
                ):
                    raise AuthError(
                        "woocommerce_rest_authentication_error", "Consumer secret is invalid."
                    )
                self._check_permission(method)
                return True
        params = {**query, **(form or {}), **_oauth_header(headers.get("authorization"))}
        if not any(p in params for p in OAUTH_PARAMS):
            return False
        for name in OAUTH_PARAMS:
            if not params.get(name):
                raise AuthError(
                    "woocommerce_rest_authentication_missing_parameter",
                    f"Missing OAuth parameter {name}",
                )
        self._check_key(params["oauth_consumer_key"])
        self._check_signature(method, path, params)
        self._check_timestamp_and_nonce(params["oauth_timestamp"], params["oauth_nonce"])
        self._check_permission(method)
        return True

    def _check_key(self, key: str) -> None:
        if not hmac.compare_digest(key.encode(), self.credentials.consumer_key.encode()):
            raise AuthError("woocommerce_rest_authentication_error", "Consumer key is invalid.")

    def _check_signature(self, method: str, path: str, params: Mapping[str, str]) -> None:
        algorithm = params["oauth_signature_method"]
        if algorithm not in ("HMAC-SHA1", "HMAC-SHA256"):
            raise AuthError(
                "woocommerce_rest_authentication_error",
                "Invalid signature - signature method is invalid.",
            )
        digest = hashlib.sha1 if algorithm == "HMAC-SHA1" else hashlib.sha256
        site = self.site_url()
        _, sep, rest = site.partition("://")
        if sep:  # get_home_url(..., is_ssl() ? 'https' : 'http') swaps the scheme
            site = ("https" if self.is_ssl else "http") + "://" + rest
        base = string_to_sign(method, site, path, params)
        key = (self.credentials.consumer_secret + "&").encode()
        expected = base64.b64encode(hmac.new(key, base.encode(), digest).digest()).decode()
        given = unquote(params["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise AuthError(
                "woocommerce_rest_authentication_error",
                "Invalid signature - provided signature does not match.",
            )

    def _check_timestamp_and_nonce(self, timestamp: str, nonce: str) -> None:
        now = self.clock()
        try:
            stamp = int(timestamp)
        except ValueError:
            stamp = -(10**12)
        if stamp < now - WINDOW or stamp > now + WINDOW:
            raise AuthError("woocommerce_rest_authentication_error", "Invalid timestamp.")
        with self._lock:
            if nonce in self._nonces.values():
                raise AuthError(
                    "woocommerce_rest_authentication_error",
                    "Invalid nonce - nonce has already been used.",
                )
            self._nonces[stamp] = nonce  # keyed by timestamp, as WooCommerce stores them
            for old in [t for t in self._nonces if t < now - WINDOW]:
                del self._nonces[old]

    def _check_permission(self, method: str) -> None:
        perms = self.credentials.permissions
        if method in ("HEAD", "GET", "OPTIONS") and perms not in ("read", "read_write"):
            raise AuthError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have read permissions.",
            )
        if method in ("POST", "PUT", "PATCH", "DELETE") and perms not in ("write", "read_write"):
            raise AuthError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
            )
