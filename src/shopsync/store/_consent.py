"""Marketing consent that does not come with a platform record: an imported list, a confirmed
double opt-in; and the counts that say how many customers marketing can reach.

A platform record whose consent is ``unknown`` says nothing about consent (WooCommerce core
has no field; Shopify's customer webhooks dropped it in 2025-01), so it never replaces a
consent the store holds: :func:`keep_known` is applied to every customer row before it is
written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, select

from shopsync.models import ConsentState, MarketingConsent
from shopsync.store import _rows
from shopsync.store.schema import consent_history, customers, suppressions

__all__ = [
    "ConsentCounts",
    "consent_counts",
    "customer_ids_by_email",
    "history",
    "keep_known",
    "set_consent",
    "suppressed_at",
]

_UNKNOWN = ConsentState.UNKNOWN.value
CHANNELS = ("email", "sms")


def keep_known(row: dict[str, Any], old: Any | None) -> set[str]:
    """Keep the stored consent of each channel the new row leaves ``unknown``; returns the
    channels kept (their history is unchanged)."""
    kept: set[str] = set()
    if old is None:
        return kept
    for channel in CHANNELS:
        if row[f"{channel}_consent"] == _UNKNOWN and getattr(old, f"{channel}_consent") != _UNKNOWN:
            for suffix in ("_consent", "_opt_in", "_consent_at"):
                row[channel + suffix] = getattr(old, channel + suffix)
            kept.add(channel)
    return kept


def customer_ids_by_email(
    conn: Connection, shop_id: int, emails: Iterable[str]
) -> dict[str, list[str]]:
    """Customer ids per e-mail address, compared case-insensitively (lower-cased keys)."""
    wanted = sorted({e.strip().lower() for e in emails if e and e.strip()})
    found: dict[str, list[str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            select(customers.c.id, func.lower(customers.c.email).label("email"))
            .where(customers.c.shop_id == shop_id, func.lower(customers.c.email).in_(chunk))
            .order_by(customers.c.id)
        )
        for r in rows:
            found.setdefault(r.email, []).append(r.id)
    return found


def history(conn: Connection, shop_id: int, customer_id: str) -> list[tuple[str, dt.datetime, str]]:
    """(channel, observed_at, state) for every consent change seen, oldest first."""
    rows = conn.execute(
        select(consent_history)
        .where(
            consent_history.c.shop_id == shop_id,
            consent_history.c.customer_id == customer_id,
        )
        .order_by(consent_history.c.observed_at, consent_history.c.channel)
    )
    return [(r.channel, _rows.from_micros(r.observed_at), r.state) for r in rows]  # type: ignore[misc]


def suppressed_at(conn: Connection, shop_id: int, customer_id: str, channel: str) -> int | None:
    """When the customer unsubscribed this channel through shopsync's link (micros), if so."""
    return conn.execute(
        select(suppressions.c.created_at).where(
            suppressions.c.shop_id == shop_id,
            suppressions.c.customer_id == customer_id,
            suppressions.c.channel == channel,
        )
    ).scalar()


