"""A Shipment Tracking item for one of the extension's predefined carriers keeps only the
provider slug and the number (``tracking_provider = sanitize_title(name)``, no link: the
extension's v1 REST controller and ``save_meta_box``); the shipping notice builds the link from
the carrier table (docs/programs.md, "Shipping notice")."""

from __future__ import annotations

import copy

from shopsync_woocommerce._map_common import META
from shopsync_woocommerce.mapping import order_from_rest

from shopsync.core.carriers import tracking_links

from ._fixtures import SHOP, load


def test_a_predefined_carrier_slug_gets_its_link_from_the_table() -> None:
    src = copy.deepcopy(load("retrieve-an-order"))
    item = {
        "tracking_provider": "royal-mail",
        "custom_tracking_provider": "",
        "custom_tracking_link": "",
        "tracking_number": "AB123456789GB",
        "date_shipped": "1490227200",
        "tracking_id": "e5f6",
    }
    src["meta_data"].append({"id": 1, "key": META["tracking"], "value": [item]})
    [shipment] = order_from_rest(src, shop=SHOP).fulfillments
    assert (shipment.tracking_company, shipment.tracking_urls) == ("royal-mail", ())
    link = tracking_links(
        shipment.tracking_company, shipment.tracking_numbers, shipment.tracking_urls
    )
    assert link.urls == (
        "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB",
    )
    assert link.source == "carrier_table"
