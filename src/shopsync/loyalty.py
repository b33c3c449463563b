"""The loyalty program on a store: points ledger, balances, statements, rewards, referrals.

The ledger (table ``loyalty_ledger``) is append-only and derived: :func:`sync` reads the
shop's orders and the loyalty inputs, runs the pure rules of :mod:`shopsync.core.loyalty` up
to ``as_of`` and appends the entries that are not there yet (each has a unique source key, so
running it again, or after a crash, adds nothing twice). Inputs that are not platform
records are recorded first, in ``loyalty_inputs``:

- :func:`record_referral` — the advocate, the friend (customer id or email), when, the IP;
- :func:`redeem` — turns approved points into a single-use discount code;
- :func:`adjust` — a manual correction with a reason;
- birthdays are recorded by :func:`sync` itself the first time it sees a value.

Bad input never disappears: orders in a currency other than the shop's, negative orders and
refunds beyond the order total are written to the store's quarantine (resource
``"loyalty"``) with the reason, and blocked referrals are reported in
:attr:`SyncResult.referrals`. A customer deleted on the platform keeps their ledger frozen
(no new entries, still readable); when a platform merges customers and moves an order, the
old owner's points for it are reversed by an ``adjust`` entry and the new owner earns them.

Example::

    result = shopsync.loyalty.sync(store, "shopify", "acme.myshopify.com", as_of=now)
    shopsync.loyalty.balance(store, customer)      # Balance(approved=..., pending=..., ...)
    code = shopsync.loyalty.redeem(store, customer, 500, as_of=now)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import polars as pl

from shopsync.adapter import Rejected
from shopsync.core import loyalty as rules
from shopsync.core import milestones
from shopsync.core.actions import (
    Action,
    LoyaltyAward,
    PointsExpiryWarning,
    RewardCode,
    TierChange,
)
from shopsync.core.features import paid_moment
from shopsync.core.loyalty import (
    DAY,
    Adjustment,
    BirthdayInput,
    Bonus,
    Derivation,
    Entry,
    History,
    LoyaltyError,
    OrderFacts,
    Person,
    Redemption,
    Referral,
    ReferralOutcome,
    from_micros,
    to_micros,
)
from shopsync.core.policy import Policy
from shopsync.models import Customer, Money
from shopsync.store import Store, _redemptions, ledger
from shopsync.store import _ledger_mark as _mark
from shopsync.store._privacy import email_token, existing_key
from shopsync.store.errors import IntegrityError
from shopsync.store.ledger import Connection
from shopsync.store.read import loyalty_tables, main_currency
from shopsync.store.schema import MONEY_SCALE

__all__ = [
    "Balance",
    "LoyaltyError",
    "StatementLine",
    "SyncResult",
    "adjust",
    "balance",
    "bring_up_to_date",
    "ledger_status",
    "record_referral",
    "redeem",
    "shop_balance",
    "statement",
    "sync",
    "write_back_balance",
]

CustomerRef = Customer | tuple[str, str, str]
"""A customer model, or ``(platform, shop, customer_id)``."""

_FLUSH = 50_000
_CLOCK_SLACK = 5 * 60 * 1_000_000  # micros: a clock a few minutes off is not "the future"


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


@dataclass
class SyncResult:
    added: int = 0
    """Entries appended to the ledger by this run."""
    derived: int = 0
    """Entries the rules produced (added + already there)."""
    customers: int = 0
    quarantined: int = 0
    referrals: list[ReferralOutcome] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    tiers: dict[str, str | None] = field(default_factory=dict)
    """Tier each derived customer holds at ``as_of`` (None: no tier)."""


# -- helpers ---------------------------------------------------------------------------------


def _ref(customer: CustomerRef) -> tuple[str, str, str]:
    if isinstance(customer, Customer):
        return customer.platform, customer.shop, customer.id
    platform, shop, customer_id = customer
    return platform, shop, str(customer_id)


def _utc(value: dt.datetime) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return to_micros(value.astimezone(dt.timezone.utc))


def _now() -> int:
    return to_micros(dt.datetime.now(dt.timezone.utc))


def shop_currency(store: Store, platform: str, shop: str, policy: Policy) -> str | None:
    """The policy's currency, else the one most of the shop's orders use (None: no orders)."""
    if policy.currency:
        return policy.currency
    return main_currency(store, store.shop_id(platform, shop))


# -- reading histories -----------------------------------------------------------------------


def _order_frames(store: Store, shop_id: int, with_lines: bool) -> dict[str, pl.DataFrame]:
    return loyalty_tables(store, shop_id, with_lines)


def _facts_by_customer(
    frames: dict[str, pl.DataFrame], policy: Policy
) -> dict[str, list[OrderFacts]]:
    earn = policy.loyalty.earn
    value = pl.col("subtotal")
    if earn.include_shipping:
        value = value + pl.col("total_shipping")
    if earn.include_tax:
        value = value + pl.col("total_tax")
    paid = paid_moment()
    table = (
        frames["orders"]
        .lazy()
        .select(
            "customer_id",
            "id",
            "created_at",
            paid.alias("paid"),
            "cancelled_at",
            "currency",
            value.alias("value"),
            "total",
        )
        .sort(["customer_id", "created_at", "id"])
        .collect(engine="in-memory")
    )
    refunds: dict[str, list[tuple[str, int, int]]] = {}
    for order_id, refund_id, at, amount in (
        frames["refunds"].sort(["order_id", "created_at", "id"]).iter_rows()
    ):
        refunds.setdefault(order_id, []).append((refund_id, at, amount))
    categories: dict[str, tuple[str, ...]] = {}
    if "line_items" in frames:
        grouped = (
            frames["line_items"]
            .filter(pl.col("product_type").is_not_null() & (pl.col("product_type") != ""))
            .group_by("order_id")
            .agg(pl.col("product_type").unique().sort())
        )
        categories = {oid: tuple(types) for oid, types in grouped.iter_rows()}
    out: dict[str, list[OrderFacts]] = {}
    no_refunds: tuple[tuple[str, int, int], ...] = ()
    for customer_id, oid, created, paid_at, cancelled, currency, val, total in table.iter_rows():
        out.setdefault(customer_id, []).append(
            OrderFacts(
                oid,
                created,
                paid_at,
                cancelled,
                currency,
                val,
                total,
                tuple(refunds[oid]) if oid in refunds else no_refunds,
                categories.get(oid, ()),
            )
        )
    return out


def _inputs(store: Store, shop_id: int) -> list[Any]:
    return ledger.input_rows(store, shop_id)


def _record_birthdays(
    store: Store, shop_id: int, frame: pl.DataFrame, inputs: list[Any], as_of: int
) -> list[dict[str, Any]]:
    """New birthday inputs: a value not seen before, dated by the customer's updated_at."""
    latest: dict[str, str] = {}
    for row in inputs:
        if row.kind == "birthday":
            latest[row.customer_id] = row.data["birthday"]
    rows = []
    for customer_id, birthday, updated_at, _ in frame.filter(
        pl.col("birthday").is_not_null() & (pl.col("updated_at") <= as_of)
    ).iter_rows():
        if latest.get(customer_id) != birthday:
            rows.append(
                {
                    "shop_id": shop_id,
                    "key": rules.source_key("birthday", customer_id, birthday, updated_at),
                    "kind": "birthday",
                    "customer_id": customer_id,
                    "occurred_at": updated_at,
                    "data": {"birthday": birthday},
                }
            )
    return rows


