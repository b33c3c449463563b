"""Loading the copied WooCommerce payloads (see tests/fixtures/woocommerce/PROVENANCE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
SHOP = "example.com"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def records(*names: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, record) for every record in the named files (lists are spread)."""
    out = []
    for name in names:
        data = load(name)
        for k, record in enumerate(data if isinstance(data, list) else [data]):
            out.append((f"{name}[{k}]", record))
    return out


ORDER_FILES = ("retrieve-an-order", "list-all-orders", "update-an-order")
CUSTOMER_FILES = ("retrieve-a-customer", "list-all-customers", "create-a-customer")
PRODUCT_FILES = ("retrieve-a-product", "list-all-products")