def set_consent(
    conn: Connection,
    shop_id: int,
    customer_id: str,
    channel: str,
    consent: MarketingConsent,
    *,
    source: str,
    at: int,
    lift_suppression: bool = False,
    suppressed_before: int | None = None,
    newer_only: bool = False,
) -> bool | None:
    """Record one channel's consent of a stored customer, without touching the record's
    ``updated_at`` (a later platform change must still replace the record). None when the
    customer is not stored; False when the store already held exactly this consent.
    ``lift_suppression`` lifts only a suppression recorded before ``suppressed_before``
    (micros), when given: checked in the same statement, so an unsubscribe that lands after
    the caller's check (a newer click) is never lifted with the older one. ``newer_only``
    writes nothing (False) over a stored consent at least as recent, checked here under the
    shop's lock: one that landed after the caller's own check (a sync page) stands."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}")
    old = conn.execute(
        select(
            customers.c[f"{channel}_consent"],
            customers.c[f"{channel}_opt_in"],
            customers.c[f"{channel}_consent_at"],
        ).where(customers.c.shop_id == shop_id, customers.c.id == customer_id)
    ).first()
    if old is None:
        return None
    if newer_only and _held_newer(old, consent):
        return False
    values = {
        f"{channel}_consent": consent.state.value,
        f"{channel}_opt_in": consent.opt_in_level.value,
        f"{channel}_consent_at": _rows.opt_micros(consent.updated_at),
    }
    if lift_suppression:
        older = (
            () if suppressed_before is None else (suppressions.c.created_at < suppressed_before,)
        )
        conn.execute(
            suppressions.delete().where(
                suppressions.c.shop_id == shop_id,
                suppressions.c.customer_id == customer_id,
                suppressions.c.channel == channel,
                *older,
            )
        )
    if tuple(old) == tuple(values.values()):
        return False
    conn.execute(
        customers.update()
        .where(customers.c.shop_id == shop_id, customers.c.id == customer_id)
        .values(**values)
    )
    last = conn.execute(
        select(func.max(consent_history.c.observed_at)).where(
            consent_history.c.shop_id == shop_id,
            consent_history.c.customer_id == customer_id,
            consent_history.c.channel == channel,
        )
    ).scalar()
    conn.execute(
        consent_history.insert().values(
            shop_id=shop_id,
            customer_id=customer_id,
            channel=channel,
            observed_at=max(at, (last or 0) + 1),
            state=consent.state.value,
            opt_in_level=consent.opt_in_level.value,
            consent_updated_at=_rows.opt_micros(consent.updated_at),
            source=source[:64],
        )
    )
    return True


def _held_newer(old: Any, new: MarketingConsent) -> bool:
    """Whether the stored ``(state, opt_in_level, consent_at)`` is at least as recent as
    ``new`` (a redacted customer's consent is never replaced)."""
    state, _, at = old
    if state == ConsentState.REDACTED.value:
        return True
    if state == _UNKNOWN or at is None:
        return False
    return new.updated_at is None or _rows.to_micros(new.updated_at) <= at


@dataclass(frozen=True)
class ConsentCounts:
    """How many customers e-mail marketing can reach, and why the others cannot."""

    customers: int = 0
    contactable: int = 0
    """Subscribed, with an address, not unsubscribed through shopsync's link."""
    by_state: Mapping[str, int] = field(default_factory=dict)
    """Customers with an address per e-mail consent state."""
    no_email: int = 0
    suppressed: int = 0
    by_source: Mapping[str, int] = field(default_factory=dict)
    """Contactable customers per source of their latest consent (``platform`` for a synced
    record, else the import or double opt-in that recorded it)."""


def consent_counts(conn: Connection, shop_id: int) -> ConsentCounts:
    """One grouped read of the shop's customers (see :class:`ConsentCounts`)."""
    suppressed = (
        select(suppressions.c.customer_id)
        .where(suppressions.c.shop_id == shop_id, suppressions.c.channel == "email")
        .scalar_subquery()
    )
    has_email = and_(customers.c.email.is_not(None), customers.c.email != "")
    rows = conn.execute(
        select(
            customers.c.email_consent,
            has_email.label("has_email"),
            customers.c.id.in_(suppressed).label("suppressed"),
            func.count().label("n"),
        )
        .where(customers.c.shop_id == shop_id)
        .group_by(customers.c.email_consent, "has_email", "suppressed")
    ).all()
    total = no_email = quiet = contactable = 0
    by_state: dict[str, int] = {}
    for state, with_email, is_suppressed, n in rows:
        total += n
        if not with_email:
            no_email += n
            continue
        by_state[state] = by_state.get(state, 0) + n
        if is_suppressed:
            quiet += n
        elif state == ConsentState.SUBSCRIBED.value:
            contactable += n
    latest = (
        select(
            consent_history.c.customer_id,
            func.max(consent_history.c.observed_at).label("at"),
        )
        .where(consent_history.c.shop_id == shop_id, consent_history.c.channel == "email")
        .group_by(consent_history.c.customer_id)
        .subquery()
    )
    sources = conn.execute(
        select(consent_history.c.source, func.count())
        .select_from(
            consent_history.join(
                latest,
                and_(
                    consent_history.c.customer_id == latest.c.customer_id,
                    consent_history.c.observed_at == latest.c.at,
                ),
            ).join(
                customers,
                and_(
                    customers.c.shop_id == shop_id,
                    customers.c.id == consent_history.c.customer_id,
                ),
            )
        )
        .where(
            consent_history.c.shop_id == shop_id,
            consent_history.c.channel == "email",
            customers.c.email_consent == ConsentState.SUBSCRIBED.value,
            has_email,
            customers.c.id.not_in(suppressed),
        )
        .group_by(consent_history.c.source)
    ).all()
    return ConsentCounts(
        customers=total,
        contactable=contactable,
        by_state=by_state,
        no_email=no_email,
        suppressed=quiet,
        by_source={str(s or "platform"): int(n) for s, n in sources},
    )
