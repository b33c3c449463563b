"""The email sink against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from shopsync.outbox import apply, list_outbox, verify_unsubscribe_token
from shopsync.sinks import Brand, Email
from shopsync.sinks.email import message_id
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge, reward, self_signed, smtp_server, tier
from tests.apply.stubs import CodesCreated

SHOP = "acme.myshopify.com"
SECRET = "unsubscribe-secret-0123456789"
BRAND = Brand(
    name="Acme Outfitters",
    address="1 Main St, Springfield, IL 62701, USA",
    url="https://acme.example",
    color="#0f766e",
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert(
        [
            customer("1"),
            customer("2", first_name="<script>alert(1)</script>", last_name="O'Brien & Co"),
            customer("3", email=None),
            customer("4", consent="unsubscribed"),
            customer("5", email="refused@example.com"),
        ]
    )
    return s


def email_sink(port: int, **kw: object) -> Email:
    options: dict[str, object] = {
        "sender": "shop@acme.example",
        "brand": BRAND,
        "security": "none",
        "unsubscribe_url": "https://acme.example/unsubscribe",
        "unsubscribe_secret": SECRET,
    }
    options.update(kw)
    return Email("127.0.0.1", port, **options)  # type: ignore[arg-type]


def test_messages_are_multipart_branded_and_carry_one_click_unsubscribe(store: Store) -> None:
    with smtp_server() as server:
        sink = email_sink(server.port)
        codes = CodesCreated()  # the code exists on the platform before the email names it
        actions = [nudge("1"), reward("shopify", SHOP, "1")]
        report = apply(actions, store, [codes, sink], now=NOW)
        sink.close()
    assert report.delivered == 3 and codes.created == ["LOYAL-1X1"], list_outbox(store)
    # the counts say deliveries (an action and a sink), not actions
    assert str(report).startswith("3 deliveries recorded in the outbox, 3 delivered")
    marketing, code = server.messages
    assert marketing["To"] == "Ada Lovelace <c1@example.com>"
    assert marketing["From"] == "Acme Outfitters <shop@acme.example>"
    assert marketing["Message-ID"] == message_id(nudge("1").idempotency_key, "acme.example")
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = marketing["List-Unsubscribe"].strip().strip("<>")  # folded: leading space
    assert link.startswith("https://acme.example/unsubscribe?token=")
    assert verify_unsubscribe_token(SECRET, link.split("token=")[1]) == (
        "shopify",
        SHOP,
        "1",
        "email",
    )
    text = marketing.get_body(("plain",)).get_content()
    html = marketing.get_body(("html",)).get_content()
    for body in (text, html):
        assert "1 Main St, Springfield, IL 62701, USA" in body
        assert "you have not ordered for 90 days" in body
    assert link in text and "#0f766e" in html
    # the reward code: transactional, no unsubscribe header, the code in both parts
    assert code["Subject"] == "Your reward code from Acme Outfitters"
    assert code["List-Unsubscribe"] is None
    assert "LOYAL-1X1" in code.get_body(("plain",)).get_content()
    assert "LOYAL-1X1" in code.get_body(("html",)).get_content()
    assert "5.00 USD" in code.get_body(("plain",)).get_content()
    rows = list_outbox(store, status="done")
    assert rows[0].result == {"message_id": marketing["Message-ID"]}


def test_html_in_customer_data_renders_inert(store: Store) -> None:
    with smtp_server() as server:
        apply([nudge("2")], store, [email_sink(server.port)], now=NOW)
    (message,) = server.messages
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in message.get_body(("plain",)).get_content()


def test_locale_and_per_kind_templates(store: Store) -> None:
    german = Brand(name="Acme", address="Hauptstr. 1, 10115 Berlin", locale="de")
    with smtp_server() as server:
        apply([tier("shopify", SHOP, "1")], store, [email_sink(server.port, brand=german)], now=NOW)
    (message,) = server.messages
    assert message["Subject"] == "Willkommen im Status gold"
    assert "Hallo Ada" in message.get_body(("plain",)).get_content()


def test_resending_after_a_crash_keeps_the_message_id(store: Store) -> None:
    from shopsync.store.schema import outbox

    with smtp_server() as server:
        sink = email_sink(server.port)
        apply([nudge("1")], store, [sink], now=NOW)
        with store.transaction() as conn:  # as if the process died before settling
            conn.execute(outbox.update().values(status="pending"))
        apply([nudge("1")], store, [sink], now=NOW)
    first, second = server.messages
    assert first["Message-ID"] == second["Message-ID"]


def test_bad_cases_are_parked_or_cancelled_and_the_rest_sent(store: Store, tmp_path: Path) -> None:
    broken = tmp_path / "templates" / "email"
    broken.mkdir(parents=True)
    (broken / "nudge.txt").write_text(
        '{% extends "email/base.txt" %}{% block body %}{{ nope.x }}{% endblock %}'
    )
    with smtp_server() as server:
        server.handler.refuse.add("refused@example.com")
        ok_sink = email_sink(server.port, name="mail")
        apply(
            [nudge("1"), nudge("3"), nudge("4"), nudge("5")],
            store,
            [ok_sink],
            now=NOW,
        )
        templated = email_sink(server.port, name="mail-custom", templates=tmp_path / "templates")
        apply([nudge("1", 2)], store, [templated], now=NOW)
    rows = {(r.sink, r.customer_id): r for r in list_outbox(store)}
    assert rows[("mail", "1")].status == "done"
    assert (rows[("mail", "3")].status, rows[("mail", "3")].reason) == (
        "cancelled",
        "the customer has no email address",
    )
    assert rows[("mail", "4")].status == "cancelled"
    assert rows[("mail", "5")].status == "parked"
    assert "refused the recipient ([550])" in (rows[("mail", "5")].reason or "")
    custom = rows[("mail-custom", "1")]
    assert custom.status == "parked" and "template error" in (custom.reason or "")
    assert "'nope' is undefined" in (custom.reason or "")
    assert len(server.messages) == 1


def test_marketing_needs_an_address_and_an_unsubscribe_link(store: Store) -> None:
    with smtp_server() as server:
        sink = email_sink(server.port, brand=Brand(name="Acme"), unsubscribe_secret=None)
        apply([nudge("1")], store, [sink], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "parked" and "postal address" in (row.reason or "")
    assert server.messages == []


def test_starttls_and_auth_and_the_password_never_shows(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_ctx, client_ctx = self_signed(tmp_path)
    password = "s3cret-smtp-password"
    caplog.set_level(logging.DEBUG)
    with smtp_server(auth=("mailer", password), tls_context=server_ctx) as server:
        sink = email_sink(
            server.port,
            security="starttls",
            ssl_context=client_ctx,
            username="mailer",
            password=SecretStr(password),
        )
        assert password not in repr(sink) and password not in repr(vars(sink))
        report = apply([nudge("1")], store, [sink], now=NOW)
        assert report.delivered == 1
        wrong = email_sink(
            server.port,
            name="wrong",
            security="starttls",
            ssl_context=client_ctx,
            username="mailer",
            password="not-the-password",
        )
        apply([nudge("1", 2)], store, [wrong], now=NOW)
    assert server.logins and server.logins[0][0] == "mailer"
    (parked,) = list_outbox(store, status="parked")
    assert parked.reason == "SMTP authentication failed (535)"
    assert password not in caplog.text and "not-the-password" not in caplog.text
    assert all(password not in str(r.reason) for r in list_outbox(store))


def test_smtp_down_is_retried_later(store: Store) -> None:
    from tests.apply.helpers import free_port

    sink = email_sink(free_port())
    report = apply([nudge("1")], store, [sink], now=NOW)
    assert report.failed == 1
    (row,) = list_outbox(store)
    assert (
        row.status == "pending" and row.reason == "SMTP connection failed: ConnectionRefusedError"
    )


def test_dry_run_shows_the_message(store: Store) -> None:
    sink = email_sink(1)
    report = apply([nudge("1")], store, [sink], now=NOW, dry_run=True)
    (delivery,) = report.deliveries
    assert delivery.status == "send" and delivery.payload is not None
    assert delivery.payload["to"] == "Ada Lovelace <c1@example.com>"
    assert "you have not ordered for 90 days" in delivery.payload["text"]


def _raw_headers(raw: bytes) -> list[bytes]:
    """The header section as it went over the wire, one entry per folded line."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def test_a_long_unsubscribe_link_goes_out_plain_ascii_and_folded(store: Store) -> None:
    # RFC 8058 one-click: mail clients read List-Unsubscribe as angle-bracketed URLs
    # (RFC 2369 §2); an RFC 2047 encoded-word (=?utf-8?q?=3Chttps...) is not a URL to them.
    base = "https://mail.acme-outfitters.example/preferences/email/unsubscribe/one-click"
    with smtp_server() as server:
        sink = email_sink(server.port, unsubscribe_url=base)
        report = apply([nudge("1")], store, [sink], now=NOW)
        sink.close()
    assert report.delivered == 1
    (raw,) = server.handler.raw
    lines = _raw_headers(raw)
    assert all(line.isascii() for line in lines)
    assert all(len(line) <= 998 for line in lines)  # RFC 5322 §2.1.1: MUST
    start = next(i for i, line in enumerate(lines) if line.startswith(b"List-Unsubscribe:"))
    folded = [lines[start]]
    folded += itertools.takewhile(lambda line: line[:1] in (b" ", b"\t"), lines[start + 1 :])
    header = b"".join(folded)
    assert b"=?" not in header
    value = header.split(b":", 1)[1].strip().decode()
    (message,) = server.messages
    link = message["List-Unsubscribe"].strip().strip("<>")
    assert value == f"<{link}>" and link.startswith(base + "?token=")
    assert verify_unsubscribe_token(SECRET, link.split("token=")[1]) == (
        "shopify",
        SHOP,
        "1",
        "email",
    )
    # folded at whitespace only (RFC 5322 §2.2.3): the URL itself is on one line
    assert len(lines[start]) + sum(len(x) for x in folded[1:]) > 78
    assert any(f"<{link}>".encode() in line for line in folded)
    post = [line for line in lines if line.startswith(b"List-Unsubscribe-Post:")]
    assert post == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]


def test_an_unsubscribe_url_that_cannot_be_a_header_is_refused() -> None:
    from shopsync.errors import ConfigurationError

    for bad in ("https://acme.example/désabonner", "https://acme.example/a b", "mailto:x"):
        with pytest.raises(ConfigurationError, match="unsubscribe_url"):
            email_sink(25, unsubscribe_url=bad)


def test_an_unsubscribe_link_too_long_for_a_header_line_is_parked(store: Store) -> None:
    base = "https://acme.example/" + "u" * 980  # with the token, past 998 characters a line
    with smtp_server() as server:
        apply([nudge("1")], store, [email_sink(server.port, unsubscribe_url=base)], now=NOW)
    (row,) = list_outbox(store)
    assert row.status == "parked" and "too long for a mail header" in (row.reason or "")
    assert server.messages == []
