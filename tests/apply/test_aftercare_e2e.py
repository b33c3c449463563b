"""The shipping notice and the education series end to end against both emulators: the shop
ships (tracking from Shopify's ``trackingInfo`` / WooCommerce's Shipment Tracking meta), a sync
stores it, a plan plans the messages, apply delivers them, and the email arrives on a real SMTP
server on loopback with the tracking link in its text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import shopsync
from shopsync.core.aftercare_actions import EducationMessage, ShippingNotice
from shopsync.models import Consent, ConsentState, MarketingConsent
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import Brand, Email
from shopsync.testing import EmulatedShop
from tests.apply.helpers import smtp_server
from tests.sync.emulated import connect, emulated

END = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
SHIPPED = END + dt.timedelta(days=10)  # generated shipments are out of every window by then
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
POLICY = shopsync.Policy.from_dict(
    {
        "loyalty": {"enabled": False},
        "holdout": {"share": 0},
        **{p: {"enabled": False} for p in ("reviews", "winback", "replenishment", "warranty")},
        "shipping": {"platform_sends": {"shopify": False, "woocommerce": False}},
        "education": {
            "series": [{"name": "espresso", "product_types": ["Shopsync Espresso Machine"]}]
        },
    }
)
BRAND = Brand(name="Acme Outfitters", address="1 Main St, Springfield, IL 62701, USA")


def _order(state: Any, customer: Any, product: Any, line_id: str) -> str:
    money = {"amount": "400.00", "currency": state.currency}
    zero = {"amount": "0", "currency": state.currency}
    order = state.add_order(
        customer_id=customer.id,
        email=customer.email,
        financial_status="pending",
        subtotal=money,
        total_discounts=zero,
        total_shipping=zero,
        total_tax=zero,
        total=money,
        total_refunded=zero,
        line_items=[
            {
                "id": line_id,
                "product_id": product.id,
                "title": product.title,
                "quantity": 1,
                "unit_price": money,
                "total": money,
            }
        ],
        processed_at=state.clock(),
    )
    state.pay_order(order.id)
    return str(order.id)


def _customer(state: Any, name: str, consent: ConsentState) -> Any:
    return state.add_customer(
        email=f"{name.lower()}@example.com",
        first_name=name,
        consent=Consent(email=MarketingConsent(state=consent)),
    )


def _ship(shop: EmulatedShop) -> dict[str, str]:
    """Two orders of a customer who unsubscribed from marketing (one shipped with the
    platform's UPS link, one with Royal Mail and no link) and an espresso machine for a
    subscribed customer; returns order ids by role."""
    state = shop.state
    state.clock = lambda: SHIPPED
    machine = state.add_product(
        title="Barista Pro", product_type="Shopsync Espresso Machine", status="active"
    )
    unsubscribed = _customer(state, "Una", ConsentState.UNSUBSCRIBED)
    fan = _customer(state, "Fay", ConsentState.SUBSCRIBED)
    ups = _order(state, unsubscribed, machine, "990001")
    royal = _order(state, unsubscribed, machine, "990002")
    espresso = _order(state, fan, machine, "990003")
    state.fulfill_order(
        ups,
        tracking_company="UPS",
        tracking_numbers=["1Z999AA10123456784"],
        tracking_urls=["https://www.ups.com/track?tracknum=1Z999AA10123456784"],
    )
    # Shopify builds the URL itself only for a company spelled as in its supported list
    # (shopify.dev FulfillmentTrackingInput.company): an app passing "RoyalMail" gets none, and
    # the Shipment Tracking extension keeps no link for its predefined carriers either
    company = "RoyalMail" if shop.platform == "shopify" else "royal-mail"
    state.fulfill_order(royal, tracking_company=company, tracking_numbers=["AB123456789GB"])
    state.fulfill_order(espresso, tracking_company="Acme Freight", tracking_numbers=["77"])
    return {"ups": ups, "royal": royal, "espresso": espresso}


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_shipping_notice_and_education_reach_the_inbox(platform: str, tmp_path: Path) -> None:
    with emulated(platform, seed=3, customers=8, orders=12, products=3, end=END) as shop:
        ids = _ship(shop)
        store = shopsync.Store(f"sqlite:///{tmp_path / 'store.db'}")
        shopsync.sync(connect(shop), store)
        with smtp_server() as smtp:
            sink = Email(
                "127.0.0.1",
                smtp.port,
                sender="shop@acme.example",
                brand=BRAND,
                security="none",
                unsubscribe_url="https://acme.example/unsubscribe",
                unsubscribe_secret="unsubscribe-secret-0123456789",
            )
            # an hour after shipping: the two tracked parcels; the third waits for a link
            first = shopsync.plan(store, POLICY, SHIPPED + HOUR)
            notices = [a for a in first if isinstance(a, ShippingNotice)]
            assert {n.order_id: n.tracking_urls for n in notices} == {
                ids["ups"]: ("https://www.ups.com/track?tracknum=1Z999AA10123456784",),
                ids["royal"]: (
                    "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB",
                ),
            }
            assert {n.order_id: n.link_source for n in notices} == {
                ids["ups"]: "platform",
                ids["royal"]: "carrier_table",
            }
            # a one-customer re-plan (after a webhook) plans the same notices
            name = first.shops[0][1]
            again = shopsync.plan_customer(
                store, POLICY, SHIPPED + HOUR, platform, name, notices[0].customer_id
            )
            assert [a for a in again if isinstance(a, ShippingNotice)] == notices
            report = apply(first, store, [sink], now=SHIPPED + HOUR)
            assert report.delivered == 2, report
            assert len(smtp.messages) == 2
            body = "\n".join(m.get_body(("plain",)).get_content() for m in smtp.messages)
            assert "https://www.ups.com/track?tracknum=1Z999AA10123456784" in body
            assert (
                "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB" in body
            )
            assert all(m["To"].addresses[0].username == "una" for m in smtp.messages)
            assert all(m["List-Unsubscribe"] is None for m in smtp.messages)  # transactional

            # a day later the espresso parcel still has no link: sent, saying so plainly
            # (the two sent ones are planned again while their window is open: the outbox
            # never delivers a done key twice)
            later = shopsync.plan(store, POLICY, SHIPPED + DAY + HOUR)
            [plain] = [a for a in later if isinstance(a, ShippingNotice) and not a.tracking_urls]
            assert plain.order_id == ids["espresso"] and plain.link_source == "none"
            apply(later, store, [sink], now=SHIPPED + DAY + HOUR)
            assert len(smtp.messages) == 3
            assert "no tracking link" in smtp.messages[-1].get_body(("plain",)).get_content()

            # three days after shipping: the espresso series' first step, marketing
            step = SHIPPED + 3 * DAY + HOUR
            plan = shopsync.plan(store, POLICY, step)
            [lesson] = [a for a in plan if isinstance(a, EducationMessage)]
            assert lesson.template == "education_how_to_use" and lesson.order_id == ids["espresso"]
            alone = shopsync.plan_customer(store, POLICY, step, platform, name, lesson.customer_id)
            assert [a for a in alone if isinstance(a, EducationMessage)] == [lesson]
            apply(plan, store, [sink], now=step)
            assert len(smtp.messages) == 4
            mail = smtp.messages[-1]
            assert mail["To"].addresses[0].username == "fay"
            assert "tips to get started" in mail.get_body(("plain",)).get_content()
            assert "Barista Pro" in mail.get_body(("plain",)).get_content()
            assert mail["List-Unsubscribe"] is not None  # marketing: one-click unsubscribe
            # a re-plan and re-apply of the same moments send nothing again
            apply(shopsync.plan(store, POLICY, SHIPPED + HOUR), store, [sink], now=step)
            apply(shopsync.plan(store, POLICY, step), store, [sink], now=step)
            assert len(smtp.messages) == 4
            entries = list_outbox(store)
            assert sorted(e.kind for e in entries) == ["education", *["shipping_notice"] * 3]
            assert {e.status for e in entries} == {"done"}
