"""Signed links and the one-click unsubscribe: tokens, the suppression record, the WSGI app.

An unsubscribe withholds marketing from the customer from then on and cancels their pending
marketing rows; the delivery-time consent check (:func:`~shopsync.outbox._attempts.withheld`)
reads the same record, so a row recorded before the click is not sent after it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import SecretStr

from shopsync.errors import ConfigurationError, SignatureError
from shopsync.outbox._queue import moment_of
from shopsync.store import NO_SHOP, outbox_rows, times

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "link_page",
    "record_unsubscribe",
    "signed_token",
    "unsubscribe_app",
    "unsubscribe_token",
    "unsubscribe_url",
    "verify_signed_token",
    "verify_unsubscribe_token",
]

log = logging.getLogger("shopsync.outbox")


def _secret_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    value = secret.encode() if isinstance(secret, str) else secret
    if len(value) < 16:
        raise ConfigurationError("the unsubscribe secret must be at least 16 bytes")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed_token(secret: str | bytes | SecretStr, fields: list[str]) -> str:
    """``payload.signature`` (URL-safe) over a list of strings: the one signing of shopsync's
    links (unsubscribe here, double opt-in in :mod:`shopsync.consent`). Each kind of link puts
    a different number of fields, so one kind's token never verifies as another's."""
    payload = _b64(json.dumps(fields).encode())
    signature = hmac.new(_secret_bytes(secret), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify_signed_token(
    secret: str | bytes | SecretStr, token: str, size: int, what: str = "link"
) -> list[str]:
    """The ``size`` fields of a :func:`signed_token`; :class:`SignatureError` if it was not
    signed with ``secret``, is malformed or carries another number of fields."""
    payload, _, signature = token.partition(".")
    expected = hmac.new(_secret_bytes(secret), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        fields = json.loads(_unb64(payload))
    except ValueError:
        raise SignatureError(f"malformed {what} token") from None
    if not hmac.compare_digest(given, expected):
        raise SignatureError(f"{what} token signature does not match")
    if not (isinstance(fields, list) and len(fields) == size):
        raise SignatureError(f"malformed {what} token")
    if not all(isinstance(f, str) for f in fields):
        raise SignatureError(f"malformed {what} token")
    return fields


def unsubscribe_token(
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
) -> str:
    """A signed token naming one customer's channel: ``payload.signature`` (URL-safe).

    It does not expire: CAN-SPAM wants an opt-out link to work for at least 30 days after
    sending, and an old link that still unsubscribes does no harm.
    """
    return signed_token(secret, [platform, shop, customer_id, channel])


def verify_unsubscribe_token(
    secret: str | bytes | SecretStr, token: str
) -> tuple[str, str, str, str]:
    """``(platform, shop, customer_id, channel)`` of a token; :class:`SignatureError` if it
    was not signed with ``secret`` or is malformed."""
    fields = verify_signed_token(secret, token, 4, "unsubscribe")
    return fields[0], fields[1], fields[2], fields[3]


def unsubscribe_url(
    base_url: str,
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
) -> str:
    """The one-click link for a customer: ``{base_url}?token=...``."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}token={unsubscribe_token(secret, platform, shop, customer_id, channel)}"


def record_unsubscribe(
    store: Store,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
    *,
    source: str = "one-click link",
    now: dt.datetime | None = None,
) -> int:
    """Withhold marketing from a customer from now on, and cancel their pending marketing
    rows; returns how many were cancelled. Recording it twice keeps the first time."""
    at = times.to_micros(moment_of(now))
    with store.transaction() as conn:
        # Never create the shop: after shop/redact a late click must not bring it back (the
        # shop's data is gone, so nothing will be sent to anyone there).
        shop_id = store.shop_id(platform, shop, conn, create=False)
        if shop_id == NO_SHOP:
            return 0
        return outbox_rows.suppress(conn, shop_id, customer_id, channel, source, at)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def link_page(
    start_response: Callable[..., Any], status: str, title: str, text: str, form: str = ""
) -> Iterator[bytes]:
    """The small HTML page a link in an email opens (unsubscribe, double opt-in): never
    cached, and no referrer, since the URL carries the customer's token."""
    body = _PAGE.format(title=title, text=text, form=form).encode()
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
        ],
    )
    return iter([body])


def unsubscribe_app(
    store: Store, secret: str | bytes | SecretStr, *, path: str = "/unsubscribe"
) -> Callable[..., Iterator[bytes]]:
    """A WSGI app serving the one-click unsubscribe link of every marketing email.

    ``POST {path}?token=...`` unsubscribes at once: the RFC 8058 one-click request that mail
    clients send (body ``List-Unsubscribe=One-Click``), or the button of the page below.
    ``GET`` only shows that page with the button, because link scanners fetch links in
    mail and must not unsubscribe anyone. A token that does not verify gets 403.
    """
    key = _secret_bytes(secret)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        def answer(status: str, title: str, text: str, form: str = "") -> Iterator[bytes]:
            return link_page(start_response, status, title, text, form)

        if environ.get("PATH_INFO", "") != path:
            return answer("404 Not Found", "Not found", "There is nothing here.")
        method = environ.get("REQUEST_METHOD", "GET")
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        if method not in ("GET", "HEAD", "POST"):
            return answer("405 Method Not Allowed", "Not allowed", "Use the link in the email.")
        try:
            platform, shop, customer_id, channel = verify_unsubscribe_token(key, token)
        except SignatureError:
            return answer("403 Forbidden", "Link not valid", "This unsubscribe link is not valid.")
        if method != "POST":
            action = html.escape(f"{path}?token={token}", quote=True)
            form = (
                f'<form method="post" action="{action}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Unsubscribe</button></form>'
            )
            return answer("200 OK", "Unsubscribe", "Stop marketing emails to this address?", form)
        cancelled = record_unsubscribe(store, platform, shop, customer_id, channel)
        log.info("unsubscribed a customer of %s; %d pending messages cancelled", shop, cancelled)
        return answer(
            "200 OK", "Unsubscribed", "You will not receive marketing emails from us any more."
        )

    return app
