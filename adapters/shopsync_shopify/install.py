"""The app-install side: OAuth permission URL, callback check, and token exchange.

ShopifyAPI builds the permission URL and checks the callback's HMAC (its ``Session`` does
both as Shopify specifies); the code-for-token exchange goes through shopsync's
:class:`~shopsync.http.HttpClient` because ShopifyAPI hard-codes ``https://{shop}`` there
and has no timeout or retry. ShopifyAPI keeps the app key and secret as class attributes,
so each call uses a private subclass instead of mutating the global ``shopify.Session``.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import shopify  # type: ignore[import-untyped]  # ShopifyAPI ships no type information
from pydantic import SecretStr

from shopsync.errors import AuthenticationError, ResponseError, SignatureError
from shopsync.http import HttpClient
from shopsync_shopify.adapter import API_VERSION

__all__ = [
    "AppCredentials",
    "Installation",
    "exchange_token",
    "new_state",
    "permission_url",
    "verify_callback",
]


@dataclass(frozen=True)
class AppCredentials:
    """The app's client id (API key) and client secret."""

    api_key: str
    api_secret: SecretStr = field(repr=False)

    def _session_class(self) -> type[shopify.Session]:
        return type(
            "_AppSession",
            (shopify.Session,),
            {"api_key": self.api_key, "secret": self.api_secret.get_secret_value()},
        )


@dataclass(frozen=True)
class Installation:
    """What a finished install yields: the shop, its offline token, and the granted scopes."""

    shop: str
    access_token: SecretStr = field(repr=False)
    scopes: tuple[str, ...]


def new_state() -> str:
    """A fresh ``state`` nonce to send with the permission URL and check on the callback."""
    return _secrets.token_urlsafe(24)


def permission_url(
    app: AppCredentials,
    shop: str,
    scopes: Iterable[str],
    redirect_uri: str,
    state: str,
    *,
    api_version: str = API_VERSION,
) -> str:
    """Where to send the merchant to approve the app (``https://{shop}/admin/oauth/authorize``)."""
    session = app._session_class()(shop, api_version)
    return str(session.create_permission_url(list(scopes), redirect_uri, state))


def verify_callback(
    app: AppCredentials, params: Mapping[str, str], expected_state: str | None = None
) -> bool:
    """True when the callback's ``hmac`` signs its parameters, it is less than a day old,
    and (if given) its ``state`` is the one we sent."""
    if expected_state is not None and not _secrets.compare_digest(
        str(params.get("state", "")), expected_state
    ):
        return False
    return bool(app._session_class().validate_params(dict(params)))


def exchange_token(
    app: AppCredentials,
    params: Mapping[str, str],
    *,
    expected_state: str | None = None,
    base_url: str | None = None,
    http: HttpClient | None = None,
) -> Installation:
    """Verify the OAuth callback ``params`` and trade its ``code`` for an offline token.

    ``base_url`` overrides ``https://{shop}`` (the emulator). Raises :class:`SignatureError`
    for a forged or stale callback and :class:`AuthenticationError` when Shopify refuses
    the code.
    """
    if not verify_callback(app, params, expected_state):
        raise SignatureError("OAuth callback failed the HMAC, timestamp or state check")
    shop = params.get("shop")
    code = params.get("code")
    if not shop or not code or not shop.endswith(".myshopify.com"):
        raise SignatureError("OAuth callback lacks a valid shop or code")
    client = http or HttpClient("shopify")
    url = f"{(base_url or f'https://{shop}').rstrip('/')}/admin/oauth/access_token"
    try:
        response = client.send_once(
            "POST",
            url,
            json={
                "client_id": app.api_key,
                "client_secret": app.api_secret.get_secret_value(),
                "code": code,
            },
        )
    except AuthenticationError:
        raise
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status == 400:
            raise AuthenticationError(
                "Shopify refused the authorization code", status=400, platform="shopify"
            ) from None
        raise
    body: Any = response.json()
    token = body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise ResponseError(
            "token exchange answer has no access_token",
            status=response.status_code,
            platform="shopify",
        )
    scopes = tuple(s for s in str(body.get("scope", "")).split(",") if s)
    return Installation(shop=shop, access_token=SecretStr(token), scopes=scopes)
