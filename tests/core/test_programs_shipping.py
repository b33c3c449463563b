"""The shipping notice on hand-built frames (docs/programs.md, "Shipping notice"): one per
shipment, always with a tracking link when one can be had (the platform's, else the carrier
table's), waiting for a link and then saying plainly there is none, off where the platform
sends its own, transactional (consent, holdout, quiet hours, the cap and an unsubscribe from
marketing do not hold it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
import pytest

from shopsync.core._data import SHIPMENT_SCHEMA, Frames
from shopsync.core.aftercare_actions import ShippingNotice
from shopsync.core.carriers import CARRIERS, carrier_key, tracking_links
from shopsync.core.planner import plan_frames
from shopsync.core.policy import PolicyError
from tests.core.frames_kit import DAY, T0, Shop, policy, us

HOUR = dt.timedelta(hours=1)
SHIPPED = T0 + DAY
ON = {"platform_sends": {"shopify": False}}


def shop(consent: str | None = "subscribed") -> Shop:
    return Shop().customer("c1", consent=consent).order("o1", "c1", T0, fulfilled=SHIPPED)


def with_shipments(frames: Frames, *rows: dict[str, Any]) -> Frames:
    """``frames`` with these shipments (order o1, shipped a day after T0 unless given)."""
    full = [
        {
            "order_id": "o1",
            "id": f"f{i}",
            "created_at": us(SHIPPED),
            "status": "success",
            "delivered_at": None,
            "tracking_company": None,
            "tracking_numbers": [],
            "tracking_urls": [],
            **row,
        }
        for i, row in enumerate(rows, start=1)
    ]
    return dataclasses.replace(frames, shipments=pl.DataFrame(full, schema=SHIPMENT_SCHEMA))


def notices(frames: Frames, at: dt.datetime, **settings: Any) -> list[ShippingNotice]:
    rules = policy(shipping={**ON, **settings}, **_extra(settings))
    return [a for a in plan_frames(frames, rules, at) if isinstance(a, ShippingNotice)]


def _extra(settings: dict[str, Any]) -> dict[str, Any]:
    return settings.pop("_sections", {})  # type: ignore[no-any-return]


UPS = {"tracking_company": "UPS", "tracking_numbers": ["1Z999"], "tracking_urls": []}


# -- the link ----------------------------------------------------------------------------------


def test_the_platform_url_is_the_link() -> None:
    at = SHIPPED + HOUR
    row = {**UPS, "tracking_urls": ["https://ups.example/1Z999"]}
    [n] = notices(with_shipments(shop().frames(at), row), at)
    assert n.tracking_urls == ("https://ups.example/1Z999",)
    assert n.link_source == "platform" and n.marketing is False
    assert n.idempotency_key == "shipping_notice:acme:o1:f1"
    assert n.due_at == SHIPPED and n.carrier == "UPS" and n.tracking_numbers == ("1Z999",)
    assert n.facts["tracking_url"] == "https://ups.example/1Z999"


def test_without_a_platform_url_the_carrier_table_builds_one() -> None:
    at = SHIPPED + HOUR
    [n] = notices(with_shipments(shop().frames(at), UPS), at)
    assert n.tracking_urls == ("https://www.ups.com/track?tracknum=1Z999",)
    assert n.link_source == "carrier_table"


@pytest.mark.parametrize(
    ("carrier", "number", "url"),
    [
        ("USPS", "9400 1", "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201"),
        ("FedEx", "12", "https://www.fedex.com/fedextrack/?trknbr=12"),
        ("DHL Express", "JJD1", "https://www.dhl.com/en/express/tracking.html?AWB=JJD1"),
        ("DHL", "GM123", "https://webtrack.dhlglobalmail.com/?trackingnumber=GM123"),
        (
            "royal-mail",
            "AB1GB",
            "https://www.royalmail.com/track-your-item#/tracking-results/AB1GB",
        ),
        (
            "Canada Post",
            "7",
            "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=7",
        ),
        ("australia-post", "AU9", "https://auspost.com.au/mypost/track/details/AU9"),
        ("PostNL", "3S1", "https://www.postnl.nl/track-en-trace/3S1"),
        ("DPD", "0512", "https://www.dpd.com/tracking/0512"),
        ("GLS", "88", "https://gls-group.eu/EU/en/parcel-tracking/88"),
        ("Hermes", "H1", "https://www.evri.com/track/H1"),
        ("PostNord", "P1", "https://www.postnord.se/track-and-trace/P1"),
        ("La Poste", "6A", "https://www.laposte.fr/outils/suivre-vos-envois?code=6A"),
    ],
)
def test_the_carrier_table(carrier: str, number: str, url: str) -> None:
    assert tracking_links(carrier, [number], []).urls == (url,)


def test_every_table_entry_is_https_with_a_number_and_a_source() -> None:
    for key, (template, source) in CARRIERS.items():
        assert template.startswith("https://") and "{number}" in template, key
        assert "ShippingProvider.php" in source, key
        assert carrier_key(key) == key


def test_a_number_cannot_change_the_url_and_a_script_url_is_no_link() -> None:
    link = tracking_links("UPS", ["1Z&x=<script>"], ["javascript:alert(1)"])
    assert link.source == "carrier_table"
    assert link.urls == ("https://www.ups.com/track?tracknum=1Z%26x%3D%3Cscript%3E",)
    assert tracking_links("Acme Freight", ["1"], ["ftp://x/1"]).source == "none"


def test_the_shops_own_templates_win_over_the_table() -> None:
    own = {
        "UPS": "https://track.acme.example/{number}",
        "Acme Freight": "https://af.example/{number}",
    }
    assert tracking_links("ups", ["1"], [], own).urls == ("https://track.acme.example/1",)
    assert tracking_links("ACME freight", ["2"], [], own).urls == ("https://af.example/2",)
    with pytest.raises(PolicyError, match="carrier_urls"):
        policy(shipping={"carrier_urls": {"X": "http://x.example/{number}"}})
    with pytest.raises(PolicyError, match="carrier_urls"):
        policy(shipping={"carrier_urls": {"X": "https://x.example/"}})


def test_several_numbers_get_one_link_each() -> None:
    at = SHIPPED + HOUR
    row = {"tracking_company": "FedEx", "tracking_numbers": ["1", "2"], "tracking_urls": []}
    [n] = notices(with_shipments(shop().frames(at), row), at)
    assert n.tracking_urls == (
        "https://www.fedex.com/fedextrack/?trknbr=1",
        "https://www.fedex.com/fedextrack/?trknbr=2",
    )


# -- no link: wait, then say so (or skip) ------------------------------------------------------

UNKNOWN = {"tracking_company": "Acme Freight", "tracking_numbers": ["77"], "tracking_urls": []}


def test_without_a_link_it_waits_then_says_plainly_there_is_none() -> None:
    before = SHIPPED + 24 * HOUR - dt.timedelta(microseconds=1)
    assert notices(with_shipments(shop().frames(before), UNKNOWN), before) == []
    at = SHIPPED + 24 * HOUR
    [n] = notices(with_shipments(shop().frames(at), UNKNOWN), at)
    assert n.tracking_urls == () and n.link_source == "none" and n.due_at == at
    assert "no tracking link" in n.reason
    assert notices(with_shipments(shop().frames(at), UNKNOWN), at, without_link="skip") == []


def test_a_link_that_arrives_during_the_wait_is_sent_at_once() -> None:
    at = SHIPPED + 10 * HOUR  # the number came with a later sync
    [n] = notices(with_shipments(shop().frames(at), UPS), at)
    assert n.due_at == SHIPPED and n.link_source == "carrier_table"


# -- which shipments, and when -----------------------------------------------------------------


def test_too_late_delivered_failed_cancelled_or_unknown_orders_get_none() -> None:
    late = SHIPPED + 72 * HOUR
    assert notices(with_shipments(shop().frames(late), UPS), late)
    too_late = late + dt.timedelta(microseconds=1)
    assert notices(with_shipments(shop().frames(too_late), UPS), too_late) == []
    at = SHIPPED + 2 * HOUR
    delivered = {**UPS, "delivered_at": us(SHIPPED + HOUR)}
    assert notices(with_shipments(shop().frames(at), delivered), at) == []
    assert notices(with_shipments(shop().frames(at), {**UPS, "status": "cancelled"}), at) == []
    cancelled = Shop().customer("c1").order("o1", "c1", T0, cancelled=SHIPPED + HOUR)
    assert notices(with_shipments(cancelled.frames(at), UPS), at) == []
    assert notices(with_shipments(shop().frames(at), {**UPS, "order_id": "guest"}), at) == []
    future = {**UPS, "created_at": us(at + HOUR)}
    assert notices(with_shipments(shop().frames(at), future), at) == []


def test_delay_hours_and_one_notice_per_shipment() -> None:
    at = SHIPPED + 3 * HOUR
    two = with_shipments(shop().frames(at), UPS, {**UPS, "tracking_numbers": ["1Z2"]})
    assert notices(two, at, delay_hours=4) == []
    found = notices(two, at)
    assert [n.idempotency_key for n in found] == [
        "shipping_notice:acme:o1:f1",
        "shipping_notice:acme:o1:f2",
    ]


def test_off_where_the_platform_sends_its_own() -> None:
    at = SHIPPED + HOUR
    frames = with_shipments(shop().frames(at), UPS)
    rules = policy()  # the defaults: Shopify and WooCommerce send their own
    assert [a for a in plan_frames(frames, rules, at) if a.kind == "shipping_notice"] == []
    assert rules.shipping.platform_sends == {"shopify": True, "woocommerce": True}
    other = dataclasses.replace(frames, platform="bigcommerce")  # not listed: not sent there
    assert [a.kind for a in plan_frames(other, rules, at)] == ["shipping_notice"]
    assert notices(frames, at, enabled=False) == []


# -- transactional -----------------------------------------------------------------------------


def test_consent_holdout_quiet_hours_the_cap_and_an_unsubscribe_do_not_hold_it() -> None:
    at = SHIPPED + HOUR
    unsubscribed = shop(consent="unsubscribed").suppress("c1")
    unsubscribed.sent("c1", "winback:acme:c1:o0:stage1", at - HOUR)
    frames = with_shipments(unsubscribed.frames(at), UPS)
    rules = policy(
        shipping=ON,
        holdout={"share": "0.99"},
        quiet={"hours": [0, 23]},
        frequency_cap={"email_hours": 48, "max_emails": 1},
    )
    plan = plan_frames(frames, rules, at)
    assert [a.kind for a in plan] == ["shipping_notice"] and plan.held == ()


def test_a_merchant_who_calls_it_marketing_gets_the_consent_rule() -> None:
    at = SHIPPED + HOUR
    frames = with_shipments(shop(consent="unsubscribed").frames(at), UPS)
    rules = policy(shipping=ON, messaging={"marketing": {"shipping_notice": True}})
    plan = plan_frames(frames, rules, at)
    assert list(plan) == [] and plan.held_counts == {"consent": 1}
