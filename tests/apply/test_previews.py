"""Dry-run previews never show a secret: custom header values, tokens in URLs, secret keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shopsync.core.actions import Action
from shopsync.outbox import apply
from shopsync.sinks import Webhook
from shopsync.sinks._base import DeliveryContext, Guarantee
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge

SECRET = "webhook-secret-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert([customer("1")])
    return s


def test_webhook_preview_masks_custom_header_values(store: Store) -> None:
    hook = Webhook(
        "https://esp.example/hooks?api_key=query-secret-1",
        SECRET,
        headers={"Authorization": "Bearer esp-api-key-123", "X-List": "newsletter-7"},
    )
    report = apply([nudge("1")], store, [hook], now=NOW, dry_run=True)
    (delivery,) = report.deliveries
    assert delivery.status == "send" and delivery.payload is not None
    shown = json.dumps(delivery.payload)
    for secret in ("esp-api-key-123", "newsletter-7", "query-secret-1", SECRET):
        assert secret not in shown
    headers = delivery.payload["headers"]
    assert headers["Authorization"] == "***" and headers["X-List"] == "***"
    assert headers["Idempotency-Key"] == nudge("1").idempotency_key  # ours are shown
    assert delivery.payload["body"]["customer"]["email"] == "c1@example.com"


class Leaky:
    """A third-party sink whose preview carries secrets in the usual places."""

    name = "leaky"
    guarantee: ClassVar[Guarantee] = "at_least_once"
    stage: ClassVar[int] = 1
    contacts_customer: ClassVar[bool] = False

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {
            "endpoint": "https://api.example/v1/send?access_token=tok-in-url-9&list=7",
            "headers": {"X-Api-Key": "header-secret-8", "Accept": "application/json"},
            "auth": {"password": "pw-secret-7", "user": "shop"},
            "text": "click https://shop.example/u?token=tok-in-text-6 to leave",
            "code": "WELCOME10",
            "idempotency_key": action.idempotency_key,
        }

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        raise AssertionError("a dry run delivers nothing")

    def close(self) -> None:
        pass


def test_any_preview_masks_secret_looking_values(store: Store) -> None:
    report = apply([nudge("1")], store, [Leaky()], now=NOW, dry_run=True)
    (delivery,) = report.deliveries
    payload = delivery.payload or {}
    shown = json.dumps(payload)
    for secret in ("tok-in-url-9", "header-secret-8", "pw-secret-7", "tok-in-text-6"):
        assert secret not in shown
    # what is not secret stays readable
    assert payload["headers"]["Accept"] == "application/json"
    assert payload["auth"]["user"] == "shop" and "list=7" in payload["endpoint"]
    assert payload["code"] == "WELCOME10"  # the discount code is what a preview is for
    assert payload["idempotency_key"] == nudge("1").idempotency_key
