"""A webhook receiver in Flask: deliveries applied to the store once, customers re-planned.

    export SHOPIFY_APP_SECRET=... WOO_WEBHOOK_SECRET=... SHOPSYNC_STORE=sqlite:///shop.db
    flask --app webhook_flask run --port 8000

Point the shop's webhooks at https://<your host>/webhooks/shopify (or /woocommerce). A
delivery with a missing or wrong signature is answered 401 and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, jsonify, request

import shopsync
from shopsync.errors import SignatureError, WebhookError
from shopsync.sinks import JsonLines


def create_app(
    store: shopsync.Store | None = None,
    secrets: Mapping[str, str] | None = None,
    sinks: Sequence[Any] | None = None,
    policy: shopsync.Policy | None = None,
) -> Flask:
    store = store or shopsync.Store(os.environ.get("SHOPSYNC_STORE", "sqlite:///shop.db"))
    if secrets is None:
        secrets = {
            "shopify": os.environ["SHOPIFY_APP_SECRET"],  # the app's client secret
            "woocommerce": os.environ["WOO_WEBHOOK_SECRET"],  # the webhook's own secret
        }
    sinks = sinks if sinks is not None else [JsonLines("actions.jsonl")]
    policy = policy or shopsync.Policy()
    app = Flask(__name__)

    @app.post("/webhooks/<platform>")
    def receive(platform: str) -> Any:
        if platform not in secrets:
            return jsonify(error="unknown platform"), 404
        try:
            result = shopsync.webhooks.handle(
                platform, request.headers, request.get_data(), store, secrets[platform]
            )
        except SignatureError:
            return jsonify(error="invalid signature"), 401
        except WebhookError as exc:
            return jsonify(error=str(exc)), 400
        # result.export holds the answer to a customers/data_request: send it to the merchant.
        now = dt.datetime.now(dt.timezone.utc)
        for customer_id in result.customer_ids:
            plan = shopsync.plan_customer(store, policy, now, platform, result.shop, customer_id)
            shopsync.apply(plan, store, sinks, now=now, policy=policy)
        return jsonify(status=result.status, customers=list(result.customer_ids))

    return app
