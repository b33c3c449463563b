"""The loyalty program on a store: points ledger, balances, statements, rewards, referrals.

The ledger (table ``loyalty_ledger``) is append-only and derived: :func:`update_ledger` reads the
shop's orders and the loyalty inputs, runs the pure rules of :mod:`shopsync.core.loyalty` up
to ``as_of`` and appends the entries that are not there yet (each has a unique source key, so
running it again, or after a crash, adds nothing twice). Inputs that are not platform
records are recorded first, in ``loyalty_inputs``:

- :func:`record_referral` — the advocate, the friend (customer id or email), when, the IP;
- :func:`redeem` — turns approved points into a single-use discount code;
- :func:`adjust` — a manual correction with a reason;
- birthdays are recorded by :func:`update_ledger` itself the first time it sees a value.

Bad input never disappears: orders in a currency other than the shop's, negative orders and
refunds beyond the order total are written to the store's quarantine (resource
``"loyalty"``) with the reason, and blocked referrals are reported in
:attr:`LedgerUpdate.referrals`. A customer deleted on the platform keeps their ledger frozen
(no new entries, still readable); when a platform merges customers and moves an order, the
old owner's points for it are reversed by an ``adjust`` entry and the new owner earns them.

The parts: ``_derivation`` (the ledger derived), ``_redemption`` (points spent),
``_inputs`` (referrals, adjustments), ``_balances`` (reading the ledger), ``_freshness``
(whether the ledger is current), ``_notices`` (one customer's actions, for a re-plan); the
rules themselves are pure, in :mod:`shopsync.core.loyalty` and its neighbours.

Example::

    result = shopsync.loyalty.update_ledger(store, "shopify", "acme.myshopify.com", as_of=now)
    shopsync.loyalty.balance(store, customer)      # Balance(approved=..., pending=..., ...)
    code = shopsync.loyalty.redeem(store, customer, 500, as_of=now)
"""

from __future__ import annotations

from typing import Any

from shopsync._renamed import old_name
from shopsync.core.loyalty import LoyaltyError
from shopsync.core.policy import Policy as Policy  # reachable here, as it always was
from shopsync.loyalty._balances import (
    Balance,
    StatementLine,
    balance,
    ledger_entries,
    shop_balance,
    statement,
)
from shopsync.loyalty._derivation import LedgerUpdate, update_ledger
from shopsync.loyalty._freshness import bring_up_to_date, ledger_status, write_back_balance
from shopsync.loyalty._histories import shop_currency
from shopsync.loyalty._inputs import adjust, record_referral
from shopsync.loyalty._notices import customer_actions
from shopsync.loyalty._redemption import redeem
from shopsync.loyalty._refs import CustomerRef

__all__ = [
    "Balance",
    "CustomerRef",
    "LedgerUpdate",
    "LoyaltyError",
    "StatementLine",
    "adjust",
    "balance",
    "bring_up_to_date",
    "customer_actions",
    "ledger_entries",
    "ledger_status",
    "record_referral",
    "redeem",
    "shop_balance",
    "shop_currency",
    "statement",
    "update_ledger",
    "write_back_balance",
]


def __getattr__(name: str) -> Any:
    return old_name(__name__, name)
