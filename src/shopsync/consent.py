"""Marketing consent recorded outside the platform: an imported list and shopsync's own double
opt-in link.

WooCommerce core keeps no consent, and some newsletter plugins keep it where its API cannot
see (MailPoet's own tables, Klaviyo's servers): see :mod:`shopsync_woocommerce.consent`. A
store then gets consent from here, with the same meaning as a platform's (a
:class:`~shopsync.models.ConsentState`, an opt-in level and a date) and its source recorded
beside it. Platform records that say nothing about consent never erase what is recorded here
(:meth:`shopsync.store.Store.upsert` keeps what it knows).

- :func:`import_consent` reads a CSV of ``email,state,date,source`` (an optional
  ``opt_in_level`` column). A row never overrides what the store learned later: a stored
  consent dated after the row (or a row without a date over a dated stored consent) stays,
  and a redacted customer stays redacted. Every bad row is reported with its line; the
  others are applied. Running the same file again changes nothing.
- :func:`subscribe_url` / :func:`subscribe_app`: a signed, expiring confirmation link
  (signed as the unsubscribe link is, :func:`shopsync.outbox.signed_token`). ``GET`` shows a
  button, because mail scanners fetch links; ``POST`` records ``subscribed`` /
  ``confirmed_opt_in`` dated now, with source ``double opt-in``, and lifts an earlier
  one-click unsubscribe of that channel, the customer having asked again; a link issued
  before the customer's latest unsubscribe is refused, so an old link cannot undo it.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import SecretStr

from shopsync._renamed import old_name
from shopsync.errors import ConfigurationError, SignatureError
from shopsync.models import ConsentState, Customer, MarketingConsent, OptInLevel
from shopsync.outbox import signed_token, verify_signed_token
from shopsync.outbox._unsubscribe import link_page

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "DOUBLE_OPT_IN",
    "SUBSCRIBE_LINK_MAX_AGE",
    "ImportResult",
    "consent_summary",
    "import_consent",
    "subscribe_app",
    "subscribe_token",
    "subscribe_url",
    "verify_subscribe_token",
]

log = logging.getLogger(__name__)

DOUBLE_OPT_IN = "double opt-in"
SUBSCRIBE_LINK_MAX_AGE = dt.timedelta(days=7)
"""A confirmation link older than this is refused: a double opt-in is asked for and answered
within days, and an old link found in a mailbox should not subscribe anyone."""

_STATES = {
    **{s.value: s for s in ConsentState if s is not ConsentState.REDACTED},
    # spellings of common exports (MailPoet's subscriber statuses, Mailchimp's audience CSV)
    "unconfirmed": ConsentState.PENDING,
    "cleaned": ConsentState.NOT_SUBSCRIBED,
    "bounced": ConsentState.NOT_SUBSCRIBED,
    "inactive": ConsentState.NOT_SUBSCRIBED,
    "opted_in": ConsentState.SUBSCRIBED,
    "opted_out": ConsentState.UNSUBSCRIBED,
}


@dataclass
class ImportResult:
    """What :func:`import_consent` did, row by row."""

    rows: int = 0
    applied: int = 0
    """Customer consents changed."""
    unchanged: int = 0
    """Rows the store already held as written."""
    older: int = 0
    """Rows the store holds a later consent for (kept)."""
    unmatched: int = 0
    """Rows whose address matches no stored customer (sync first)."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason) of every row refused."""


def _date(text: str, assume: dt.tzinfo | None) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        if assume is None:
            raise ValueError(f"{text!r} has no UTC offset (pass the list's timezone)")
        value = value.replace(tzinfo=assume)
    return value.astimezone(dt.timezone.utc)


def _row(row: dict[str, Any], assume: dt.tzinfo | None) -> tuple[str, MarketingConsent]:
    email = (row.get("email") or "").strip()
    if "@" not in email:
        raise ValueError(f"{email[:80]!r} is not an e-mail address")
    raw_state = (row.get("state") or "").strip().lower().replace(" ", "_").replace("-", "_")
    state = _STATES.get(raw_state)
    if state is None:
        raise ValueError(f"{raw_state[:40]!r} is not a consent state")
    raw_level = (row.get("opt_in_level") or "").strip().lower() or "unknown"
    try:
        level = OptInLevel(raw_level)
    except ValueError:
        raise ValueError(f"{raw_level[:40]!r} is not an opt-in level") from None
    return email, MarketingConsent(
        state=state, opt_in_level=level, updated_at=_date(row.get("date") or "", assume)
    )


