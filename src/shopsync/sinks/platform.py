"""Write actions back to the shop: discount codes, customer tags, loyalty balance and tier.

The platform sink is exactly once. Every write is either an upsert (tags, metafields,
meta_data: writing the same value twice leaves one value) or a creation looked up first by a
name derived from the idempotency key (the discount code of a
:class:`~shopsync.core.actions.RewardCode` is derived from its key), so delivering an action
again after a crash changes nothing on the shop.

What each action writes:

- an action with a ``code`` and a ``value`` (``RewardCode``, or any kind whose facts carry
  ``code``/``value``/``currency``), or a ``discount_percent`` (a win-back offer; its code is
  derived from the key, see :func:`~shopsync.sinks._base.discount_of`): a single-use code of
  that value, limited to the customer (by id or by email, as the adapter's
  ``discount_limited_by`` says), expiring at ``facts["expires_at"]`` or ``code_valid_for``
  after ``due_at``. An action whose code has already expired is cancelled, and so is one
  whose adapter cannot write discount codes (a message announcing the code must not go out).
- every ``loyalty_*`` action: the customer's approved points balance as the store holds it at
  delivery (customer field ``points_balance`` under ``namespace``: how each adapter stores it
  is in its docs), and the tier of a tier change (``tier``). The balance comes
  only from a ledger that is current at delivery: one not current is brought up to date with
  the settings it was last derived with, and a row whose ledger cannot be (never derived, or a
  delivery moment after the clock) stays pending with the reason, writing nothing.
- a tier change also swaps tags ``{tag_prefix}-tier-<old>`` for ``{tag_prefix}-tier-<new>``.
- any other kind adds the tag ``facts["tag"]``, else ``{tag_prefix}-<kind>`` (so a merchant
  can build a segment of everyone who got a win-back email).

The sink asks the adapter for capabilities (:func:`shopsync.adapter.capability`), never for
its name: fields and tags an adapter cannot write are left out of what it delivers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar

from shopsync.adapter import capabilities, capability, check_capabilities
from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError
from shopsync.sinks._base import (
    Cancelled,
    DeliveryContext,
    DeliveryError,
    Discount,
    Guarantee,
    action_value,
    discount_of,
)

__all__ = ["Platform"]

_TAG = re.compile(r"[^a-z0-9:_-]+")


def _tag(text: str) -> str:
    return _TAG.sub("-", text.lower()).strip("-")[:255]


class Platform:
    """Delivers actions to the shop they belong to, through its adapter's write capabilities.

    ``adapter`` is a connected adapter declaring at least one of ``discount_codes``, ``tags``
    and ``customer_fields`` (checked here, as :func:`shopsync.connect` does); actions of
    other shops are not accepted.
    """

    guarantee: ClassVar[Guarantee] = "exactly_once"
    contacts_customer: ClassVar[bool] = False
    stage: ClassVar[int] = 0

    def __init__(
        self,
        adapter: Any,
        *,
        name: str | None = None,
        tag_prefix: str = "shopsync",
        namespace: str = "loyalty",
        code_valid_for: dt.timedelta = dt.timedelta(days=90),
        tags: bool = True,
    ) -> None:
        check_capabilities(adapter)
        if not capabilities(adapter) & {"discount_codes", "tags", "customer_fields"}:
            raise ConfigurationError(
                f"the {adapter.platform} adapter declares no write capability "
                "(DiscountWriter, TagWriter, CustomerFieldWriter)"
            )
        self.adapter = adapter
        self.name = name or f"platform:{adapter.platform}:{adapter.shop}"
        self.tag_prefix = tag_prefix
        self.namespace = namespace
        self.code_valid_for = code_valid_for
        self.tags = tags
        self._ledger_checked: set[tuple[int, str, str, dt.datetime]] = set()

    def __repr__(self) -> str:
        return f"Platform({self.name!r})"

    def close(self) -> None:
        """The adapter belongs to the caller; nothing to close here."""

    def accepts(self, action: Action) -> bool:
        return bool(action.platform == self.adapter.platform and action.shop == self.adapter.shop)

    # ---------------------------------------------------------------- what to write

    def _discount(self, action: Action, now: dt.datetime) -> Discount | None:
        found = discount_of(action)
        if found is None:
            return None
        expires_at = found.expires_at or action.due_at + self.code_valid_for
        if expires_at <= now:
            raise Cancelled(f"discount code {found.code} expired at {expires_at.isoformat()}")
        return Discount(found.code, found.value, found.percent, expires_at)

    def _superseded(self, action: Action, context: DeliveryContext) -> bool:
        """True if a later tier change of this customer was already written here: writing
        this older one now (a retry) would put the customer back on the old tier."""
        from shopsync.store.outbox_rows import done_later

        shop_id = context.store.shop_id(action.platform, action.shop)
        store, customer, kind = context.store, action.customer_id, action.kind
        return bool(done_later(store, shop_id, customer, kind, self.name, action.due_at))

    def _plan(
        self, action: Action, context: DeliveryContext, preview: bool = False
    ) -> list[dict[str, Any]]:
        if action.kind == "loyalty_tier_change" and self._superseded(action, context):
            raise Cancelled("a later tier change of this customer was already written")
        ops: list[dict[str, Any]] = []
        discount = self._discount(action, context.now)
        if discount is not None:
            writer = capability(self.adapter, "discount_codes")
            if writer is None:
                raise Cancelled(f"the {self.adapter.platform} adapter cannot write discount codes")
            if context.customer is None:
                raise Cancelled("a customer-only code needs the customer")
            if writer.discount_limited_by == "email" and not context.customer.email:
                raise Cancelled("a customer-only code needs the customer's email address")
            starts = min(action.due_at, context.now)
            ops.append(
                {
                    "op": "discount_code",
                    "code": discount.code,
                    "amount": str(discount.value.amount) if discount.value else None,
                    "currency": discount.value.currency if discount.value else None,
                    "percent": discount.percent,
                    "expires_at": discount.expires_at.isoformat(),  # type: ignore[union-attr]
                    "starts_at": starts.isoformat(),
                    "_discount": discount,
                    "_starts": starts,
                }
            )
        if action.kind.startswith("loyalty_") and capability(self.adapter, "customer_fields"):
            values = {"points_balance": self._balance(action, context, preview)}
            tier = action_value(action, "to_tier")
            if tier:
                values["tier"] = str(tier)
            ops.append({"op": "loyalty_fields", "values": values})
        if self.tags and capability(self.adapter, "tags"):
            add, remove = self._tags(action)
            if add:
                ops.append({"op": "add_tags", "tags": add})
            if remove:
                ops.append({"op": "remove_tags", "tags": remove})
        return ops

    def _balance(self, action: Action, context: DeliveryContext, preview: bool) -> str:
        from shopsync.loyalty import LoyaltyError, balance, ledger_status, write_back_balance

        customer = context.customer
        if customer is None:
            return str(int(action.facts.get("points", 0)))
        # checked once per shop and delivery run: the data version costs a few aggregates
        key = (id(context.store), customer.platform, customer.shop, context.now)
        if key in self._ledger_checked:
            return str(balance(context.store, customer, context.now).approved)
        if preview:  # a dry run writes nothing, not even the ledger
            stale = ledger_status(context.store, customer.platform, customer.shop, context.now)
            if stale is not None:
                return f"(not current: {stale})"
            return str(balance(context.store, customer, context.now).approved)
        policy = context.policy  # the settings a ledger never derived is derived with
        if policy is not None and not policy.loyalty.enabled:
            policy = None
        try:
            points = write_back_balance(context.store, customer, context.now, policy).approved
        except LoyaltyError as stale:
            raise DeliveryError(f"points balance not written: {stale}") from None
        if len(self._ledger_checked) > 1000:  # a long-lived sink: keep only recent runs
            self._ledger_checked.clear()
        self._ledger_checked.add(key)
        return str(points)

    def _tags(self, action: Action) -> tuple[list[str], list[str]]:
        prefix = self.tag_prefix
        if "to_tier" in type(action).model_fields:
            add = [_tag(f"{prefix}-tier-{action_value(action, 'to_tier')}")]
            old = action_value(action, "from_tier")
            return add, ([_tag(f"{prefix}-tier-{old}")] if old else [])
        if action.facts.get("tag"):
            return [_tag(str(action.facts["tag"]))], []
        if action.kind.startswith("loyalty_"):
            return [], []
        return [_tag(f"{prefix}-{action.kind}")], []

    # ---------------------------------------------------------------- the protocol

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        ops = self._plan(action, context, preview=True)
        return {
            "platform": self.adapter.platform,
            "shop": self.adapter.shop,
            "customer_id": action.customer_id,
            "operations": [{k: v for k, v in op.items() if not k.startswith("_")} for op in ops],
        }

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        adapter = self.adapter
        customer_id = action.customer_id
        result: dict[str, Any] = {"operations": []}
        for op in self._plan(action, context):
            kind = op["op"]
            if kind == "discount_code":
                discount = op["_discount"]
                codes = capability(adapter, "discount_codes")
                assert codes is not None and context.customer is not None  # checked by _plan
                result["discount"] = codes.create_discount_code(
                    discount.code,
                    customer=context.customer,
                    amount=discount.value,
                    percent=discount.percent,
                    starts_at=op["_starts"],
                    expires_at=discount.expires_at,
                    title=action.reason,
                )
            elif kind == "loyalty_fields":
                fields = capability(adapter, "customer_fields")
                assert fields is not None  # checked by _plan
                values: dict[str, str | int] = {
                    k: int(v) if k == "points_balance" else str(v) for k, v in op["values"].items()
                }
                fields.set_customer_fields(customer_id, self.namespace, values)
                result["loyalty"] = op["values"]
            elif kind in ("add_tags", "remove_tags"):
                tags = capability(adapter, "tags")
                assert tags is not None  # checked by _plan
                if kind == "add_tags":
                    tags.add_customer_tags(customer_id, op["tags"])
                    result["tags_added"] = op["tags"]
                else:
                    tags.remove_customer_tags(customer_id, op["tags"])
                    result["tags_removed"] = op["tags"]
            result["operations"].append(kind)
        return result
