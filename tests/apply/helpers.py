"""Shared pieces of the apply tests: actions, a loopback SMTP server, a webhook receiver."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shopsync.core.actions import Action, RewardCode, TierChange
from shopsync.models import Customer, MarketingConsent, Money

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


class Nudge(Action):
    """A marketing action of a kind no template knows (rendered generically)."""

    kind: str = "nudge"
    marketing: bool = True


def customer(
    customer_id: str,
    *,
    platform: str = "shopify",
    shop: str = "acme.myshopify.com",
    consent: str = "subscribed",
    **fields: Any,
) -> Customer:
    values: dict[str, Any] = {
        "platform": platform,
        "shop": shop,
        "id": customer_id,
        "email": f"c{customer_id}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "created_at": NOW - dt.timedelta(days=400),
        "updated_at": NOW - dt.timedelta(days=10),
        "consent": {"email": MarketingConsent(state=consent)},
    }
    values.update(fields)
    return Customer.model_validate(values)


def nudge(customer_id: str, n: int = 1, *, shop: str = "acme.myshopify.com", **kw: Any) -> Nudge:
    values: dict[str, Any] = {
        "platform": "shopify",
        "shop": shop,
        "customer_id": customer_id,
        "due_at": NOW - dt.timedelta(hours=1),
        "reason": "you have not ordered for 90 days",
        "facts": {"days_since_order": 90},
        "idempotency_key": f"nudge:{shop}:{customer_id}:{n}",
    }
    values.update(kw)
    return Nudge(**values)


def reward(platform: str, shop: str, customer_id: str, n: int = 1, **kw: Any) -> RewardCode:
    values: dict[str, Any] = {
        "platform": platform,
        "shop": shop,
        "customer_id": customer_id,
        "due_at": NOW,
        "reason": "redeemed 500 points for 5.00 USD",
        "facts": {"points": 500},
        "idempotency_key": f"loyalty_reward_code:{shop}:{customer_id}:{n}",
        "code": f"LOYAL-{customer_id}X{n}",
        "value": Money.of("5.00", "USD"),
        "points": 500,
    }
    values.update(kw)
    return RewardCode(**values)


def tier(platform: str, shop: str, customer_id: str, **kw: Any) -> TierChange:
    values: dict[str, Any] = {
        "platform": platform,
        "shop": shop,
        "customer_id": customer_id,
        "due_at": NOW,
        "reason": "entered the gold tier",
        "idempotency_key": f"loyalty_tier_change:{shop}:{customer_id}:gold",
        "from_tier": "silver",
        "to_tier": "gold",
    }
    values.update(kw)
    return TierChange(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- SMTP


class _Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        self.raw.append(bytes(envelope.original_content))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Collect
    logins: list[tuple[str, str]] = field(default_factory=list)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages


@contextmanager
def smtp_server(
    *, auth: tuple[str, str] | None = None, tls_context: Any = None
) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that parses what it receives; with
    ``tls_context`` it offers STARTTLS, with ``auth`` it requires that login."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    handler = _Collect()
    port = free_port()
    server = SmtpServer("127.0.0.1", port, handler)
    kwargs: dict[str, Any] = {}
    if auth is not None:

        def authenticator(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == auth
            )
            if ok:
                server.logins.append((data.login.decode(), mechanism))
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_require_tls=tls_context is not None)
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def self_signed(tmp_path: Any) -> tuple[Any, Any]:
    """(server SSL context, client SSL context trusting it) for 127.0.0.1."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
        .not_valid_after(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


# ----------------------------------------------------------------------------- webhooks


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP endpoint on 127.0.0.1 recording POSTs; ``script`` holds the answers to give
    (status, delay seconds, body), then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[tuple[int, float, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    status, delay, answer = (
                        outer.script.pop(0) if outer.script else (200, 0.0, b'{"ok":true}')
                    )
                    if status < 300:
                        outer.received.append(Received(dict(self.headers.items()), body))
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/shopsync"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
