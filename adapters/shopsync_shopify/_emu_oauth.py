"""The OAuth install flow of the emulated shop (authorization code grant).

``/admin/oauth/authorize`` redirects to the app's ``redirect_uri`` with a ``code`` and an
``hmac`` over the other parameters; ``/admin/oauth/access_token`` exchanges the code, once,
for an offline token; ``/admin/oauth/access_scopes.json`` lists what the token was granted
(https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant,
https://shopify.dev/docs/api/admin-rest/latest/resources/accessscope).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from shopsync.testing.server import Request, Response

if TYPE_CHECKING:
    from shopsync_shopify.emulator import ShopifyEmulator

__all__ = ["BAD_TOKEN", "OAuth"]

BAD_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


class OAuth:
    """The OAuth handlers of one emulator; the tokens and codes live on the emulator."""

    def __init__(self, emu: ShopifyEmulator) -> None:
        self.emu = emu

    def callback_hmac(self, params: Mapping[str, str]) -> str:
        """The ``hmac`` Shopify puts on an OAuth callback: hex HMAC-SHA256 of the sorted
        ``key=value`` pairs (all but ``hmac``) joined by ``&``."""
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
        return hmac.new(self.emu.api_secret.encode(), message.encode(), hashlib.sha256).hexdigest()

    def authorize(self, request: Request, params: Mapping[str, str]) -> Response:
        query = request.query
        if query.get("client_id") != self.emu.api_key or not query.get("redirect_uri"):
            return Response.json({"errors": "Invalid client_id or redirect_uri"}, status=400)
        code = secrets.token_hex(16)
        self.emu.codes.add(code)
        callback = {
            "code": code,
            "host": base64.b64encode(f"{self.emu.state.shop}/admin".encode()).decode(),
            "shop": self.emu.state.shop,
            "timestamp": str(int(time.time())),
        }
        if query.get("state"):
            callback["state"] = query["state"]
        callback["hmac"] = self.callback_hmac(callback)
        return Response(302, {"Location": f"{query['redirect_uri']}?{urlencode(callback)}"}, b"")

    def access_scopes(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET /admin/oauth/access_scopes.json``: the scopes the token was granted."""
        if request.headers.get("x-shopify-access-token") not in self.emu.tokens:
            return Response.json({"errors": BAD_TOKEN}, status=401)
        handles = [s for s in self.emu.scopes.split(",") if s]
        return Response.json({"access_scopes": [{"handle": h} for h in handles]})

    def access_token(self, request: Request, params: Mapping[str, str]) -> Response:
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            body = request.json() or {}
        else:
            body = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
            body.update(request.query)
        if (
            body.get("client_id") != self.emu.api_key
            or body.get("client_secret") != self.emu.api_secret
        ):
            return Response.json(
                {"error": "invalid_client", "error_description": "Client credentials are invalid"},
                status=400,
            )
        code = body.get("code")
        if code not in self.emu.codes:
            return Response.json(
                {
                    "error": "invalid_request",
                    "error_description": "The authorization code was not found or was already used",
                },
                status=400,
            )
        self.emu.codes.discard(code)
        token = f"shpat_{secrets.token_hex(16)}"
        self.emu.tokens.add(token)
        return Response.json({"access_token": token, "scope": self.emu.scopes})