def _stale(held: MarketingConsent, new: MarketingConsent) -> bool:
    """Whether the stored consent is at least as recent as the row (the row is then kept out)."""
    if held.state is ConsentState.REDACTED:
        return True
    if held == new:
        return False  # already held as written: counted as unchanged
    if held.state is ConsentState.UNKNOWN or held.updated_at is None:
        return False
    return new.updated_at is None or new.updated_at <= held.updated_at


def import_consent(
    store: Store,
    platform: str,
    shop: str,
    path: str | Path,
    *,
    channel: str = "email",
    timezone: dt.tzinfo | None = None,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Record the consents of a CSV list (see the module docstring) for the stored customers
    of one shop, matched by e-mail address without regard to case."""
    report = ImportResult()
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as exc:
        raise ConfigurationError(f"cannot read the consent list {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        fields = {(f or "").strip().lower() for f in reader.fieldnames or ()}
        if not {"email", "state"} <= fields:
            raise ConfigurationError(
                f"{path}: the consent list needs a header with at least email and state "
                "(email,state,date,source; optional opt_in_level)"
            )
        parsed: list[tuple[int, str, MarketingConsent, str]] = []
        for row in reader:
            report.rows += 1
            clean = {(k or "").strip().lower(): v for k, v in row.items() if isinstance(v, str)}
            try:
                email, consent = _row(clean, timezone)
            except ValueError as exc:
                report.errors.append((reader.line_num, str(exc)))
                continue
            origin = (clean.get("source") or "").strip() or Path(path).name
            parsed.append((reader.line_num, email, consent, f"import: {origin}"))
    ids = store.customer_ids_by_email(platform, shop, (email for _, email, _, _ in parsed))
    for _, email, consent, source in parsed:
        matched = ids.get(email.lower(), [])
        if not matched:
            report.unmatched += 1
            continue
        for customer_id in matched:
            customer = store.get(Customer, platform, shop, customer_id)
            held = getattr(customer.consent, channel) if customer else MarketingConsent()
            if _stale(held, consent):
                report.older += 1
                continue
            changed = store.set_consent(  # checked again under the shop's lock
                platform,
                shop,
                customer_id,
                channel,
                consent,
                source=source,
                now=now,
                newer_only=True,
            )
            if changed:
                report.applied += 1
            else:
                report.unchanged += 1
    return report


# ---------------------------------------------------------------------------- double opt-in


def subscribe_token(
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
    *,
    issued_at: dt.datetime | None = None,
) -> str:
    """A signed confirmation token for one customer's channel, dated when it was issued."""
    at = (issued_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    stamp = at.isoformat(timespec="seconds")
    return signed_token(secret, ["subscribe", platform, shop, customer_id, channel, stamp])


def verify_subscribe_token(
    secret: str | bytes | SecretStr,
    token: str,
    *,
    now: dt.datetime | None = None,
    max_age: dt.timedelta = SUBSCRIBE_LINK_MAX_AGE,
) -> tuple[str, str, str, str]:
    """``(platform, shop, customer_id, channel)``; :class:`SignatureError` for a token not
    signed with ``secret``, malformed, or issued more than ``max_age`` ago (or in the future
    by more than a minute: a clock off is not a reason to accept a forged date)."""
    return _verify(secret, token, now=now, max_age=max_age)[:4]


def _verify(
    secret: str | bytes | SecretStr, token: str, *, now: dt.datetime | None, max_age: dt.timedelta
) -> tuple[str, str, str, str, dt.datetime]:
    kind, platform, shop, customer_id, channel, stamp = verify_signed_token(
        secret, token, 6, "subscribe"
    )
    if kind != "subscribe":
        raise SignatureError("malformed subscribe token")
    try:
        issued = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise SignatureError("malformed subscribe token") from None
    moment = now or dt.datetime.now(dt.timezone.utc)
    if issued.tzinfo is None or not (
        moment - max_age <= issued <= moment + dt.timedelta(minutes=1)
    ):
        raise SignatureError("subscribe link expired")
    return platform, shop, customer_id, channel, issued


def subscribe_url(
    base_url: str,
    secret: str | bytes | SecretStr,
    platform: str,
    shop: str,
    customer_id: str,
    channel: str = "email",
    *,
    issued_at: dt.datetime | None = None,
) -> str:
    """The confirmation link to send a customer who asked to subscribe: ``{base}?token=``."""
    sep = "&" if "?" in base_url else "?"
    token = subscribe_token(secret, platform, shop, customer_id, channel, issued_at=issued_at)
    return f"{base_url}{sep}token={token}"


def subscribe_app(
    store: Store,
    secret: str | bytes | SecretStr,
    *,
    path: str = "/subscribe",
    max_age: dt.timedelta = SUBSCRIBE_LINK_MAX_AGE,
    clock: Callable[[], dt.datetime] | None = None,
) -> Callable[..., Iterator[bytes]]:
    """A WSGI app serving the double opt-in confirmation link (see the module docstring)."""
    now = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        def answer(status: str, title: str, text: str, form: str = "") -> Iterator[bytes]:
            return link_page(start_response, status, title, text, form)

        if environ.get("PATH_INFO", "") != path:
            return answer("404 Not Found", "Not found", "There is nothing here.")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return answer("405 Method Not Allowed", "Not allowed", "Use the link in the email.")
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        moment = now()
        try:
            platform, shop, customer_id, channel, issued = _verify(
                secret, token, now=moment, max_age=max_age
            )
        except SignatureError as exc:
            if "expired" in str(exc):
                return answer("410 Gone", "Link expired", "Please subscribe again.")
            return answer("403 Forbidden", "Link not valid", "This link is not valid.")
        if method != "POST":
            action = html.escape(f"{path}?token={token}", quote=True)
            form = (
                f'<form method="post" action="{action}">'
                '<button type="submit">Yes, subscribe me</button></form>'
            )
            return answer("200 OK", "Confirm", "Confirm that you want our newsletter?", form)
        quit_at = store.suppressed_at(platform, shop, customer_id, channel)
        if quit_at is not None and quit_at >= issued:
            # unsubscribed after this link was sent: an old link must not undo that
            return answer("409 Conflict", "Link outdated", "Please subscribe again.")
        consent = MarketingConsent(
            state=ConsentState.SUBSCRIBED,
            opt_in_level=OptInLevel.CONFIRMED_OPT_IN,
            updated_at=moment,
        )
        recorded = store.set_consent(
            platform,
            shop,
            customer_id,
            channel,
            consent,
            source=DOUBLE_OPT_IN,
            now=moment,
            lift_suppression=True,
            suppressed_before=issued,  # a click after the check above stays
        )
        if recorded is None:
            return answer("404 Not Found", "Not found", "We do not know this subscription.")
        log.info("double opt-in confirmed for a customer of %s", shop)
        return answer("200 OK", "Subscribed", "Thank you: you are subscribed.")

    return app


def consent_summary(counts: Any) -> str:
    """One line for the CLI and the report: how many customers e-mail marketing can reach and
    why the others cannot; it starts with ``NO MARKETING CONSENT`` when none can."""
    if not counts.customers:
        return "marketing consent: no customers stored yet"
    states = ", ".join(f"{state} {n:,}" for state, n in sorted(counts.by_state.items()))
    why = f"{states}; no e-mail {counts.no_email:,}; unsubscribed by link {counts.suppressed:,}"
    if counts.contactable == 0:
        return (
            f"NO MARKETING CONSENT: 0 of {counts.customers:,} customers can be e-mailed ({why}). "
            "A WooCommerce store needs its newsletter plugin in consent_sources, an imported "
            "list (shopsync consent import FILE) or double opt-ins."
        )
    sources = ", ".join(f"{s} {n:,}" for s, n in sorted(counts.by_source.items()))
    return (
        f"marketing consent: {counts.contactable:,} of {counts.customers:,} customers can be "
        f"e-mailed (consent from {sources}; {why})"
    )


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
