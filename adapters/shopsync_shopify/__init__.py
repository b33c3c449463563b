"""Shopify adapter for shopsync: GraphQL Admin API reads, webhooks, and an emulator.

``ShopifyAdapter`` is the ``shopsync.adapters`` entry point (``shopsync.connect("shopify",
shop=..., access_token=...)``); ``ShopifyEmulator`` (in :mod:`.emulator`) is the
``shopsync.emulators`` one and is imported only by the test tooling.
"""

from __future__ import annotations

from shopsync_shopify.adapter import API_VERSION, BULK_THRESHOLD, ShopifyAdapter

__all__ = ["API_VERSION", "BULK_THRESHOLD", "ShopifyAdapter"]
