"""Shopify adapter for shopsync: GraphQL Admin API reads, webhooks, and an emulator."""
