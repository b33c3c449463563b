"""A store in a currency outside ISO 4217 or retired from it syncs, plans and reports like any
other (issue 15 item 8). WooCommerce offers them in ``get_woocommerce_currencies()``: IRT
(Iranian toman), BTC, PRB (Transnistrian ruble), GGP/IMP/JEP (island pounds), and codes ISO
retired but stores still use (HRK, VEF, BYR, MRO, STD)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

import shopsync
from shopsync.models import Order
from shopsync.report import write_report
from shopsync.testing import emulate


@pytest.mark.parametrize("currency", ["IRT", "BTC", "BYR", "GGP"])
def test_a_store_in_a_non_iso_currency_syncs_plans_and_reports(
    currency: str, tmp_path: Path
) -> None:
    store = shopsync.Store(f"sqlite:///{tmp_path / 'shop.db'}")
    with emulate(
        "woocommerce",
        seed=3,
        customers=25,
        orders=80,
        products=5,
        currency=currency,
        consent_plugin="mailchimp",
    ) as shop:
        adapter = shopsync.connect("woocommerce", **shop.settings)
        report = shopsync.sync(adapter, store)
        name = shop.state.shop
        expected = {k: shop.emulator.view(v) for k, v in shop.state.orders.items()}  # type: ignore[attr-defined]
    assert not store.quarantined(), [q.reason for q in store.quarantined()]
    assert sum(r.quarantined for r in report.resources.values()) == 0
    stored = {o.id: o for o in store.iter(Order, "woocommerce", name)}
    assert stored == expected
    assert {o.currency for o in stored.values()} == {currency}
    weighed = [o for o in stored.values() if any(li.quantity % 1 for li in o.line_items)]
    assert weighed  # sold by weight in this currency too
    at = max(o.created_at for o in stored.values()) + dt.timedelta(days=30)
    planned = shopsync.plan(store, as_of=at)
    assert planned.as_of == at
    assert all(a.platform == "woocommerce" for a in planned)
    html = write_report(store, tmp_path / "report.html", as_of=at, planned=planned).read_text()
    assert currency in html
    assert sum((o.total.amount for o in stored.values()), Decimal(0)) > 0
    store.close()


def test_what_is_not_a_currency_is_refused_with_its_field() -> None:
    from shopsync_woocommerce.mapping import order_from_rest

    from shopsync.errors import InvalidRecordError
    from tests.woocommerce._fixtures import SHOP, load

    raw = dict(load("retrieve-an-order"), currency="XYZ")
    with pytest.raises(InvalidRecordError, match="not a currency WooCommerce offers") as caught:
        order_from_rest(raw, shop=SHOP)
    assert caught.value.path == "currency"
    irt = order_from_rest(dict(raw, currency="irt"), shop=SHOP)
    assert irt.currency == "IRT"
