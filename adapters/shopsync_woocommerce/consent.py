"""Where a WooCommerce store keeps marketing consent, since WooCommerce core keeps none.

WooCommerce core has no marketing-consent field on customers or orders (the wc/v3 customer
schema lists none: woocommerce-rest-api-docs ``source/includes/wp-api-v3/_customers.md``), so a
plain store's customers are all ``unknown`` and nothing is ever sent to them. Stores record
consent through a newsletter plugin; the ones that keep it in WordPress meta are read here,
from the customer's ``meta_data`` (wc/v3 serves every user meta key that is not WooCommerce's
own: ``WC_Customer_Data_Store::read_meta`` / ``exclude_internal_meta_keys`` in
woocommerce/woocommerce ``includes/data-stores/class-wc-customer-data-store.php``).

=====================  ==========================================  ==============================
source (setting name)  meta key(s) and values                      where it is written
=====================  ==========================================  ==============================
``shopsync``           ``_shopsync_marketing_consent``: JSON       shopsync's own format (the
                       ``{"email": {state, opt_in_level,           store owner's code or a
                       updated_at}, "sms": {...}}``                migration writes it)
``mailchimp``          ``mailchimp_woocommerce_is_subscribed``:    mailchimp/mc-woocommerce
                       ``1`` subscribed, ``0`` not subscribed,     ``includes/class-mailchimp-
                       ``unsubscribed``; SMS                       woocommerce-newsletter.php``
                       ``mailchimp_woocommerce_sms_subscribed``    ``handleStatus`` /
                       (true when the box was ticked)              ``handleSmsStatus`` (user meta
                                                                   and order meta at checkout);
                                                                   ``admin/user-profile/
                                                                   mailchimp-user-profile.php``
``constant_contact``   ``cc_woo_customer_agrees_to_marketing``:    WebDevStudios Constant Contact
                       ``yes`` / ``no``                            for WooCommerce, ``Meta\\
                                                                   NewsletterPreference`` (user
                                                                   meta and order meta)
``meta:<key>``         any other key: ``1``/``yes``/``true``/      a store's own checkbox
                       ``subscribed`` -> subscribed; ``0``/``no``/
                       ``false`` -> not subscribed;
                       ``unsubscribed`` -> unsubscribed
=====================  ==========================================  ==============================

Plugins that keep consent outside WooCommerce cannot be read through its API: MailPoet keeps
subscribers in its own tables (``MailPoet\\WooCommerce\\Subscription::handleSubscriberOptin``
sets a ``SubscriberEntity`` status, no user or order meta), and Klaviyo posts its checkout
checkbox (``kl_newsletter_checkbox``) straight to Klaviyo. For those, export the list from the
plugin and import it (:mod:`shopsync.consent`, ``shopsync consent import FILE``), or use
shopsync's double opt-in link.

A plugin checkbox is a single opt-in; its meta carries no date, so the consent's
``updated_at`` is None (the store then dates it from the sync that first saw it). A customer
carrying none of the configured keys gets ``unknown``, which the store reads as "this
payload says nothing about consent" and never lets erase a consent it holds (an import, a
confirmed double opt-in).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shopsync.errors import ConfigurationError
from shopsync.models import Consent, ConsentState, MarketingConsent, OptInLevel

__all__ = [
    "DEFAULT_SOURCES",
    "KNOWN_SOURCES",
    "SHOPSYNC_KEY",
    "consent_from_meta",
    "plugin_meta",
    "resolve_sources",
]

SHOPSYNC_KEY = "_shopsync_marketing_consent"

KNOWN_SOURCES: Mapping[str, tuple[str | None, str | None]] = {
    "shopsync": (SHOPSYNC_KEY, None),
    "mailchimp": ("mailchimp_woocommerce_is_subscribed", "mailchimp_woocommerce_sms_subscribed"),
    "constant_contact": ("cc_woo_customer_agrees_to_marketing", None),
}
"""Source name -> (email meta key, SMS meta key)."""

DEFAULT_SOURCES: tuple[str, ...] = ("shopsync", "mailchimp", "constant_contact")
"""Read when the shop's settings do not name its sources: every known key (a key a store does
not have costs nothing; the first source that says something wins, in this order)."""

_YES = {"1", "yes", "true", "subscribed", "on"}
_NO = {"0", "no", "false", "not_subscribed", "off"}
_GONE = {"unsubscribed"}


class ConsentMetaError(ValueError):
    """A consent meta value that cannot be read (the record is quarantined with its key)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