def _people(store: Store, shop_id: int, ids: set[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    if not ids:
        return found
    for row in ledger.contact_rows(store, shop_id, sorted(ids)):
        name = rules.normalize_text(f"{row.first_name or ''} {row.last_name or ''}")
        address = None
        if row.default_address:
            a = row.default_address
            address = rules.normalize_text(
                " ".join(str(a.get(k) or "") for k in ("address1", "zip", "country_code"))
            )
        found[row.id] = Person(row.id, row.email, name, address)
    return found


# -- sync ------------------------------------------------------------------------------------


def sync(
    store: Store,
    platform: str,
    shop: str,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    customer_ids: Iterable[str] | None = None,
    lookback: dt.timedelta = dt.timedelta(days=7),
    dry_run: bool = False,
) -> SyncResult:
    """Append every ledger entry due by ``as_of`` and return the loyalty actions due.

    Actions are those whose moment falls in ``(as_of - lookback, as_of]`` (awards, tier
    promotions), and expiry warnings whose warning date has passed while the expiry has not.
    Their idempotency keys let a planner run every day without sending anything twice.
    ``dry_run`` derives everything and writes nothing (no entries, no quarantine).
    A redemption or another input recorded while it derives makes it derive again.
    """
    ids = None if customer_ids is None else list(customer_ids)
    for _ in range(4):
        try:
            return _sync(store, platform, shop, as_of, policy, ids, lookback, dry_run)
        except _InputsMoved:
            continue
    raise LoyaltyError("loyalty inputs kept changing while the ledger was derived; run it again")


class _InputsMoved(Exception):
    """The loyalty inputs changed between their read and the write of the entries."""


def _sync(
    store: Store,
    platform: str,
    shop: str,
    as_of: dt.datetime,
    policy: Policy | None,
    customer_ids: list[str] | None,
    lookback: dt.timedelta,
    dry_run: bool,
) -> SyncResult:
    policy = policy or Policy()
    result = SyncResult()
    if not policy.loyalty.enabled:
        return result
    at = _utc(as_of)
    if not dry_run and at > _now() + _CLOCK_SLACK:
        # Entries dated ahead would approve, expire and spend points before their time.
        raise LoyaltyError(
            f"as_of {as_of.isoformat()} is in the future; only a dry_run may look ahead"
        )
    shop_id = store.shop_id(platform, shop)
    # read before the inputs: a change while deriving leaves the mark behind (stale)
    marking = not dry_run and customer_ids is None
    version = _mark.data_version(store, shop_id) if marking else None
    currency = shop_currency(store, platform, shop, policy) or ""  # no orders: nothing earns
    settings = policy.loyalty
    frames = _order_frames(store, shop_id, with_lines=bool(settings.category_bonus.points))
    facts = _facts_by_customer(frames, policy)
    inputs_version = _mark.inputs_version(store, shop_id)  # also checked before writing
    inputs = _inputs(store, shop_id)
    new_birthdays = _record_birthdays(store, shop_id, frames["customers"], inputs, at)
    if new_birthdays and not dry_run:
        with store.transaction() as conn:
            ledger.add_inputs(conn, new_birthdays)
        inputs_version = _mark.inputs_version(store, shop_id)
        inputs = _inputs(store, shop_id)
    elif new_birthdays:  # a dry run derives what a real run would, birthdays seen now included
        inputs = sorted(
            inputs + [SimpleNamespace(**row) for row in new_birthdays],
            key=lambda r: (r.occurred_at, r.key),
        )

    referrals = [
        Referral(
            r.key,
            r.customer_id,
            r.occurred_at,
            r.data.get("friend_id"),
            r.data.get("friend_email"),
            r.data.get("ip"),
        )
        for r in inputs
        if r.kind == "referral"
    ]
    bonuses: dict[str, list[Bonus]] = {}
    if referrals:
        emails = {
            e: cid
            for cid, e in frames["customers"]
            .select("id", "email")
            .filter(pl.col("email").is_not_null())
            .iter_rows()
        }
        involved = {r.advocate_id for r in referrals} | {
            r.friend_id for r in referrals if r.friend_id
        }
        involved |= {emails[r.friend_email] for r in referrals if r.friend_email in emails}
        outcomes, bonuses = rules.judge_referrals(
            referrals,
            _people(store, shop_id, involved),
            facts,
            emails,
            settings,
            at,
            currency=currency,
        )
        result.referrals = outcomes

    by_customer: dict[str, dict[str, list[Any]]] = {}
    for r in inputs:
        by_customer.setdefault(r.customer_id, {}).setdefault(r.kind, []).append(r)

    wanted = set(customer_ids) if customer_ids is not None else None
    known = frames["customers"]["id"].to_list()
    del frames
    entry_rows: list[dict[str, Any]] = []
    notes: list[rules.Note] = []
    recorded = _now()
    since = at - int(lookback.total_seconds() * 1_000_000)
    valid_until: int | None = None
    with store.transaction() as conn:
        if not dry_run and not _redemptions.lock_points(conn, shop_id, inputs_version):
            raise _InputsMoved  # a redemption landed since the read: derive again
        gone = _redemptions.removed_customers(conn, shop_id) if not dry_run else set()
        generations = _redemptions.moved_generations(conn, shop_id)
        for customer_id in known:
            if (wanted is not None and customer_id not in wanted) or customer_id in gone:
                continue
            mine = by_customer.get(customer_id, {})
            history = History(
                customer_id,
                tuple(facts.pop(customer_id, ())),
                tuple(
                    BirthdayInput(r.occurred_at, *_month_day(r.data["birthday"]))
                    for r in mine.get("birthday", ())
                ),
                tuple(
                    Redemption(r.key, r.occurred_at, r.data["points"])
                    for r in mine.get("redeem", ())
                ),
                tuple(
                    Adjustment(r.key, r.occurred_at, r.data["points"], r.data["reason"])
                    for r in mine.get("adjust", ())
                ),
                tuple(bonuses.get(customer_id, ())),
            )
            derivation = rules.derive(history, settings, at, currency=currency)
            if derivation.next_change is not None:
                valid_until = min(valid_until or derivation.next_change, derivation.next_change)
            result.tiers[customer_id] = derivation.tier
            result.customers += 1
            result.derived += len(derivation.entries)
            notes += derivation.notes
            result.actions += _actions(platform, shop, derivation, customer_id, policy, at, since)
            if not dry_run:
                entry_rows += [
                    _entry_row(shop_id, e, recorded, generations) for e in derivation.entries
                ]
                if len(entry_rows) >= _FLUSH:
                    result.added += ledger.add_entries(conn, entry_rows)
                    entry_rows = []
        if not dry_run:
            result.added += ledger.add_entries(conn, entry_rows)
            result.added += _reverse_moved_orders(conn, shop_id, at, recorded)
    if dry_run:
        return result
    if marking and at <= recorded:  # a ledger written ahead of the clock is a guess
        state = {
            "data": version,
            "inputs": inputs_version,
            "valid_until": valid_until,
            "loyalty": settings.model_dump(mode="json"),
            "currency": policy.currency,
        }
        for attempt in (1, 2):  # two first marks at once: one insert loses, then updates
            try:
                store.set_cursor(
                    platform, shop, _mark.RESOURCE, cursor=None, high_water=as_of, state=state
                )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
    if notes:
        result.quarantined = store.quarantine(
            platform,
            shop,
            [
                Rejected(
                    "loyalty",
                    n.key,
                    json.dumps({"customer_id": n.customer_id, "order_id": n.order_id}),
                    n.reason,
                )
                for n in notes
            ],
        )
    return result


def ledger_status(
    store: Store, platform: str, shop: str, at: dt.datetime, *, policy: Policy | None = None
) -> str | None:
    """Why the shop's ledger cannot be trusted at ``at`` (None: it is current).

    Current means: a full :func:`sync` (not ``dry_run``, every customer) derived it as of a
    moment no later than the clock, no time-driven change (approval, expiry, tier review,
    birthday) fell due between that moment and ``at``, and the store took in nothing the
    derivation reads since. With ``policy``, it must also have been derived with that
    policy's loyalty settings.
    """
    mark = store.get_cursor(platform, shop, _mark.RESOURCE)
    name = f"the loyalty ledger of {platform} shop {shop}"
    if mark is None or mark.high_water is None:
        return f"{name} was never brought up to date"
    state = mark.state
    derived = mark.high_water.isoformat()
    if policy is not None and (
        state.get("loyalty") != policy.loyalty.model_dump(mode="json")
        or state.get("currency") != policy.currency
    ):
        return f"{name} was derived as of {derived} with other loyalty settings"
    until = state.get("valid_until")
    if _utc(at) > _utc(mark.high_water) and until is not None and _utc(at) >= until:
        return (
            f"{name} was derived as of {derived}; points changed by time since "
            f"(an approval, expiry or tier review on {from_micros(until).isoformat()})"
        )
    shop_id = store.shop_id(platform, shop, create=False)
    if state.get("data") != _mark.data_version(store, shop_id) or state.get(
        "inputs"
    ) != _mark.inputs_version(store, shop_id):
        return f"{name} was derived as of {derived}; the shop's data changed since"
    return None


def bring_up_to_date(
    store: Store,
    platform: str,
    shop: str,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
) -> SyncResult | None:
    """Sync the shop's ledger as of ``as_of`` unless it is current; None if it was.

    Without ``policy`` the settings it was last derived with are used again. Raises
    :class:`LoyaltyError` rather than derive a ledger ahead of the clock (an expiry written
    for a future moment would stand even if the customer orders before it) or, without a
    policy, a ledger never derived (its settings are unknown).
    """
    why = ledger_status(store, platform, shop, as_of, policy=policy)
    if why is None:
        return None
    now = _now()
    if _utc(as_of) > now:
        raise LoyaltyError(
            f"{why}, and it is not brought up to date as of {as_of.isoformat()}: "
            f"that is after the present ({from_micros(now).isoformat()})"
        )
    if policy is None:
        mark = store.get_cursor(platform, shop, _mark.RESOURCE)
        if mark is None:
            raise LoyaltyError(
                f"{why}: run shopsync.plan(store, policy, as_of) or "
                "shopsync.loyalty.sync(store, platform, shop, as_of=..., policy=policy) first"
            )
        policy = Policy.model_validate(
            {"loyalty": mark.state["loyalty"], "currency": mark.state["currency"]}
        )
    return sync(store, platform, shop, as_of=as_of, policy=policy)


def write_back_balance(store: Store, customer: CustomerRef, at: dt.datetime) -> Balance:
    """The balance to write back to the platform at ``at``, from a current ledger only.

    The ledger is brought up to date first if it has to be (see :func:`bring_up_to_date`,
    whose :class:`LoyaltyError` says why it could not): a balance read from a ledger nobody
    kept current would overwrite the customer's real points on the shop.
    """
    platform, shop, _ = _ref(customer)
    bring_up_to_date(store, platform, shop, as_of=at)
    return balance(store, customer, at)


def _month_day(value: str) -> tuple[int, int]:
    date = dt.date.fromisoformat(value)
    return date.month, date.day


def _entry_row(
    shop_id: int, entry: Entry, recorded: int, generations: dict[tuple[str, str], int]
) -> dict[str, Any]:
    key = entry.key
    generation = generations.get((entry.customer_id, entry.order_id or ""), 0)
    if entry.order_id and generation:
        key = rules.source_key(key, f"g{generation}")  # the order came back: it earns again
    return {
        "shop_id": shop_id,
        "customer_id": entry.customer_id,
        "source_key": key,
        "kind": entry.kind,
        "pending": entry.pending,
        "approved": entry.approved,
        "effective_at": entry.at,
        "recorded_at": recorded,
        "order_id": entry.order_id,
        "reason": entry.reason,
        "detail": dict(entry.detail),
    }


def _reverse_moved_orders(conn: Connection, shop_id: int, at: int, recorded: int) -> int:
    """Reverse points of orders that now belong to another customer or no longer exist."""
    moved = ledger.moved_order_points(conn, shop_id)
    rows = []
    for row in moved:
        if not row.pending and not row.approved:
            continue
        where = f"customer {row.owner}" if row.owner else "no customer (deleted or guest)"
        rows.append(
            {
                "shop_id": shop_id,
                "customer_id": row.customer_id,
                "source_key": rules.source_key(
                    "adjust", "moved", row.customer_id, row.order_id, at
                ),
                "kind": "adjust",
                "pending": -int(row.pending),
                "approved": -int(row.approved),
                "effective_at": at,
                "recorded_at": recorded,
                "order_id": row.order_id,
                "reason": f"order {row.order_id} now belongs to {where}: its points move with it",
                "detail": {"owner": row.owner},
            }
        )
    return ledger.add_entries(conn, rows)


def _actions(
    platform: str,
    shop: str,
    derivation: Derivation,
    customer_id: str,
    policy: Policy,
    at: int,
    since: int,
) -> list[Action]:
    found: list[Action] = []
    base = {"platform": platform, "shop": shop, "customer_id": customer_id}
    for entry in derivation.entries:
        if entry.kind not in ("earn", "bonus") or not since < entry.at <= at:
            continue
        if entry.kind == "bonus" and entry.detail.get("milestone"):
            continue  # announced by a milestone notice below
        points = entry.pending + entry.approved
        ref = entry.order_id if entry.kind == "earn" else entry.key
        found.append(
            LoyaltyAward(
                **base,
                due_at=from_micros(entry.at),
                reason=entry.reason,
                facts={"points": points, "source_key": entry.key},
                idempotency_key=rules.source_key("loyalty_award", shop, ref),
                points=points,
                order_id=entry.order_id,
            )
        )
    for change in derivation.tier_changes:
        if change.promoted and change.to_tier and since < change.at <= at:
            day = from_micros(change.at).date().isoformat()
            found.append(
                TierChange(
                    **base,
                    due_at=from_micros(change.at),
                    reason=f"entered the {change.to_tier} tier",
                    facts={"from": change.from_tier, "to": change.to_tier},
                    idempotency_key=rules.source_key(
                        "loyalty_tier_change", shop, customer_id, change.to_tier, day
                    ),
                    from_tier=change.from_tier,
                    to_tier=change.to_tier,
                )
            )
    found += milestones.notices(platform, shop, customer_id, derivation, policy, at, since)
    expires = derivation.expires_at
    if expires is not None and derivation.approved > 0:
        for days in policy.loyalty.expiry.warn_days_before:
            warn_at = expires - days * DAY
            if warn_at <= at < expires:
                day = from_micros(expires).date().isoformat()
                found.append(
                    PointsExpiryWarning(
                        **base,
                        due_at=from_micros(warn_at),
                        reason=f"{derivation.approved} points expire on {day} without activity",
                        facts={"points": derivation.approved, "expires_on": day},
                        idempotency_key=rules.source_key(
                            "loyalty_expiry_warning", shop, customer_id, day, f"{days}d"
                        ),
                        points=derivation.approved,
                        expires_at=from_micros(expires),
                        days_before=days,
                    )
                )
    return found


# -- reading the ledger ----------------------------------------------------------------------


def _ledger_rows(store: Store, customer: CustomerRef, as_of: dt.datetime | None) -> list[Any]:
    platform, shop, customer_id = _ref(customer)
    shop_id = store.shop_id(platform, shop)
    upto = None if as_of is None else _utc(as_of)
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


# -- inputs ----------------------------------------------------------------------------------


def _record_input(
    store: Store,
    platform: str,
    shop: str,
    kind: str,
    customer_id: str,
    at: int,
    key: str,
    data: dict[str, Any],
) -> bool:
    shop_id = store.shop_id(platform, shop)
    with store.transaction() as conn:
        return bool(
            ledger.add_inputs(
                conn,
                [
                    {
                        "shop_id": shop_id,
                        "key": key,
                        "kind": kind,
                        "customer_id": customer_id,
                        "occurred_at": at,
                        "data": data,
                    }
                ],
            )
        )


def record_referral(
    store: Store,
    platform: str,
    shop: str,
    *,
    advocate_id: str,
    at: dt.datetime,
    friend_id: str | None = None,
    friend_email: str | None = None,
    ip: str | None = None,
    key: str | None = None,
) -> str:
    """Record that ``advocate_id`` referred a friend (by customer id or email); returns its key.

    The rewards follow at the next :func:`sync` once the friend's first order is paid and
    past its approval period. Recording the same key twice is a no-op.
    """
    if friend_id is None and not friend_email:
        raise LoyaltyError("a referral needs the friend's customer id or email")
    micros = _utc(at)
    if key is None:
        # The key carries no e-mail address (erasure must find nothing in keys); a referral
        # recorded by an older version under the plain address keeps its key.
        mail = (friend_email or "").strip().lower()
        key = rules.source_key("referral", advocate_id, friend_id or email_token(mail))
        if friend_id is None:
            legacy = rules.source_key("referral", advocate_id, mail)
            with store.engine.connect() as conn:
                shop_id = store.shop_id(platform, shop, conn, create=False)
                key = existing_key(conn, shop_id, [legacy]) or key
    data = {
        "friend_id": friend_id,
        "friend_email": friend_email and friend_email.strip().lower(),
        "ip": ip,
    }
    _record_input(store, platform, shop, "referral", advocate_id, micros, key, data)
    return key


def adjust(
    store: Store, customer: CustomerRef, points: int, *, at: dt.datetime, reason: str, key: str
) -> bool:
    """A manual correction of the approved balance (positive or negative) with its reason.

    ``key`` names the adjustment (e.g. a support ticket); recording it again is a no-op.
    Takes effect at the next :func:`sync`. Returns False if the key was recorded before.
    """
    platform, shop, customer_id = _ref(customer)
    if not reason.strip():
        raise LoyaltyError("an adjustment needs a reason")
    return _record_input(
        store,
        platform,
        shop,
        "adjust",
        customer_id,
        _utc(at),
        key,
        {"points": int(points), "reason": reason},
    )


def redeem(
    store: Store,
    customer: CustomerRef,
    points: int,
    *,
    as_of: dt.datetime,
    policy: Policy | None = None,
    key: str | None = None,
) -> RewardCode:
    """Spend approved points on a fixed reward; returns the discount-code action to deliver.

    ``points`` must be one of the policy's reward steps and at most the approved balance as of
    ``as_of`` (the ledger is brought up to date first). The same ``key`` (default: derived
    from the customer, the moment and the points) returns the same code without spending
    twice.
    """
    policy = policy or Policy()
    settings = policy.loyalty.redemption
    platform, shop, customer_id = _ref(customer)
    if points not in settings.steps:
        raise LoyaltyError(f"{points} points is not a reward step {list(settings.steps)}")
    at = _utc(as_of)
    key = key or rules.source_key("reward", customer_id, at, points)
    sync(store, platform, shop, as_of=as_of, policy=policy, customer_ids=[customer_id])
    shop_id = store.shop_id(platform, shop)
    # Check and record in one transaction, under the customer's lock: two redemptions at
    # once (threads, processes) see each other, and the second counts the first.
    with store.transaction() as conn:
        _redemptions.lock_customer(conn, shop_id, customer_id)
        done = ledger.input_data(conn, shop_id, key)
        if done is None:
            latest = _redemptions.latest_redemption(conn, shop_id, customer_id)
            if latest is not None and at < latest:
                raise LoyaltyError(
                    f"a redemption dated {as_of.isoformat()} is before the customer's latest "
                    f"one ({from_micros(latest).isoformat()}): it could spend points twice"
                )
            available = _redemptions.spendable(
                conn, shop_id, customer_id, at, lambda k: rules.source_key("redeem", k)
            )
            if available < points:
                raise LoyaltyError(
                    f"customer {customer_id} has {max(available, 0)} approved points, not {points}"
                )
            row = {
                "shop_id": shop_id,
                "key": key,
                "kind": "redeem",
                "customer_id": customer_id,
                "occurred_at": at,
                "data": {"points": points},
            }
            ledger.add_inputs(conn, [row])
    if done is None:
        sync(store, platform, shop, as_of=as_of, policy=policy, customer_ids=[customer_id])
    elif done.data["points"] != points:
        raise LoyaltyError(f"reward {key!r} was recorded for {done.data['points']} points")
    currency = shop_currency(store, platform, shop, policy)
    if currency is None:
        raise LoyaltyError(f"shop {shop!r} has no orders to tell its currency; set Policy.currency")
    value = Money(
        amount=(Decimal(points) / settings.points_per_unit).quantize(
            Decimal(1).scaleb(-MONEY_SCALE)
        ),
        currency=currency,
    ).rounded()
    digest = hashlib.sha256(f"{platform}:{shop}:{key}".encode()).hexdigest()[:10].upper()
    return RewardCode(
        platform=platform,
        shop=shop,
        customer_id=customer_id,
        due_at=as_of,
        reason=f"redeemed {points} points for {value}",
        facts={"points": points, "value": str(value.amount), "currency": currency},
        idempotency_key=rules.source_key("loyalty_reward_code", shop, key),
        code=f"{settings.code_prefix}-{digest}",
        value=value,
        points=points,
    )


def ledger_entries(store: Store, platform: str, shop: str) -> Sequence[Any]:
    """Every stored entry of a shop, in insertion order (for audits and tests)."""
    shop_id = store.shop_id(platform, shop)
    return ledger.shop_entries(store, shop_id)
