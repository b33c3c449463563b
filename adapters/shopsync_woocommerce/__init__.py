"""WooCommerce adapter for shopsync: REST wc/v3 reads, webhooks, and an emulator.

``WooCommerceAdapter`` is registered as the ``woocommerce`` entry point of the
``shopsync.adapters`` group; the emulator (``shopsync_woocommerce.emulator``) as
``woocommerce`` in ``shopsync.emulators``.
"""

from __future__ import annotations

from shopsync_woocommerce.adapter import DEFAULT_OVERLAP, DEFAULT_TIMEOUT, WooCommerceAdapter
from shopsync_woocommerce.mapping import customer_from_rest, order_from_rest, product_from_rest
from shopsync_woocommerce.webhooks import is_ping, verify

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TIMEOUT",
    "WooCommerceAdapter",
    "customer_from_rest",
    "is_ping",
    "order_from_rest",
    "product_from_rest",
    "verify",
]
