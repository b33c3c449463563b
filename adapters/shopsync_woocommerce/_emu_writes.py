"""The write side of the emulated store's REST API: coupons and customer meta.

``POST /coupons`` keeps codes unique and lower-cased as ``wc_format_coupon_code`` does and
refuses a taken code with ``woocommerce_rest_coupon_code_already_exists``
(``WC_REST_Coupons_Controller``); ``PUT /customers/<id>`` updates ``meta_data`` entries by key
(``WC_REST_Customers_Controller::update_customer_meta_fields``). Coupons a generated shop's
orders used are listed beside the created ones. Every outcome is counted in ``writes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shopsync.models import Order
from shopsync.testing.server import Request, Response
from shopsync_woocommerce import _render as render
from shopsync_woocommerce._emu_rest import PREFIX, Invalid, error
from shopsync_woocommerce._render_base import _dates
from shopsync_woocommerce.mapping import META, parse_date

if TYPE_CHECKING:
    from shopsync_woocommerce.emulator import WooCommerceEmulator

__all__ = ["Writes"]


class Writes:
    """Coupon and customer write handlers over one emulator's shop state."""

    def __init__(self, emu: WooCommerceEmulator) -> None:
        self.emu = emu

    def coupon(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET /coupons/<id>``."""
        return self._coupons(request, [params["id"]])

    def coupons(self, request: Request, params: Mapping[str, str]) -> Response:
        """``GET /coupons`` (``code=`` finds one by code)."""
        return self._coupons(request, [])

    def create_coupon(self, request: Request, params: Mapping[str, str]) -> Response:
        return self._create_coupon(request)

    def update_customer(self, request: Request, params: Mapping[str, str]) -> Response:
        return self._update_customer(request, params["id"])

    def _coupon_table(self) -> list[tuple[int, str, list[Order]]]:
        with self.emu.state.lock:
            orders = list(self.emu.state.orders.values())
        used: dict[str, list[Order]] = {}
        for o in orders:
            for code in o.discount_codes:
                used.setdefault(code.lower(), []).append(o)
        return [(90_000_000 + k, code, used[code]) for k, code in enumerate(sorted(used), 1)]

    def _coupons(self, request: Request, rest: list[str]) -> Response:
        base, tz = self.emu.home(), self.emu.tz
        table = self._coupon_table()
        if rest:
            if rest[0].isdigit() and int(rest[0]) in self.emu.coupons:
                return Response.json(self.emu.coupons[int(rest[0])])
            for cid, code, orders in table:
                if rest[0] == str(cid):
                    return Response.json(render.render_coupon(cid, code, orders, tz=tz, base=base))
            return self.emu.rest.not_found("coupons")
        code = (request.query.get("code") or "").lower()
        rows: list[tuple[int, Any]] = [
            (cid, (cid, c, o)) for cid, c, o in table if not code or c == code
        ]
        rows += [(cid, b) for cid, b in self.emu.coupons.items() if not code or b["code"] == code]
        reverse = (request.query.get("order") or "desc") == "desc"
        rows.sort(key=lambda row: row[0], reverse=reverse)
        return self.emu.rest.page(
            request,
            rows,
            lambda row: (
                row[1]
                if isinstance(row[1], dict)
                else render.render_coupon(*row[1], tz=tz, base=base)
            ),
        )

    def _create_coupon(self, request: Request) -> Response:
        """``POST /coupons``: codes are unique and kept lower-cased, as ``wc_format_coupon_code``
        does; dates in ``date_expires`` (site time) or ``date_expires_gmt``."""
        try:
            data = request.json() or {}
        except ValueError:
            return error("rest_invalid_json", "Invalid JSON body passed.", 400)
        if not isinstance(data, dict):
            return error("rest_invalid_json", "Invalid JSON body passed.", 400)
        code = str(data.get("code") or "").strip().lower()
        if not code:
            raise Invalid("code", "code is required.")
        emails = data.get("email_restrictions") or []
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise Invalid("email_restrictions", "email_restrictions[0] is not a valid email.")
        try:
            amount = Decimal(str(data.get("amount") or "0"))
        except ArithmeticError:
            raise Invalid("amount", "amount is not of type string.") from None
        gmt = data.get("date_expires_gmt") is not None
        raw_expires = data.get("date_expires_gmt") or data.get("date_expires")
        try:
            expires = (
                parse_date(str(raw_expires), assume=dt.timezone.utc if gmt else self.emu.tz)
                if raw_expires
                else None
            )
        except ValueError:
            raise Invalid("date_expires", "Invalid date.") from None
        with self.emu._cache_lock:
            taken = {body["code"] for body in self.emu.coupons.values()}
            taken |= {c for _, c, _ in self._coupon_table()}
            if code in taken:
                self.emu.writes["coupon_exists"] += 1
                return error(
                    "woocommerce_rest_coupon_code_already_exists",
                    "The coupon code already exists",
                    400,
                )
            cid = next(self.emu._coupon_ids)
            now = self.emu.state.clock()
            body: dict[str, Any] = {
                "id": cid,
                "code": code,
                "amount": f"{amount:.2f}",
                **_dates("date_created", now, self.emu.tz),
                **_dates("date_modified", now, self.emu.tz),
                "discount_type": str(data.get("discount_type") or "fixed_cart"),
                "description": str(data.get("description") or ""),
                **_dates("date_expires", expires, self.emu.tz),
                "usage_count": 0,
                "individual_use": bool(data.get("individual_use", False)),
                "product_ids": [],
                "excluded_product_ids": [],
                "usage_limit": data.get("usage_limit"),
                "usage_limit_per_user": data.get("usage_limit_per_user"),
                "limit_usage_to_x_items": None,
                "free_shipping": bool(data.get("free_shipping", False)),
                "product_categories": [],
                "excluded_product_categories": [],
                "exclude_sale_items": False,
                "minimum_amount": "0.00",
                "maximum_amount": "0.00",
                "email_restrictions": [e.strip().lower() for e in emails],
                "used_by": [],
                "meta_data": [],
                "_links": {
                    "self": [{"href": f"{self.emu.home()}{PREFIX}coupons/{cid}"}],
                    "collection": [{"href": f"{self.emu.home()}{PREFIX}coupons"}],
                },
            }
            self.emu.coupons[cid] = body
            self.emu.writes["coupon_created"] += 1
        return Response.json(body, status=201)

    def _update_customer(self, request: Request, customer_id: str) -> Response:
        """``PUT /customers/<id>``: ``meta_data`` entries update their key in place
        (``_shopsync_tags`` becomes the customer's tags); a save stamps ``date_modified``."""
        try:
            data = request.json() or {}
        except ValueError:
            return error("rest_invalid_json", "Invalid JSON body passed.", 400)
        with self.emu.state.lock:
            if customer_id not in self.emu.state.customers:
                return error("woocommerce_rest_invalid_id", "Invalid resource id.", 400)
            fields: dict[str, Any] = {}
            for item in data.get("meta_data") or ():
                if not isinstance(item, dict) or not item.get("key"):
                    raise Invalid("meta_data", "meta_data[0][key] is required.")
                if item["key"] == META["tags"]:
                    value = item.get("value") or []
                    tags = value if isinstance(value, list) else str(value).split(",")
                    fields["tags"] = tuple(sorted({str(t).strip() for t in tags if str(t).strip()}))
                else:
                    self.emu.customer_meta.setdefault(customer_id, {})[str(item["key"])] = item.get(
                        "value"
                    )
            customer = self.emu.state.update_customer(customer_id, **fields)
            self.emu.writes["customer_updated"] += 1
        return Response.json(self.emu.rest.render_record(customer))
