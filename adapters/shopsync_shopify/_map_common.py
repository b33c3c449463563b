"""What both Shopify shapes share in mapping: status tables, ids, and the record reader
(:class:`shopsync.adapter_kit.RecordReader` with Shopify's ids and ``MoneyBag`` amounts).
The rules are in :mod:`shopsync_shopify.mapping`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from shopsync.adapter_kit import RecordReader
from shopsync.models import (
    Address,
    ConsentState,
    FinancialStatus,
    FulfillmentStatus,
    MarketingConsent,
    Money,
    OptInLevel,
)

PLATFORM = "shopify"
T = TypeVar("T")

_FINANCIAL = {
    "pending": FinancialStatus.PENDING,
    "authorized": FinancialStatus.AUTHORIZED,
    "partially_paid": FinancialStatus.PARTIALLY_PAID,
    "paid": FinancialStatus.PAID,
    "partially_refunded": FinancialStatus.PARTIALLY_REFUNDED,
    "refunded": FinancialStatus.REFUNDED,
    "voided": FinancialStatus.VOIDED,
    "expired": FinancialStatus.VOIDED,
}
_CAPTURED = {
    FinancialStatus.PAID,
    FinancialStatus.PARTIALLY_PAID,
    FinancialStatus.PARTIALLY_REFUNDED,
    FinancialStatus.REFUNDED,
}
_FULFILLMENT = {
    "fulfilled": FulfillmentStatus.FULFILLED,
    "partially_fulfilled": FulfillmentStatus.PARTIALLY_FULFILLED,
    "partial": FulfillmentStatus.PARTIALLY_FULFILLED,
    "restocked": FulfillmentStatus.RESTOCKED,
    "on_hold": FulfillmentStatus.ON_HOLD,
}
_CONSENT = {s.value: s for s in ConsentState}
_OPT_IN = {s.value: s for s in OptInLevel}


def gid(kind: str, record_id: str) -> str:
    """The GraphQL global id of a numeric id: ``gid://shopify/Order/1``."""
    return f"gid://shopify/{kind}/{record_id}"


def parse_gid(value: Any) -> str:
    """The numeric part of a GraphQL global id (plain ids pass through as strings)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an id")
    text = str(value)
    if text.startswith("gid://"):
        text = text.rsplit("/", 1)[-1].split("?", 1)[0]
    if not text.strip():
        raise ValueError(f"{value!r} is not an id")
    return text


class _Ctx(RecordReader):
    """The toolkit's record reader with Shopify's ids (``gid://`` or plain) and
    ``MoneyBag`` amounts."""

    parse_id = staticmethod(parse_gid)

    def bag(self, value: Any, currency: str, path: str) -> Money:
        """A GraphQL ``MoneyBag``: the shop-currency amount."""
        shop_money = self.get(value, "shopMoney", path) if value is not None else None
        if shop_money is None:
            self.fail(path, "required amount is missing")
        code = self.get(shop_money, "currencyCode", f"{path}.shopMoney") or currency
        return self.money(
            self.get(shop_money, "amount", f"{path}.shopMoney"), code, f"{path}.shopMoney.amount"
        )


def _nodes(value: Any) -> list[Any]:
    """Children of a connection (``edges``/``nodes``), of a plain list, or of a bulk regroup."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        if "nodes" in value and value["nodes"] is not None:
            return list(value["nodes"])
        if "edges" in value and value["edges"] is not None:
            return [edge.get("node") for edge in value["edges"]]
    return []


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(tag.strip() for tag in value.split(",") if tag.strip())
    return tuple(str(tag) for tag in value)


def _blank(value: Any) -> Any:
    return None if value == "" else value


def _enum(table: Mapping[str, T], value: Any, default: T) -> T:
    if not isinstance(value, str):
        return default
    return table.get(value.lower(), default)


def _financial(ctx: _Ctx, value: Any, path: str) -> FinancialStatus:
    if value is None:
        return FinancialStatus.PENDING
    status = _FINANCIAL.get(str(value).lower())
    if status is None:
        ctx.fail(path, f"unknown financial status {value!r}")
    return status


def _set_or_amount(
    ctx: _Ctx,
    payload: Mapping[str, Any],
    set_key: str,
    plain_key: str | None,
    currency: str,
    path: str,
) -> Money | None:
    """A REST amount: the ``*_set.shop_money`` twin when present, else the plain field."""

    def where(key: str) -> str:
        return f"{path}.{key}" if path else key

    money_set = payload.get(set_key)
    if isinstance(money_set, Mapping) and isinstance(money_set.get("shop_money"), Mapping):
        shop_money = money_set["shop_money"]
        return ctx.money(
            shop_money.get("amount"), shop_money.get("currency_code") or currency, where(set_key)
        )
    if plain_key is not None and payload.get(plain_key) is not None:
        return ctx.money(payload[plain_key], currency, where(plain_key))
    return None


def _address(ctx: _Ctx, value: Any, path: str, *, graphql: bool) -> Address | None:
    """A mailing address of either shape (camelCase keys in GraphQL; an empty REST object is
    none); empty strings read as None."""
    if value is None or (not graphql and not value):
        return None

    def get(key: str) -> Any:
        head, *tail = key.split("_")
        name = head + "".join(part.title() for part in tail) if graphql else key
        return _blank(ctx.get(value, name, path))

    keys = ("first_name", "last_name", "company", "address1", "address2", "city", "province")
    return ctx.build(
        Address,
        path,
        **{key: get(key) for key in (*keys, "zip")},
        country_code=(get("country_code_v2") if graphql else None) or get("country_code"),
        phone=get("phone"),
    )


def _consent(ctx: _Ctx, value: Any, path: str, *, graphql: bool) -> MarketingConsent:
    """One channel's marketing consent of either shape; unknown values read as unknown."""
    if value is None:
        return MarketingConsent()
    state, level, at = (
        ("marketingState", "marketingOptInLevel", "consentUpdatedAt")
        if graphql
        else ("state", "opt_in_level", "consent_updated_at")
    )
    return MarketingConsent(
        state=_enum(_CONSENT, ctx.get(value, state, path), ConsentState.UNKNOWN),
        opt_in_level=_enum(_OPT_IN, value.get(level), OptInLevel.UNKNOWN),
        updated_at=ctx.timestamp(value.get(at), f"{path}.{at}"),
    )
