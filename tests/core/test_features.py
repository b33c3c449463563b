"""Features against a slow, obviously correct reference written over the shared models."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl
import pytest

from shopsync.core.features import FEATURE_SCHEMA
from shopsync.frames import customer_features
from shopsync.models import (
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    MarketingConsent,
    Money,
    Order,
    Refund,
)
from shopsync.store import Store
from shopsync.testing.generator import generate_shop

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
PAID_WITHOUT_DATE = {"paid", "partially_paid", "partially_refunded", "refunded"}
DAY = dt.timedelta(days=1)


def reference(
    customers: list[Customer],
    orders: list[Order],
    consent: dict[str, list[tuple[str, dt.datetime, dt.datetime, str]]],
    as_of: dt.datetime,
    currency: str,
) -> dict[str, dict[str, Any]]:
    """Each feature computed the long way, one customer and one order at a time."""
    out: dict[str, dict[str, Any]] = {}
    for c in customers:
        if c.created_at > as_of:
            continue
        paid: list[tuple[dt.datetime, str, Decimal, Decimal, Order]] = []
        foreign = 0
        for o in orders:
            if o.customer_id != c.id or o.created_at > as_of:
                continue
            moment = o.paid_at
            if moment is None and o.financial_status.value in PAID_WITHOUT_DATE:
                moment = o.processed_at or o.created_at
            if moment is None or moment > as_of:
                continue
            if o.cancelled_at is not None and o.cancelled_at <= as_of:
                continue
            if o.total.amount <= 0:
                continue
            if o.currency != currency:
                foreign += 1
                continue
            refunded = sum(
                (r.amount.amount for r in o.refunds if r.created_at <= as_of), Decimal(0)
            )
            paid.append((o.created_at, o.id, o.total.amount, min(refunded, o.total.amount), o))
        paid.sort(key=lambda p: (p[0], p[1]))
        gross = sum((p[2] for p in paid), Decimal(0))
        refunded_sum = sum((p[3] for p in paid), Decimal(0))
        net = gross - refunded_sum
        gaps = [(b[0] - a[0]) / DAY for a, b in itertools.pairwise(paid)]
        states = {}
        for channel in ("email", "sms"):
            seen = [
                s for ch, since, _, s in consent.get(c.id, []) if ch == channel and since <= as_of
            ]
            states[channel] = seen[-1] if seen else "unknown"
        lines = [li for p in paid for li in p[4].line_items]
        out[c.id] = {
            "customer_id": c.id,
            "created_at": c.created_at,
            "birthday": c.birthday,
            "email_consent": states["email"],
            "sms_consent": states["sms"],
            "currency": currency,
            "paid_orders": len(paid),
            "foreign_currency_orders": foreign,
            "first_order_at": paid[0][0] if paid else None,
            "last_order_at": paid[-1][0] if paid else None,
            "days_since_last_order": (as_of - paid[-1][0]) / DAY if paid else None,
            "gross_spend": gross,
            "refunded": refunded_sum,
            "net_spend": net,
            "average_order_value": (net / len(paid)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            if paid
            else None,
            "spend_12m": sum((p[2] - p[3] for p in paid if p[0] > as_of - 365 * DAY), Decimal(0)),
            "refund_rate": float(refunded_sum / gross) if gross else None,
            "gap_median_days": statistics.median(gaps) if gaps else None,
            "gap_mean_days": statistics.fmean(gaps) if gaps else None,
            "products": sorted({li.product_id for li in lines if li.product_id is not None}),
            "categories": sorted({li.product_type for li in lines if li.product_type}),
        }
    return out


def _usd(amount: str, currency: str = "USD") -> Money:
    return Money.of(amount, currency)


def _awkward_orders(state: Any) -> list[Order]:
    """Orders that exercise the bad-input rules: another currency, zero value, over-refund."""
    buyers = sorted({o.customer_id for o in state.orders.values() if o.customer_id})[:3]
    template = next(o for o in state.orders.values() if o.customer_id == buyers[0])
    at = END - 40 * DAY
    common = dict(
        platform=template.platform,
        shop=template.shop,
        created_at=at,
        updated_at=at + DAY,
        paid_at=at,
        financial_status=FinancialStatus.PAID,
        line_items=(),
    )

    def money(currency: str, total: str, refunded: str = "0") -> dict[str, Money]:
        return dict(
            subtotal=_usd(total, currency),
            total_discounts=_usd("0", currency),
            total_shipping=_usd("0", currency),
            total_tax=_usd("0", currency),
            total=_usd(total, currency),
            total_refunded=_usd(refunded, currency),
        )

    return [
        Order(id="9000001", customer_id=buyers[0], currency="EUR", **money("EUR", "50"), **common),
        Order(id="9000002", customer_id=buyers[1], currency="USD", **money("USD", "0"), **common),
        Order(
            id="9000003",
            customer_id=buyers[2],
            currency="USD",
            refunds=(
                Refund(id="r1", created_at=at + DAY, amount=_usd("30")),
                Refund(id="r2", created_at=at + 2 * DAY, amount=_usd("30")),
            ),
            **money("USD", "40", "40"),
            **common,
        ),
    ]


def _consent_history(versions: list[Customer]) -> list[tuple[str, dt.datetime, dt.datetime, str]]:
    """(channel, counts from, first seen, state) per change, the latest seen last: a state
    counts from the platform's consent date when that is earlier than the version's."""
    rows = []
    for channel in ("email", "sms"):
        last = None
        for v in sorted(versions, key=lambda v: v.updated_at):
            consent = getattr(v.consent, channel)
            key = (consent.state.value, consent.opt_in_level.value)
            if key != last:
                last = key
                since = min(consent.updated_at or v.updated_at, v.updated_at)
                rows.append((channel, since, v.updated_at, consent.state.value))
    return sorted(rows, key=lambda r: r[2])


def _consent_changes(state: Any) -> list[Customer]:
    """Later versions of some customers with another e-mail consent (goes to consent_history);
    SMS consent as before (a record saying ``unknown`` would keep the stored one anyway)."""
    changed = []
    for i, c in enumerate(sorted(state.customers.values(), key=lambda c: c.id)[::7]):
        new_state = ConsentState.UNSUBSCRIBED if i % 2 else ConsentState.SUBSCRIBED
        changed.append(
            c.model_copy(
                update={
                    "updated_at": c.updated_at + (30 + i) * DAY,
                    "consent": Consent(email=MarketingConsent(state=new_state), sms=c.consent.sms),
                }
            )
        )
    return changed


def _compare(frame: pl.DataFrame, expected: dict[str, dict[str, Any]]) -> None:
    assert frame.columns == list(FEATURE_SCHEMA)
    assert frame.schema == pl.Schema(FEATURE_SCHEMA)
    got = {row["customer_id"]: row for row in frame.to_dicts()}
    assert set(got) == set(expected)
    for cid, want in expected.items():
        row = got[cid]
        for name, value in want.items():
            actual = row[name]
            if isinstance(value, float):
                assert actual == pytest.approx(value, rel=1e-9, abs=1e-9), (cid, name)
            elif isinstance(value, dt.datetime):
                assert actual == value, (cid, name)
            else:
                assert actual == value, (cid, name, actual, value)


@pytest.mark.parametrize("seed", [1, 2])
def test_features_match_the_reference(store: Store, seed: int) -> None:
    state = generate_shop(
        platform="shopify", shop="acme", seed=seed, customers=90, orders=450, end=END
    )
    awkward = _awkward_orders(state)
    changes = _consent_changes(state)
    store.upsert([*state.customers.values(), *state.orders.values(), *awkward])
    store.upsert(changes)
    customers = [
        {c.id: c for c in [*state.customers.values(), *changes]}[cid] for cid in state.customers
    ]
    orders = [*state.orders.values(), *awkward]
    versions: dict[str, list[Customer]] = {}
    for c in [*state.customers.values(), *changes]:
        versions.setdefault(c.id, []).append(c)
    history = {cid: _consent_history(v) for cid, v in versions.items()}
    assert any(len(h) > 2 for h in history.values())
    assert any(since < seen for h in history.values() for _, since, seen, _ in h)
    for as_of in (END, END - 45 * DAY, END - 300 * DAY, END - 700 * DAY):
        frame = customer_features(store, "shopify", "acme", as_of, currency="USD")
        _compare(frame, reference(customers, orders, history, as_of, "USD"))


def test_nothing_after_as_of_leaks(store: Store) -> None:
    """Changing everything that happened after as_of changes no feature as of then."""
    state = generate_shop(
        platform="shopify", shop="acme", seed=5, customers=60, orders=300, end=END
    )
    store.upsert([*state.customers.values(), *state.orders.values()])
    as_of = END - 200 * DAY
    full = customer_features(store, "shopify", "acme", as_of, currency="USD")
    # Recompute with later records altered beyond recognition: later refunds, cancellations
    # and orders must not change anything as of the earlier date.
    later = []
    for o in state.orders.values():
        if o.created_at > as_of:
            later.append(o.model_copy(update={"total": Money.of("999", "USD")}))
        elif o.cancelled_at is None and o.paid_at is not None:
            refund = Refund(id=f"late-{o.id}", created_at=as_of + DAY, amount=o.total)
            later.append(
                o.model_copy(
                    update={
                        "refunds": (*o.refunds, refund),
                        "cancelled_at": as_of + 2 * DAY,
                        "updated_at": o.updated_at + 400 * DAY,
                    }
                )
            )
    store.upsert(later)
    after = customer_features(store, "shopify", "acme", as_of, currency="USD")
    assert after.equals(full)


def test_bad_input_rules(store: Store) -> None:
    state = generate_shop(
        platform="shopify", shop="acme", seed=3, customers=30, orders=120, end=END
    )
    awkward = _awkward_orders(state)
    store.upsert([*state.customers.values(), *state.orders.values(), *awkward])
    frame = customer_features(store, "shopify", "acme", END, currency="USD")
    rows = {r["customer_id"]: r for r in frame.to_dicts()}
    euro, free, over = (o.customer_id for o in awkward)
    # another currency: counted apart, left out of money and counts
    assert rows[euro]["foreign_currency_orders"] == 1
    # refunds of 60 on a 40 order: capped at the order, net never negative
    assert rows[over]["net_spend"] >= 0
    assert rows[over]["refunded"] <= rows[over]["gross_spend"]
    # the currency defaults to the one most orders use
    default = customer_features(store, "shopify", "acme", END)
    assert default["currency"][0] == "USD"
    assert rows[free]["paid_orders"] == sum(
        1
        for o in state.orders.values()
        if o.customer_id == free
        and o.paid_at is not None
        and o.cancelled_at is None
        and o.total.amount > 0
    )


def test_empty_shop_and_naive_as_of(store: Store) -> None:
    frame = customer_features(store, "shopify", "nobody", END)
    assert frame.height == 0 and frame.columns == list(FEATURE_SCHEMA)
    with pytest.raises(ValueError, match="timezone-aware"):
        customer_features(store, "shopify", "nobody", dt.datetime(2025, 1, 1))


def test_columnar_reader_keeps_awkward_text(store: Store) -> None:
    """Separators, quotes, commas and newlines inside values survive both read paths."""
    import polars as pl

    from shopsync.store.read import Column, read_table

    awkward = ['a,"b"', "line\nbreak", "unit\x1fsep", "rec\x1esep", "plain"]
    customers = [
        Customer(
            platform="shopify",
            shop="acme",
            id=f"c{i}",
            first_name=name,
            created_at=END,
            updated_at=END,
        )
        for i, name in enumerate(awkward)
    ]
    store.upsert(customers)
    frame = read_table(
        store.engine,
        "customers",
        [Column("id", pl.String()), Column("first_name", pl.String())],
        f"shop_id = {store.shop_id('shopify', 'acme')}",
    ).sort("id")
    assert frame["first_name"].to_list() == awkward


def test_categories_come_from_the_product_when_the_line_has_no_type(store: Store) -> None:
    # Shopify's line items carry no product type; the synced product does.
    from shopsync.frames import customer_features
    from shopsync.models import Customer, LineItem, Money, Order, Product

    at = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    usd = Money.of("5.00", "USD")
    store.upsert(
        [
            Customer(platform="shopify", shop="s", id="7", created_at=at, updated_at=at),
            Product(
                platform="shopify",
                shop="s",
                id="501",
                title="Beans",
                product_type="Coffee",
                created_at=at,
                updated_at=at,
            ),
            Order(
                platform="shopify",
                shop="s",
                id="1",
                customer_id="7",
                created_at=at,
                updated_at=at,
                processed_at=at,
                financial_status="paid",
                currency="USD",
                subtotal=usd,
                total_discounts=Money.zero("USD"),
                total_shipping=Money.zero("USD"),
                total_tax=Money.zero("USD"),
                total=usd,
                total_refunded=Money.zero("USD"),
                line_items=[
                    LineItem(
                        id="9",
                        product_id="501",
                        title="Beans",
                        quantity=1,
                        unit_price=usd,
                        total=usd,
                    )
                ],
            ),
        ]
    )
    frame = customer_features(store, "shopify", "s", at + dt.timedelta(days=1))
    assert frame.filter(frame["customer_id"] == "7")["categories"].to_list() == [["Coffee"]]


def test_consent_counts_from_the_platforms_own_date(store: Store) -> None:
    given = END - 300 * DAY  # the shop recorded the subscription then
    synced = END - 10 * DAY  # shopsync first saw the customer then
    store.upsert(
        [
            Customer(
                platform="shopify",
                shop="acme",
                id="c1",
                created_at=END - 400 * DAY,
                updated_at=synced,
                consent=Consent(
                    email=MarketingConsent(state=ConsentState.SUBSCRIBED, updated_at=given)
                ),
            )
        ]
    )

    def state(at: dt.datetime) -> str:
        return str(customer_features(store, "shopify", "acme", at)["email_consent"][0])

    assert state(END - 301 * DAY) == "unknown"
    assert state(END - 100 * DAY) == "subscribed"  # before the sync, after the shop's date
    assert state(END) == "subscribed"