def resolve_sources(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The ``consent_sources`` setting as a tuple of source names.

    None means :data:`DEFAULT_SOURCES`; ``"none"`` (or an empty list) reads no meta at all; a
    comma-separated string is accepted as written in a TOML string or on the command line.
    """
    if value is None:
        return DEFAULT_SOURCES
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n and n != "none"]
    for name in names:
        if name in KNOWN_SOURCES:
            continue
        if name.startswith("meta:") and len(name) > 5:
            continue
        known = ", ".join(KNOWN_SOURCES)
        raise ConfigurationError(
            f"unknown consent source {name!r}: use one of {known}, or meta:<key> for a "
            "store's own meta key, or none"
        )
    return tuple(names)


def _flag(key: str, value: Any) -> ConsentState | None:
    """A plugin's checkbox value as a state; None when it says nothing (missing, empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return ConsentState.SUBSCRIBED if value else ConsentState.NOT_SUBSCRIBED
    if isinstance(value, int | float):
        value = str(int(value)) if float(value) in (0.0, 1.0) else str(value)
    text = str(value).strip().lower()
    if text in _YES:
        return ConsentState.SUBSCRIBED
    if text in _NO:
        return ConsentState.NOT_SUBSCRIBED
    if text in _GONE:
        return ConsentState.UNSUBSCRIBED
    raise ConsentMetaError(key, f"{str(value)[:40]!r} is not a consent value")


def _shopsync(value: Any) -> Consent | None:
    from shopsync_woocommerce.mapping import parse_date

    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConsentMetaError(SHOPSYNC_KEY, "not JSON") from None
    if not isinstance(value, Mapping):
        raise ConsentMetaError(SHOPSYNC_KEY, f"expected an object, got {type(value).__name__}")
    channels = {}
    for channel in ("email", "sms"):
        raw = value.get(channel)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConsentMetaError(f"{SHOPSYNC_KEY}.{channel}", "expected an object")
        try:
            channels[channel] = MarketingConsent(
                state=ConsentState(raw.get("state") or "unknown"),
                opt_in_level=OptInLevel(raw.get("opt_in_level") or "unknown"),
                updated_at=parse_date(raw["updated_at"]) if raw.get("updated_at") else None,
            )
        except ValueError as exc:
            raise ConsentMetaError(f"{SHOPSYNC_KEY}.{channel}", str(exc)) from None
    return Consent(**channels)


def _channel(state: ConsentState | None) -> MarketingConsent | None:
    if state is None:
        return None
    level = OptInLevel.SINGLE_OPT_IN if state is ConsentState.SUBSCRIBED else OptInLevel.UNKNOWN
    return MarketingConsent(state=state, opt_in_level=level)


def consent_from_meta(meta: Mapping[str, Any], sources: Iterable[str]) -> Consent:
    """The consent a record's meta carries, per channel from the first source that says
    something about it; ``unknown`` where none does. Raises :class:`ConsentMetaError`."""
    email: MarketingConsent | None = None
    sms: MarketingConsent | None = None
    for name in sources:
        if name == "shopsync":
            found = _shopsync(meta.get(SHOPSYNC_KEY))
            if found is not None:
                if email is None and found.email.state is not ConsentState.UNKNOWN:
                    email = found.email
                if sms is None and found.sms.state is not ConsentState.UNKNOWN:
                    sms = found.sms
            continue
        email_key, sms_key = KNOWN_SOURCES.get(name, (name.removeprefix("meta:"), None))
        if email is None and email_key is not None:
            email = _channel(_flag(email_key, meta.get(email_key)))
        if sms is None and sms_key is not None:
            sms = _channel(_flag(sms_key, meta.get(sms_key)))
    return Consent(email=email or MarketingConsent(), sms=sms or MarketingConsent())


def plugin_meta(consent: Consent, source: str) -> list[tuple[str, Any]]:
    """The meta a store running ``source`` holds for this consent (the emulator's option).

    What the plugin cannot say is left out: Mailchimp and Constant Contact record a checkbox,
    so ``pending``, ``redacted`` and ``unknown`` write nothing, and no date or opt-in level.
    """
    if source == "shopsync":
        if consent == Consent():
            return []
        return [
            (
                SHOPSYNC_KEY,
                {
                    channel: {
                        "state": c.state.value,
                        "opt_in_level": c.opt_in_level.value,
                        "updated_at": c.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                        if c.updated_at
                        else None,
                    }
                    for channel, c in (("email", consent.email), ("sms", consent.sms))
                },
            )
        ]
    email_key, sms_key = KNOWN_SOURCES[source]
    out: list[tuple[str, Any]] = []
    if source == "mailchimp":
        email_values = {
            ConsentState.SUBSCRIBED: 1,
            ConsentState.NOT_SUBSCRIBED: 0,
            ConsentState.UNSUBSCRIBED: "unsubscribed",
        }
        sms_values: dict[ConsentState, Any] = {ConsentState.SUBSCRIBED: True}
    else:
        email_values = {
            ConsentState.SUBSCRIBED: "yes",
            ConsentState.NOT_SUBSCRIBED: "no",
            ConsentState.UNSUBSCRIBED: "no",
        }
        sms_values = {}
    if email_key and consent.email.state in email_values:
        out.append((email_key, email_values[consent.email.state]))
    if sms_key and consent.sms.state in sms_values:
        out.append((sms_key, sms_values[consent.sms.state]))
    return out


def plugin_view(consent: Consent, source: str | None) -> Consent:
    """What :func:`consent_from_meta` reads back from :func:`plugin_meta` (None: no plugin)."""
    if source is None:
        return Consent()
    return consent_from_meta(dict(plugin_meta(consent, source)), (source,))
