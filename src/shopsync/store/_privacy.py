"""The store's SQL for privacy: tombstones, shop activity, erasure of keys and referrals, and
the access export; the bodies of :meth:`Store.export_customer
<shopsync.store.Store.export_customer>` and :meth:`Store.redact_customer
<shopsync.store.Store.redact_customer>`.

A tombstone keeps a deleted or redacted record out of the store whatever a late delivery or
a later sync page says. Both platforms sign only the body of a delivery, and a deletion body
is nothing but an id, so a deletion can be replayed under another resource's topic and a
tombstone can be wrong; it must never block an honest re-sync for good. An operator lists
and lifts them here (``shopsync tombstones list|lift``); the next full sync then brings back
whatever the platform still has.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    update,
)

from shopsync.models import Customer, Order
from shopsync.store import _rows, facts, incremental, redemptions
from shopsync.store._copy import chunks
from shopsync.store._upsert import bury, delete_rows
from shopsync.store.schema import (
    consent_history,
    customers,
    loyalty_due,
    loyalty_inputs,
    loyalty_ledger,
    orders,
    outbox,
    program_due,
    quarantine,
    refunds,
    reviews,
    suppressions,
    sync_cursors,
    tombstones,
    webhook_deliveries,
)

if TYPE_CHECKING:
    from shopsync.store import Store

__all__ = [
    "Tombstone",
    "email_token",
    "erase_mentions",
    "export_customer",
    "export_extras",
    "last_activity",
    "lift_tombstones",
    "list_tombstones",
    "redact_customer",
]

RESOURCES = ("customers", "orders", "products", "checkouts")


@dataclass(frozen=True)
class Tombstone:
    """A record the store keeps out: ``reason`` is ``deleted`` or ``redacted``."""

    resource: str
    record_id: str
    reason: str
    at: dt.datetime


def list_tombstones(conn: Connection, shop_id: int, resource: str | None = None) -> list[Tombstone]:
    query = select(tombstones).where(tombstones.c.shop_id == shop_id)
    if resource is not None:
        query = query.where(tombstones.c.resource == resource)
    rows = conn.execute(query.order_by(tombstones.c.resource, tombstones.c.id))
    return [
        Tombstone(r.resource, r.id, r.reason, _rows.from_micros(r.at))  # type: ignore[arg-type]
        for r in rows
    ]


def lift_tombstones(
    conn: Connection,
    shop_id: int,
    resource: str | None = None,
    ids: Iterable[str] | None = None,
) -> int:
    """Remove tombstones (all of the shop, of one resource, or these ids of it)."""
    if resource is not None and resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}: one of {', '.join(RESOURCES)}")
    where = [tombstones.c.shop_id == shop_id]
    if resource is not None:
        where.append(tombstones.c.resource == resource)
    if ids is not None:
        wanted = sorted({str(i) for i in ids})
        if not wanted:
            return 0
        where.append(tombstones.c.id.in_(wanted))
    return int(conn.execute(tombstones.delete().where(*where)).rowcount)


# Compliance topics are the app's, not the shop's subscriptions: Shopify sends them after the
# uninstall too, so they are no sign that the shop is still installed.
COMPLIANCE_TOPICS = ("customers/redact", "customers/data_request", "shop/redact")


def last_activity(conn: Connection, shop_id: int) -> dt.datetime | None:
    """The last sign that the shop is installed: a sync checkpoint or a delivery received
    (other than a compliance topic)."""
    synced = conn.execute(
        select(func.max(sync_cursors.c.updated_at)).where(sync_cursors.c.shop_id == shop_id)
    ).scalar()
    delivered = conn.execute(
        select(func.max(webhook_deliveries.c.received_at)).where(
            webhook_deliveries.c.shop_id == shop_id,
            webhook_deliveries.c.topic.notin_(COMPLIANCE_TOPICS),
        )
    ).scalar()
    known = [v for v in (synced, delivered) if v is not None]
    return _rows.from_micros(max(known)) if known else None


# -- keys without personal data ------------------------------------------------------------


def email_token(email: str) -> str:
    """What an idempotency key holds instead of an e-mail address: ``email-sha256:<32 hex>``.

    Deterministic, so recording the same referral twice stays a no-op; a hash of an address
    can still be matched by whoever has the address, so erasure replaces it too."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return f"email-sha256:{digest[:32]}"


