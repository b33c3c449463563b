"""Email actions to customers over SMTP, rendered from Jinja2 templates per action kind.

::

    sink = shopsync.sinks.Email(
        "smtp.example.com", 587, sender="shop@acme.example",
        username="shop@acme.example", password=SecretStr(...), security="starttls",
        brand=Brand(name="Acme", address="1 Main St, Springfield, IL 62701, USA",
                    url="https://acme.example"),
        unsubscribe_url="https://acme.example/unsubscribe", unsubscribe_secret=SecretStr(...),
    )

Each message is multipart (plain text + HTML) and rendered from
``email/<kind>.txt`` / ``email/<kind>.html`` (first ``email/<facts["template"]>.*`` when the
action names one, as an education step does), falling back to ``email/default.*``; a
``templates`` directory of your own is searched first, so any template can be replaced. The
first line of the text template (before ``---8<---``) is the subject. Templates see
``brand``, ``t`` (phrases of the brand's locale: en, de, fr), ``customer_name``, ``reason``,
``facts``, ``details`` (the facts as label/value pairs), ``code``, ``value``,
``expires_on``, ``points``, ``recommendations`` (``facts["recommendations"]``: title, url,
price), ``products`` and ``unsubscribe_url``. HTML templates autoescape, so a customer named
``<script>`` is printed, not run; undefined names are errors, which park the action with the
template's message instead of sending a broken email.

Marketing messages carry ``List-Unsubscribe`` (the one-click URL of
:func:`shopsync.outbox.unsubscribe_app`) and ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058), and the shop's postal address in the footer
(CAN-SPAM); a marketing email without both configured is parked, not sent.

At least once: the ``Message-ID`` is derived from the idempotency key, so a message sent
again after a crash has the same id and mail systems that de-duplicate drop the repeat.
Sending errors: 4xx answers and lost connections are retried, 5xx (a refused recipient, a
rejected message, failed authentication) park the action. The password is a ``SecretStr``:
it never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import re
import smtplib
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import jinja2
from pydantic import SecretStr

from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError
from shopsync.http import redact
from shopsync.models import Product
from shopsync.sinks._base import (
    Cancelled,
    DeliveryContext,
    DeliveryError,
    Guarantee,
    action_value,
    discount_of,
)

__all__ = ["PHRASES", "Brand", "Email", "message_id"]

Security = Literal["starttls", "tls", "none"]

PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "hello": "Hello",
        "hello_anonymous": "Hello",
        "code_value": "Worth",
        "valid_until": "valid until",
        "recommended": "You might also like",
        "visit_shop": "Visit the shop",
        "why": "Why you get this email:",
        "unsubscribe": "Unsubscribe from marketing emails",
        "shipped_subject": "Your order from %(shop)s is on its way",
        "shipped_intro": "Thank you for your order! It has shipped.",
        "shipped_carrier": "Carrier",
        "shipped_number": "Tracking number",
        "shipped_track": "Track your parcel",
        "shipped_no_link": "The carrier gave us no tracking link for this parcel, so we "
        "cannot include one.",
        "education_subject": "Getting the most out of your purchase",
        "education_intro": "A few tips about your purchase:",
        "education_how_to_use": "A few tips to get started with your purchase:",
        "education_care": "How to look after your purchase so that it lasts:",
        "education_pairs": "What goes well with your purchase:",
        "reward_subject": "Your reward code from %(shop)s",
        "reward_intro": "You redeemed %(points)s points. Here is your code:",
        "tier_subject": "Welcome to %(tier)s",
        "tier_intro": "You have reached the %(tier)s tier. Thank you for shopping with us!",
        "expiry_subject": "Your %(points)s points are about to expire",
        "expiry_intro": "Your %(points)s points expire on %(day)s. Shop or redeem before then.",
        "review_subject": "How was your order from %(shop)s?",
        "review_intro": "We hope you are enjoying your purchase. Would you review it?",
        "cart_subject": "You left something in your cart at %(shop)s",
        "cart_intro": "You started a checkout but did not finish it. Your cart is saved:",
        "cart_resume": "Complete your order",
        "browse_subject": "Still thinking it over?",
        "browse_intro": "Here is what you were looking at:",
        "winback_subject": "We miss you at %(shop)s",
        "winback_intro": "It has been a while since your last visit to %(shop)s.",
        "replenish_subject": "Time to restock?",
        "replenish_intro": "You may be running low on something you bought from us.",
        "warranty_subject": "Your warranty ends soon",
        "warranty_intro": "The warranty of your purchase ends on %(day)s.",
    },
    "de": {
        "hello": "Hallo",
        "hello_anonymous": "Hallo",
        "code_value": "Wert",
        "valid_until": "gültig bis",
        "recommended": "Das könnte Ihnen auch gefallen",
        "visit_shop": "Zum Shop",
        "why": "Warum Sie diese E-Mail erhalten:",
        "unsubscribe": "Von Marketing-E-Mails abmelden",
        "shipped_subject": "Ihre Bestellung bei %(shop)s ist unterwegs",
        "shipped_intro": "Vielen Dank für Ihre Bestellung! Sie wurde verschickt.",
        "shipped_carrier": "Versanddienstleister",
        "shipped_number": "Sendungsnummer",
        "shipped_track": "Sendung verfolgen",
        "shipped_no_link": "Der Versanddienstleister hat uns für dieses Paket keinen Link zur "
        "Sendungsverfolgung gegeben.",
        "education_subject": "So haben Sie mehr von Ihrem Kauf",
        "education_intro": "Ein paar Tipps zu Ihrem Kauf:",
        "education_how_to_use": "Ein paar Tipps für den Start mit Ihrem Kauf:",
        "education_care": "So pflegen Sie Ihren Kauf, damit er lange hält:",
        "education_pairs": "Was gut zu Ihrem Kauf passt:",
        "reward_subject": "Ihr Prämien-Code von %(shop)s",
        "reward_intro": "Sie haben %(points)s Punkte eingelöst. Hier ist Ihr Code:",
        "tier_subject": "Willkommen im Status %(tier)s",
        "tier_intro": "Sie haben den Status %(tier)s erreicht. Danke für Ihre Treue!",
        "expiry_subject": "Ihre %(points)s Punkte verfallen bald",
        "expiry_intro": "Ihre %(points)s Punkte verfallen am %(day)s.",
        "review_subject": "Wie war Ihre Bestellung bei %(shop)s?",
        "review_intro": "Wir hoffen, Ihr Einkauf gefällt Ihnen. Möchten Sie ihn bewerten?",
        "cart_subject": "Ihr Warenkorb bei %(shop)s wartet",
        "cart_intro": "Sie haben eine Bestellung begonnen und nicht abgeschlossen. Ihr Warenkorb:",
        "cart_resume": "Bestellung abschließen",
        "browse_subject": "Noch am Überlegen?",
        "browse_intro": "Das haben Sie sich angesehen:",
        "winback_subject": "Wir vermissen Sie bei %(shop)s",
        "winback_intro": "Ihr letzter Besuch bei %(shop)s ist eine Weile her.",
        "replenish_subject": "Zeit zum Nachbestellen?",
        "replenish_intro": "Ihr Vorrat geht vielleicht bald zur Neige.",
        "warranty_subject": "Ihre Garantie endet bald",
        "warranty_intro": "Die Garantie Ihres Kaufs endet am %(day)s.",
    },
    "fr": {
        "hello": "Bonjour",
        "hello_anonymous": "Bonjour",
        "code_value": "Valeur",
        "valid_until": "valable jusqu'au",
        "recommended": "Vous aimerez aussi",
        "visit_shop": "Visiter la boutique",
        "why": "Pourquoi vous recevez cet e-mail :",
        "unsubscribe": "Se désabonner des e-mails marketing",
        "shipped_subject": "Votre commande chez %(shop)s est en route",
        "shipped_intro": "Merci pour votre commande ! Elle a été expédiée.",
        "shipped_carrier": "Transporteur",
        "shipped_number": "Numéro de suivi",
        "shipped_track": "Suivre votre colis",
        "shipped_no_link": "Le transporteur ne nous a donné aucun lien de suivi pour ce colis.",
        "education_subject": "Tirez le meilleur de votre achat",
        "education_intro": "Quelques conseils sur votre achat :",
        "education_how_to_use": "Quelques conseils pour bien démarrer avec votre achat :",
        "education_care": "Comment entretenir votre achat pour qu'il dure :",
        "education_pairs": "Ce qui va bien avec votre achat :",
        "reward_subject": "Votre code de récompense de %(shop)s",
        "reward_intro": "Vous avez utilisé %(points)s points. Voici votre code :",
        "tier_subject": "Bienvenue au niveau %(tier)s",
        "tier_intro": "Vous avez atteint le niveau %(tier)s. Merci de votre fidélité !",
        "expiry_subject": "Vos %(points)s points vont bientôt expirer",
        "expiry_intro": "Vos %(points)s points expirent le %(day)s.",
        "review_subject": "Votre commande chez %(shop)s vous plaît-elle ?",
        "review_intro": "Nous espérons que votre achat vous plaît. Voulez-vous l'évaluer ?",
        "cart_subject": "Votre panier vous attend chez %(shop)s",
        "cart_intro": "Vous avez commencé une commande sans la terminer. Votre panier :",
        "cart_resume": "Terminer ma commande",
        "browse_subject": "Vous hésitez encore ?",
        "browse_intro": "Voici ce que vous regardiez :",
        "winback_subject": "Vous nous manquez chez %(shop)s",
        "winback_intro": "Votre dernière visite chez %(shop)s remonte à un moment.",
        "replenish_subject": "Bientôt à court ?",
        "replenish_intro": "Vous allez peut-être bientôt manquer d'un produit acheté chez nous.",
        "warranty_subject": "Votre garantie se termine bientôt",
        "warranty_intro": "La garantie de votre achat se termine le %(day)s.",
    },
}
"""Phrases per locale; a locale not here falls back to its language, then to English."""


@dataclass(frozen=True)
class Brand:
    """How the shop presents itself in email."""

    name: str
    address: str = ""
    """The shop's postal address, printed in every footer (required for marketing)."""
    url: str | None = None
    logo_url: str | None = None
    color: str = "#1f2937"
    locale: str = "en"
    reply_to: str | None = None
    product_url: str | None = None
    """Link to a product page, with ``{id}`` for the product id
    (``"https://acme.example/products/{id}"``); None: products are not linked."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?", self.color):
            raise ConfigurationError(f"brand color must be #rgb or #rrggbb, not {self.color!r}")


_POLICY = email.policy.SMTP.clone(refold_source="none")
"""SMTP line endings; a header set raw (List-Unsubscribe) goes out as written. The default
policy re-folds a raw header longer than 78 characters into RFC 2047 encoded-words, and a
mail client reading ``=?utf-8?q?=3Chttps...`` finds no URL there, so one-click unsubscribe
(RFC 8058) silently stops working."""


def _header_url(url: str) -> str:
    """A URL that can stand inside ``<...>`` in a header: ASCII, no spaces or brackets, HTTPS
    (RFC 8058 §3.1: the one-click URI MUST be HTTPS; plain http only on this machine)."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if (
        not url.isascii()
        or re.search(r"[\s<>\"]", url)
        or not parts.netloc
        or (parts.scheme != "https" and not local)
    ):
        raise ConfigurationError(
            f"unsubscribe_url must be an https URL in plain ASCII (percent-encode other "
            f"characters), not {url!r}"
        )
    return url


