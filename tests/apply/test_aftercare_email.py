"""The shipping notice's and the education steps' emails as rendered (no server): the link or
the plain "no link" sentence, no unsubscribe header on the transactional one, each step's own
template with a fallback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from shopsync.core.aftercare_actions import EducationMessage, ShippingNotice
from shopsync.models import Customer
from shopsync.sinks import Brand, Email
from shopsync.sinks._base import DeliveryContext
from shopsync.store import Store
from tests.apply.helpers import NOW, customer

SHOP = "acme.myshopify.com"
BRAND = Brand(name="Acme Outfitters", address="1 Main St, Springfield, IL 62701, USA")


@pytest.fixture
def context(tmp_path: Path) -> DeliveryContext:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upsert([customer("1", consent="unsubscribed")])
    return DeliveryContext(store=store, customer=store.get(Customer, "shopify", SHOP, "1"), now=NOW)


def sink() -> Email:
    return Email(
        "127.0.0.1",
        2525,
        sender="shop@acme.example",
        brand=BRAND,
        unsubscribe_url="https://acme.example/unsubscribe",
        unsubscribe_secret="unsubscribe-secret-0123456789",
    )


def notice(links: tuple[str, ...], **facts: Any) -> ShippingNotice:
    return ShippingNotice(
        platform="shopify",
        shop=SHOP,
        customer_id="1",
        due_at=NOW - dt.timedelta(hours=1),
        reason="order 1001 has shipped with UPS",
        facts={
            "carrier": "UPS",
            "tracking_numbers": ["1Z999"],
            "tracking_urls": list(links),
            **facts,
        },
        idempotency_key="shipping_notice:acme:1001:f1",
        order_id="1001",
        fulfillment_id="f1",
        carrier="UPS",
        tracking_numbers=("1Z999",),
        tracking_urls=links,
        link_source="platform" if links else "none",
    )


def lesson(template: str) -> EducationMessage:
    return EducationMessage(
        platform="shopify",
        shop=SHOP,
        customer_id="1",
        due_at=NOW,
        reason="3 days after order 1001 was shipped: step 1 of the espresso series",
        facts={"template": template},
        idempotency_key=f"education:acme:1:espresso:{template}",
        series="espresso",
        step=1,
        template=template,
        order_id="1001",
        product_ids=(),
    )


def test_the_shipping_notice_carries_the_link_and_no_unsubscribe(context: DeliveryContext) -> None:
    shown = sink().render(notice(("https://www.ups.com/track?tracknum=1Z999",)), context)
    assert shown["subject"] == "Your order from Acme Outfitters is on its way"
    assert "Track your parcel:\nhttps://www.ups.com/track?tracknum=1Z999" in shown["text"]
    assert "Tracking number: 1Z999" in shown["text"] and "Carrier: UPS" in shown["text"]
    assert shown["list_unsubscribe"] is None  # transactional, to an unsubscribed customer
    html = sink().build(notice(('https://x.example/?a="><script>',)), context)
    assert "<script>" not in html.get_body(("html",)).get_content()


def test_without_a_link_it_says_so_plainly(context: DeliveryContext) -> None:
    text = sink().render(notice(()), context)["text"]
    assert "The carrier gave us no tracking link for this parcel" in text
    assert "http" not in text.split("--")[0]  # no link above the footer


def test_each_step_its_own_template_then_the_series_fallback(context: DeliveryContext) -> None:
    care = sink().render(lesson("education_care"), context)
    assert care["subject"] == "Getting the most out of your purchase"
    assert "How to look after your purchase" in care["text"]
    assert care["list_unsubscribe"] is not None  # marketing
    own = sink().render(lesson("descale_guide"), context)  # no such template: education.*
    assert "A few tips about your purchase:" in own["text"]


def test_the_outbox_loads_both_actions_back_from_their_stored_path() -> None:
    from shopsync.core.aftercare_actions import EducationCrossSell
    from shopsync.outbox._queue import load_action, model_path

    pairs = lesson("education_pairs_well_with").model_dump()
    cross = EducationCrossSell(**{**pairs, "recommendations": ("cup",)})
    for action in (notice(("https://x.example/1",)), lesson("education_care"), cross):
        path = model_path(action)
        assert path.startswith("shopsync.core.aftercare_actions:")
        assert load_action(path, action.model_dump(mode="json")) == action