# Columns where a key or a payload may carry an e-mail address: keys derived from a referral
# (input key -> ledger ``bonus:referral:<key>:<side>`` -> outbox ``loyalty_award:<shop>:...``),
# and the JSON that repeats them.
_KEYED: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (loyalty_inputs, ("key", "data")),
    (loyalty_ledger, ("source_key", "detail", "reason")),
    (outbox, ("idempotency_key", "action", "result", "reason")),
    (reviews, ("key",)),
)


def _replace(value: Any, pattern: re.Pattern[str], tokens: dict[str, str]) -> Any:
    def swap(match: re.Match[str]) -> str:
        return tokens[match.group(0).lower()]

    if isinstance(value, str):
        return pattern.sub(swap, value)
    if value is None:
        return None
    return json.loads(pattern.sub(swap, json.dumps(value)))


def erase_mentions(conn: Connection, shop_id: int, customer_id: str, emails: Iterable[str]) -> int:
    """Erase a person from what other customers' records keep about them (GDPR erasure).

    Referral inputs naming them as the friend (by id or e-mail) lose the e-mail and the IP
    address; every key and payload holding one of their addresses (or its
    :func:`email_token`) gets one random token instead, the same in every table, so the
    ledger entries derived from a referral key still match it and nothing is credited or
    sent twice. Returns how many rows changed."""
    values = sorted({e.strip().lower() for e in emails if e and e.strip()})
    changed = 0
    referrals = conn.execute(
        select(loyalty_inputs.c.id, loyalty_inputs.c.data).where(
            loyalty_inputs.c.shop_id == shop_id, loyalty_inputs.c.kind == "referral"
        )
    ).all()
    for row in referrals:
        data = dict(row.data or {})
        mail = str(data.get("friend_email") or "").strip().lower()
        if data.get("friend_id") != customer_id and not (mail and mail in values):
            continue
        data.update(friend_email=None, ip=None)
        conn.execute(update(loyalty_inputs).where(loyalty_inputs.c.id == row.id).values(data=data))
        changed += 1
    needles = values + [email_token(v) for v in values]
    if not needles:
        return changed
    # One random token per value (the address, its hash), the same in every table.
    tokens = {n: f"erased-{secrets.token_hex(8)}" for n in needles}
    pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE)
    for table, names in _KEYED:
        columns: list[Column[Any]] = [table.c[n] for n in names]
        hits = [
            func.lower(cast(c, Text)).contains(n, autoescape=True) for c in columns for n in needles
        ]
        rows = conn.execute(
            select(table.c.id, *columns).where(table.c.shop_id == shop_id, or_(*hits))
        ).all()
        for row in rows:
            fresh = {n: _replace(row._mapping[n], pattern, tokens) for n in names}
            conn.execute(update(table).where(table.c.id == row.id).values(**fresh))
            changed += 1
    return changed


# -- access export -------------------------------------------------------------------------


def _plain(row: Any, drop: tuple[str, ...] = ("shop_id",)) -> dict[str, Any]:
    out = {}
    for key, value in row._mapping.items():
        if key in drop:
            continue
        out[key] = value
    return out


