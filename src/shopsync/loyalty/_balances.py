"""Reading the stored ledger: a customer's balance and statement, the shop's liability."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shopsync.core.loyalty import from_micros
from shopsync.loyalty._refs import CustomerRef, ref, utc_micros
from shopsync.store import Store, ledger

__all__ = ["Balance", "StatementLine", "balance", "ledger_entries", "shop_balance", "statement"]


@dataclass(frozen=True)
class Balance:
    """Points by state (LoyaltyLion's vocabulary); ``lifetime`` = all four added up."""

    approved: int
    """Spendable now."""
    pending: int
    """Earned, still inside the return window."""
    spent: int
    expired: int

    @property
    def total(self) -> int:
        return self.approved + self.pending

    @property
    def lifetime(self) -> int:
        return self.approved + self.pending + self.spent + self.expired


@dataclass(frozen=True)
class StatementLine:
    at: dt.datetime
    kind: str
    """earn, approve, clawback, redeem, expire, bonus or adjust."""
    pending: int
    approved: int
    reason: str
    order_id: str | None
    source_key: str
    approved_balance: int
    """Approved balance after this line."""
    pending_balance: int


def _ledger_rows(store: Store, customer: CustomerRef, as_of: dt.datetime | None) -> list[Any]:
    platform, shop, customer_id = ref(customer)
    shop_id = store.shop_id(platform, shop)
    upto = None if as_of is None else utc_micros(as_of)
    return ledger.customer_entries(store, shop_id, customer_id, upto)


def balance(store: Store, customer: CustomerRef, as_of: dt.datetime | None = None) -> Balance:
    """The customer's points from the stored ledger (entries dated by ``as_of`` if given)."""
    rows = _ledger_rows(store, customer, as_of)
    return Balance(
        approved=sum(r.approved for r in rows),
        pending=sum(r.pending for r in rows),
        spent=-sum(r.approved for r in rows if r.kind == "redeem"),
        expired=-sum(r.approved for r in rows if r.kind == "expire"),
    )


def shop_balance(store: Store, platform: str, shop: str) -> Balance:
    """Every customer's points of one shop added up: the shop's points liability."""
    shop_id = store.shop_id(platform, shop)
    approved, pending, redeemed, expired = ledger.shop_points(store, shop_id)
    return Balance(approved=approved, pending=pending, spent=-redeemed, expired=-expired)


def statement(
    store: Store, customer: CustomerRef, as_of: dt.datetime | None = None
) -> list[StatementLine]:
    """Every ledger entry of the customer, oldest first, with its reason and running balances."""
    lines = []
    approved = pending = 0
    for r in _ledger_rows(store, customer, as_of):
        approved += r.approved
        pending += r.pending
        lines.append(
            StatementLine(
                at=from_micros(r.effective_at),
                kind=r.kind,
                pending=r.pending,
                approved=r.approved,
                reason=r.reason,
                order_id=r.order_id,
                source_key=r.source_key,
                approved_balance=approved,
                pending_balance=pending,
            )
        )
    return lines


def ledger_entries(store: Store, platform: str, shop: str) -> Sequence[Any]:
    """Every stored entry of a shop, in insertion order (for audits and tests)."""
    shop_id = store.shop_id(platform, shop)
    return ledger.shop_entries(store, shop_id)
