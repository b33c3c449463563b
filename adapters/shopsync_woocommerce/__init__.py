"""WooCommerce adapter for shopsync: REST wc/v3 reads, webhooks, and an emulator."""
