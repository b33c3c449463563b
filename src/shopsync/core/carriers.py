"""Tracking links: the platform's own, else one built from the carrier and the number.

Shopify builds a tracking URL itself when the company is one it supports (shopify.dev,
``FulfillmentTrackingInput.company``: "Shopify will automatically build tracking URLs for
all provided tracking numbers"), but a fulfilment with another carrier, or one created by an
app that passed no URL, has none. The WooCommerce Shipment Tracking extension stores only a
provider slug for its predefined carriers (``tracking_provider``, e.g. ``royal-mail``) and
keeps the link in its own carrier list, not in the order meta; ``custom_tracking_link`` is set
for custom providers only. So a link is:

1. the platform's URL for that number, when it is an ``http(s)`` URL (anything else, a
   ``javascript:`` URL say, is no link);
2. else the carrier's template below (or ``shipping.carrier_urls``) with the number
   percent-encoded (RFC 3986: a number with spaces or ``&`` cannot change the URL);
3. else none, and the message says so plainly.

Every built-in template is the one WooCommerce core builds for the same carrier, in
``plugins/woocommerce/src/Internal/Fulfillments/Providers/<Name>ShippingProvider.php``
(``get_tracking_url``), named beside each entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

__all__ = ["CARRIERS", "Link", "carrier_key", "tracking_links"]

_WOO = "woocommerce/woocommerce plugins/woocommerce/src/Internal/Fulfillments/Providers/"

CARRIERS: dict[str, tuple[str, str]] = {
    # key (lower case, letters and digits only): (URL template, source)
    "ups": ("https://www.ups.com/track?tracknum={number}", _WOO + "UPSShippingProvider.php"),
    "usps": (
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
        _WOO + "USPSShippingProvider.php",
    ),
    "fedex": (
        "https://www.fedex.com/fedextrack/?trknbr={number}",
        _WOO + "FedExShippingProvider.php",
    ),
    "dhl": (
        "https://www.dhl.com/en/express/tracking.html?AWB={number}",
        _WOO + "DHLShippingProvider.php (DHL Express; GM/LX/RX/AU/TH numbers: Global Mail)",
    ),
    "dhlglobalmail": (
        "https://webtrack.dhlglobalmail.com/?trackingnumber={number}",
        _WOO + "DHLShippingProvider.php",
    ),
    "royalmail": (
        "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
        _WOO + "RoyalMailShippingProvider.php",
    ),
    "canadapost": (
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
        _WOO + "CanadaPostShippingProvider.php",
    ),
    "australiapost": (
        "https://auspost.com.au/mypost/track/details/{number}",
        _WOO + "AustraliaPostShippingProvider.php (and its unit test)",
    ),
    "postnl": (
        "https://www.postnl.nl/track-en-trace/{number}",
        _WOO + "PostNLShippingProvider.php",
    ),
    "dpd": ("https://www.dpd.com/tracking/{number}", _WOO + "DPDShippingProvider.php"),
    "gls": (
        "https://gls-group.eu/EU/en/parcel-tracking/{number}",
        _WOO + "GLSShippingProvider.php",
    ),
    "evri": ("https://www.evri.com/track/{number}", _WOO + "EvriHermesShippingProvider.php"),
    "postnord": (
        "https://www.postnord.se/track-and-trace/{number}",
        _WOO + "PostNordShippingProvider.php",
    ),
    "colissimo": (
        "https://www.laposte.fr/outils/suivre-vos-envois?code={number}",
        _WOO + "LaPosteColissimoShippingProvider.php",
    ),
}
"""Carrier -> (tracking URL template, where the template comes from)."""

ALIASES: dict[str, str] = {
    "unitedparcelservice": "ups",
    "unitedstatespostalservice": "usps",
    "federalexpress": "fedex",
    "dhlexpress": "dhl",
    "dhlus": "dhl",  # the Shipment Tracking extension's slug
    "dhlecommerce": "dhlglobalmail",
    "royalmailtracked": "royalmail",
    "postescanada": "canadapost",
    "auspost": "australiapost",
    "postnlinternational": "postnl",
    "glsgroup": "gls",
    "hermes": "evri",
    "evrihermes": "evri",
    "myhermes": "evri",
    "laposte": "colissimo",
    "lapostecolissimo": "colissimo",
}
_GLOBAL_MAIL = re.compile(r"^(GM|LX|RX|AU|TH)", re.IGNORECASE)


def carrier_key(name: str | None) -> str:
    """A carrier name as the table's key: ``"Royal Mail"``, ``"royal-mail"`` -> ``royalmail``."""
    plain = re.sub(r"[^a-z0-9]", "", (name or "").casefold())
    return ALIASES.get(plain, plain)


def _web_url(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc or re.search(r"\s", url):
        return None
    return url


@dataclass(frozen=True)
class Link:
    """The links of one shipment (one per tracking number that has one)."""

    urls: tuple[str, ...]
    source: Literal["platform", "carrier_table", "none"]


def tracking_links(
    carrier: str | None,
    numbers: tuple[str, ...] | list[str],
    urls: tuple[str, ...] | list[str],
    own: Mapping[str, str] | None = None,
) -> Link:
    """The tracking links of a shipment (see the module docstring); ``own``: the policy's
    ``shipping.carrier_urls`` (carrier name -> template)."""
    platform = [u for u in (_web_url(u) for u in urls) if u]
    if platform:
        return Link(tuple(dict.fromkeys(platform)), "platform")
    key = carrier_key(carrier)
    templates = {carrier_key(k): v for k, v in (own or {}).items()}
    built: list[str] = []
    for number in numbers:
        number = (number or "").strip()
        if not number or not key:
            continue
        template = templates.get(key)
        if template is None:
            table = "dhlglobalmail" if key == "dhl" and _GLOBAL_MAIL.match(number) else key
            found = CARRIERS.get(table)
            template = found[0] if found else None
        if template is not None:
            built.append(template.replace("{number}", quote(number, safe="")))
    if built:
        return Link(tuple(dict.fromkeys(built)), "carrier_table")
    return Link((), "none")