def _list_unsubscribe(url: str) -> str:
    """The header value as it goes on the wire (RFC 2369 §2, RFC 5322 §2.2.3): the URL is
    never split or encoded; a value that would make the first line longer than 78 characters
    starts on a folded continuation line, and no line may pass 998 characters (§2.1.1)."""
    value = f"<{url}>"
    if len("List-Unsubscribe: ") + len(value) <= 78:
        return value
    if len(value) + 1 > 998:
        raise DeliveryError(
            f"the unsubscribe link is {len(url)} characters, too long for a mail header",
            retryable=False,
        )
    return f"\r\n {value}"


def _recovery_url(action: Action, context: DeliveryContext) -> str | None:
    """An abandoned checkout's link back to it, read from the store when the email is built
    (it carries the checkout's token: never in the plan, the outbox or a preview)."""
    checkout_id = getattr(action, "checkout_id", None)
    if not isinstance(checkout_id, str) or context.store is None:
        return None
    from shopsync.store.checkout_recovery import recovery_url

    return recovery_url(context.store, action.platform, action.shop, checkout_id)


def message_id(idempotency_key: str, domain: str) -> str:
    """The Message-ID of an action's email: the same for every attempt."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}.shopsync@{domain}>"


def _phrases(locale: str) -> dict[str, str]:
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return {**PHRASES["en"], **PHRASES.get(locale, PHRASES.get(language, {}))}


class Email:
    """Sends each accepted action as an email to the customer's address (from the store)."""

    guarantee: ClassVar[Guarantee] = "at_least_once"
    contacts_customer: ClassVar[bool] = True
    stage: ClassVar[int] = 1

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        brand: Brand,
        username: str | None = None,
        password: SecretStr | str | None = None,
        security: Security = "starttls",
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        templates: str | Path | None = None,
        unsubscribe_url: str | None = None,
        unsubscribe_secret: SecretStr | str | None = None,
        kinds: set[str] | frozenset[str] | None = None,
        name: str | None = None,
        extra_context: Callable[[Action], Mapping[str, Any]] | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ConfigurationError("security must be 'starttls', 'tls' or 'none'")
        if "@" not in sender:
            raise ConfigurationError(f"sender {sender!r} is not an email address")
        if password is not None and username is None:
            raise ConfigurationError("a password needs a username")
        self.host, self.port, self.security = host, port, security
        self.sender = sender
        self.brand = brand
        self.username = username
        self._password = (
            password if isinstance(password, SecretStr) or password is None else SecretStr(password)
        )
        self._unsubscribe_secret = (
            unsubscribe_secret
            if isinstance(unsubscribe_secret, SecretStr) or unsubscribe_secret is None
            else SecretStr(unsubscribe_secret)
        )
        self.unsubscribe_base = _header_url(unsubscribe_url) if unsubscribe_url else None
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.name = name or "email"  # not the host: moving servers must not send again
        # more template values per action (the survey's signed score links)
        self.extra_context = extra_context
        self.domain = sender.rsplit("@", 1)[1]
        loaders: list[jinja2.BaseLoader] = []
        if templates is not None:
            loaders.append(jinja2.FileSystemLoader(str(templates)))
        loaders.append(jinja2.PackageLoader("shopsync.sinks", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Email(host={self.host!r}, port={self.port}, user={self.username!r})"

    def accepts(self, action: Action) -> bool:
        return self.kinds is None or action.kind in self.kinds

    # ---------------------------------------------------------------- rendering

    def _unsubscribe(self, action: Action) -> str | None:
        if not action.marketing:
            return None
        if not (self.unsubscribe_base and self._unsubscribe_secret and self.brand.address):
            raise DeliveryError(
                "a marketing email needs the shop's postal address (Brand.address) and an "
                "unsubscribe link (unsubscribe_url and unsubscribe_secret)",
                retryable=False,
            )
        from shopsync.outbox import unsubscribe_url

        return unsubscribe_url(
            self.unsubscribe_base,
            self._unsubscribe_secret,
            action.platform,
            action.shop,
            action.customer_id,
        )

    def _context(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        customer = context.customer
        locale = str(action.facts.get("locale") or self.brand.locale)
        discount = discount_of(action)
        value: str | None = None
        expires: str | None = None
        if discount is not None:
            value = str(discount.value.rounded()) if discount.value else f"{discount.percent} %"
            if discount.expires_at is not None:
                expires = discount.expires_at.date().isoformat()
        elif isinstance(action_value(action, "expires_at"), dt.datetime):
            expires = action_value(action, "expires_at").date().isoformat()
        product_ids = list(action_value(action, "product_ids") or ())
        if action_value(action, "product_id"):
            product_ids.append(str(action_value(action, "product_id")))
        simple = (str, int, float, bool)
        return {
            "brand": self.brand,
            "locale": locale,
            "t": _phrases(locale),
            "subject": "",
            "customer_name": (customer.first_name or "").strip() if customer else "",
            "customer": customer,
            "action": action,
            "kind": action.kind,
            "reason": action.reason,
            "facts": action.facts,
            "details": [
                (k.replace("_", " "), v)
                for k, v in sorted(action.facts.items())
                if isinstance(v, simple) and k not in ("locale", "tag")
            ],
            "code": discount.code if discount else None,
            "value": value,
            "expires_on": expires or action.facts.get("expires_on"),
            "points": action_value(action, "points"),
            "to_tier": action_value(action, "to_tier"),
            "products": self._products(action, context, product_ids),
            "recommendations": self._products(
                action, context, list(action_value(action, "recommendations") or ())
            ),
            "unsubscribe_url": self._unsubscribe(action),
            **(self.extra_context(action) if self.extra_context is not None else {}),
            "recovery_url": _recovery_url(action, context),
        }

    def _products(
        self, action: Action, context: DeliveryContext, items: list[Any]
    ) -> list[dict[str, Any]]:
        """Products named by id, looked up in the store (title, price, link); items that are
        already mappings pass through. Unknown products are left out."""
        out: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict):
                out.append({"title": "", "url": None, "price": None, **item})
                continue
            product = context.store.get(Product, action.platform, action.shop, str(item))
            if product is None:
                continue
            prices = [v.price for v in product.variants if v.price is not None]
            url = self.brand.product_url.format(id=product.id) if self.brand.product_url else None
            out.append(
                {
                    "id": product.id,
                    "title": product.title,
                    "price": str(min(prices).rounded()) if prices else None,
                    "url": url,
                    "review_url": url,
                }
            )
        return out

    def _template(self, action: Action, extension: str) -> jinja2.Template:
        """``email/<facts.template>`` when the action names one (an education step), then
        ``email/<kind>``, then ``email/default``."""
        names = [f"email/{action.kind}.{extension}", f"email/default.{extension}"]
        own = action.facts.get("template")
        if isinstance(own, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", own):
            names.insert(0, f"email/{own}.{extension}")
        return self.env.select_template(names)

    def build(self, action: Action, context: DeliveryContext) -> EmailMessage:
        """The message for an action (raises :class:`Cancelled` without a recipient and a
        non-retryable :class:`DeliveryError` for a template error)."""
        customer = context.customer
        if customer is None or not customer.email:
            raise Cancelled("the customer has no email address")
        values = self._context(action, context)
        try:
            text = self._template(action, "txt").render(values)
            subject, _, body = text.partition("---8<---")
            subject = " ".join(subject.split())[:250]
            values["subject"] = subject
            html = self._template(action, "html").render(values)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "name", None) or getattr(exc, "filename", None) or ""
            raise DeliveryError(
                f"email template error {where}: {type(exc).__name__}: {exc}", retryable=False
            ) from None
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = subject
        message["From"] = Address(self.brand.name, addr_spec=self.sender)
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        try:
            # The header classes refuse CR/LF in a name and an address they cannot parse, so
            # neither can add a header; such a customer is not reachable by email.
            message["To"] = Address(name, addr_spec=customer.email)
        except (ValueError, TypeError):
            raise Cancelled("the customer's name or email cannot be put in a To header") from None
        if self.brand.reply_to:
            message["Reply-To"] = self.brand.reply_to
        message["Date"] = format_datetime(context.now)
        message["Message-ID"] = message_id(action.idempotency_key, self.domain)
        message["X-Shopsync-Kind"] = action.kind  # as the webhook sink's header: for analytics
        if values["unsubscribe_url"]:
            message.set_raw("List-Unsubscribe", _list_unsubscribe(values["unsubscribe_url"]))
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(re.sub(r"\n{3,}", "\n\n", body.strip()) + "\n")
        message.add_alternative(html, subtype="html")
        return message

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        message = self.build(action, context)
        text = message.get_body(("plain",))
        return {
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "list_unsubscribe": (
                " ".join(str(message["List-Unsubscribe"]).split())
                if message["List-Unsubscribe"] is not None
                else None
            ),
            # a preview is shown to people: the checkout's recovery link (a bearer token) is not
            "text": redact(text.get_content(), [_recovery_url(action, context)])
            if text is not None
            else "",
        }

    # ---------------------------------------------------------------- sending

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username is not None:
                password = self._password.get_secret_value() if self._password else ""
                smtp.login(self.username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, message: EmailMessage) -> dict[str, Any]:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                refused = self._smtp.send_message(message)
            except smtplib.SMTPServerDisconnected:
                self._smtp = None
                if attempt == 2:
                    raise
                continue  # a kept-alive connection the server dropped: reconnect once
            return {"refused": sorted(refused)} if refused else {}
        raise AssertionError("unreachable")  # pragma: no cover

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        message = self.build(action, context)
        with self._lock:
            try:
                extra = self._send(message)
            except smtplib.SMTPRecipientsRefused as exc:
                self.close()
                codes = sorted({code for code, _ in exc.recipients.values()})
                raise DeliveryError(
                    f"SMTP server refused the recipient ({codes})",
                    retryable=all(400 <= c < 500 for c in codes),
                ) from None
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                raise DeliveryError(
                    f"SMTP authentication failed ({exc.smtp_code})", retryable=False
                ) from None
            except smtplib.SMTPResponseException as exc:
                self.close()
                raise DeliveryError(
                    f"SMTP server answered {exc.smtp_code}: {_text(exc.smtp_error)}",
                    retryable=400 <= exc.smtp_code < 500,
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                self.close()
                raise DeliveryError(f"SMTP connection failed: {type(exc).__name__}") from None
        return {"message_id": str(message["Message-ID"]), **extra}

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