def _instants(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        if isinstance(data.get(name), int):
            data[name] = _rows.from_micros(data[name]).isoformat()  # type: ignore[union-attr]
    return data


def export_extras(
    conn: Connection, shop_id: int, customer_id: str, emails: Iterable[str]
) -> dict[str, Any]:
    """Everything besides the customer row, their orders and consent history that the store
    holds about a person (GDPR access): guest orders under their e-mail, loyalty ledger and
    inputs, referrals naming them as the friend, reviews, outbox messages, suppressions and
    survey answers."""
    from shopsync.store.survey_rows import export_answers  # it imports the store package

    values = sorted({e.strip().lower() for e in emails if e and e.strip()})
    guest_ids: list[str] = []
    if values:
        guest_ids = list(
            conn.execute(
                select(orders.c.id).where(
                    orders.c.shop_id == shop_id,
                    func.lower(orders.c.email).in_(values),
                    or_(orders.c.customer_id.is_(None), orders.c.customer_id != customer_id),
                )
            ).scalars()
        )

    def rows(table: Table, *where: Any, order: Any = None) -> list[dict[str, Any]]:
        query = select(table).where(table.c.shop_id == shop_id, *where)
        if order is not None:
            query = query.order_by(order)
        return [_plain(r) for r in conn.execute(query)]

    ledger = [
        _instants(r, "effective_at", "recorded_at")
        for r in rows(
            loyalty_ledger, loyalty_ledger.c.customer_id == customer_id, order=loyalty_ledger.c.id
        )
    ]
    inputs = [
        _instants(r, "occurred_at")
        for r in rows(
            loyalty_inputs, loyalty_inputs.c.customer_id == customer_id, order=loyalty_inputs.c.id
        )
    ]
    referrals = []
    for r in rows(loyalty_inputs, loyalty_inputs.c.kind == "referral", order=loyalty_inputs.c.id):
        data = r["data"] or {}
        mail = str(data.get("friend_email") or "").strip().lower()
        if data.get("friend_id") == customer_id or (mail and mail in values):
            referrals.append(
                {
                    "advocate_id": r["customer_id"],
                    "at": _rows.from_micros(r["occurred_at"]).isoformat(),  # type: ignore[union-attr]
                    **data,
                }
            )
    messages = [
        _instants(r, "due_at", "next_attempt_at", "created_at", "updated_at", "finished_at")
        for r in rows(outbox, outbox.c.customer_id == customer_id, order=outbox.c.id)
    ]
    return {
        "guest_order_ids": guest_ids,
        "loyalty_ledger": ledger,
        "loyalty_inputs": inputs,
        "referrals": referrals,
        "reviews": [
            _instants(r, "reviewed_at")
            for r in rows(reviews, reviews.c.customer_id == customer_id, order=reviews.c.id)
        ],
        "outbox": messages,
        "suppressions": [
            _instants(r, "created_at")
            for r in rows(suppressions, suppressions.c.customer_id == customer_id)
        ],
        "survey_answers": export_answers(conn, shop_id, customer_id),
    }


def export_customer(
    store: Store, platform: str, shop: str, customer_id: str, order_ids: Iterable[str]
) -> dict[str, Any]:
    """:meth:`Store.export_customer <shopsync.store.Store.export_customer>`."""
    customer = store.get(Customer, platform, shop, customer_id)
    shop_id = store.shop_id(platform, shop, create=False)
    emails = [customer.email] if customer is not None and customer.email else []
    with store.engine.connect() as conn:
        owned = list(
            conn.execute(
                select(orders.c.id).where(
                    orders.c.shop_id == shop_id, orders.c.customer_id == customer_id
                )
            ).scalars()
        )
        extras = export_extras(conn, shop_id, customer_id, emails)
        from shopsync.store.checkout_rows import export_checkouts  # issue 22
        from shopsync.store.event_rows import export_events

        extras["checkouts"] = export_checkouts(conn, shop_id, customer_id, emails)
        extras["browse_events"] = export_events(conn, shop_id, customer_id)
    wanted = [*order_ids, *extras.pop("guest_order_ids")]
    chosen = [*owned, *sorted({str(i) for i in wanted} - set(owned))]
    return {
        "platform": platform,
        "shop": shop,
        "customer_id": customer_id,
        "customer": customer.model_dump(mode="json") if customer else None,
        "orders": [o.model_dump(mode="json") for o in store._read(Order, platform, shop, chosen)],
        "consent_history": [
            {"channel": ch, "observed_at": at.isoformat(), "state": state}
            for ch, at, state in store.consent_history(platform, shop, customer_id)
        ],
        **extras,
    }


# -- erasure -------------------------------------------------------------------------------


def redact_customer(
    store: Store,
    platform: str,
    shop: str,
    customer_id: str,
    conn: Connection | None,
    order_ids: Iterable[str],
    contacts: Iterable[str],
) -> None:
    """:meth:`Store.redact_customer <shopsync.store.Store.redact_customer>`."""
    with store._conn(conn) as c:
        shop_id = store.shop_id(platform, shop, c)
        store._writing(c, shop_id)
        incremental.hold_moments(c, shop_id)  # a settle under way writes them no moment
        redemptions.lock_points(c, shop_id)  # a loyalty sync under way writes them nothing
        row = c.execute(
            select(customers.c.email, customers.c.phone).where(
                customers.c.shop_id == shop_id, customers.c.id == customer_id
            )
        ).first()
        known = [*contacts, *(row or ())]
        mentions = sorted({str(v).strip().lower() for v in known if v and str(v).strip()})
        emails = [m for m in mentions if "@" in m]
        owned = [orders.c.customer_id == customer_id]
        if emails:
            owned.append(func.lower(orders.c.email).in_(emails))
        targets = {str(order_id) for order_id in order_ids}
        targets |= set(
            c.execute(select(orders.c.id).where(orders.c.shop_id == shop_id, or_(*owned))).scalars()
        )
        seq = facts.next_seq(c, shop_id, erasure=True) if targets else 0
        for chunk in chunks(sorted(targets)):
            c.execute(
                update(orders)
                .where(orders.c.shop_id == shop_id, orders.c.id.in_(chunk))
                .values(email=None, billing_address=None, shipping_address=None, seq=seq)
            )
            c.execute(
                update(refunds)
                .where(refunds.c.shop_id == shop_id, refunds.c.order_id.in_(chunk))
                .values(note=None)
            )
        for table, column in (
            (customers, "id"),
            (consent_history, "customer_id"),
            (loyalty_ledger, "customer_id"),
            (loyalty_inputs, "customer_id"),
            (loyalty_due, "customer_id"),  # a moment can tell a birthday (issue 19)
            (program_due, "customer_id"),
            (reviews, "customer_id"),
        ):
            delete_rows(c, table, shop_id, [customer_id], column=column)
        # Referrals naming them, and keys or payloads holding their e-mail, in other
        # customers' records too (an advocate's referral, ledger and outbox keys).
        erase_mentions(c, shop_id, customer_id, emails)
        from shopsync.store import survey_rows

        survey_rows.redact_answers(c, shop_id, customer_id)  # scores stay, unlinked
        from shopsync.store.checkout_rows import erase_checkouts  # issue 22
        from shopsync.store.event_rows import erase_events

        erase_checkouts(c, shop_id, customer_id, emails)
        erase_events(c, shop_id, customer_id)
        # Outbox rows keep their key (so nothing is ever sent again) and lose the rest.
        c.execute(
            update(outbox)
            .where(outbox.c.shop_id == shop_id, outbox.c.customer_id == customer_id)
            .values(
                action={},
                result=None,
                reason="customer redacted",
                status=case((outbox.c.status == "done", "done"), else_="cancelled"),
            )
        )
        found = [and_(quarantine.c.resource == "customers", quarantine.c.record_id == customer_id)]
        for chunk in chunks(sorted(targets)):
            found.append(and_(quarantine.c.resource == "orders", quarantine.c.record_id.in_(chunk)))
        raw = func.lower(quarantine.c.raw)
        found += [raw.contains(m, autoescape=True) for m in mentions]
        c.execute(quarantine.delete().where(quarantine.c.shop_id == shop_id, or_(*found)))
        at = _rows.to_micros(dt.datetime.now(dt.timezone.utc))
        bury(c, shop_id, "customers", [customer_id], "redacted", at)
        bury(c, shop_id, "orders", sorted(targets), "redacted", at)
        # a guest checkout has only an e-mail: its digest keeps a late version out
        bury(c, shop_id, "checkouts", [email_token(e) for e in emails], "redacted", at)
