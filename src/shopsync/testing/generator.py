"""A seeded generator of realistic shops, so tests and demos exercise real-looking data.

Retention logic is only as good as the data it is tried on, so the shop has the shape real
shops have: most customers buy once, a minority of regulars buy on their own rhythm
(gamma-distributed gaps, regular for some, erratic for others), November and December
peak, the shop grows, consumables get re-bought, some orders are refunded, cancelled or
left unshipped, guests check out without an account, and consent is a mix of states.

Seasonality is a time warp: each customer lives on an "operational" clock where demand is
flat, mapped onto the calendar through the cumulative seasonal intensity, so rhythms stay
intact while busy months get more orders. Everything comes from one ``random.Random(seed)``:
the same arguments give an equal :class:`ShopState`.

Orders and their parts are built without validation (see ``_builder``): validating
100k orders field by field costs about a minute, and the values are correct by
construction. The test suite re-validates every record of generated shops to keep it so.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    Fulfillment,
    FulfillmentLine,
    FulfillmentStatus,
    LineItem,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
    Product,
    Refund,
    RefundLine,
    Variant,
)
from shopsync.testing.state import ProductFacts, ShopState

__all__ = ["generate_shop"]

DAY = dt.timedelta(days=1)
B = TypeVar("B", bound=BaseModel)

ONE_TIME_SHARE = 0.60
"""Share of buying customers who buy once."""
GUEST_SHARE = 0.15
NO_ORDER_SHARE = 0.08
"""Accounts that never ordered (newsletter sign-ups, abandoned checkouts)."""
REFUND_RATE = 0.05
CANCEL_RATE = 0.02
DISCOUNT_RATE = 0.12

_SEASON = (0.85, 0.8, 0.9, 0.9, 0.95, 0.95, 0.9, 0.95, 1.0, 1.05, 1.6, 1.85)
_GROWTH = 0.6
"""The shop sells (1 + _GROWTH) times as much at the end of the window as at its start."""

_ID_BASE = {
    "customers": 1_000_000,
    "products": 2_000_000,
    "variants": 3_000_000,
    "orders": 10_000_000,
    "line_items": 20_000_000,
    "refunds": 30_000_000,
    "fulfillments": 40_000_000,
    "webhooks": 50_000_000,
}


def _builder(model: type[B]) -> Callable[..., B]:
    """A fast unvalidated constructor: copying a template is several times quicker than
    ``model_construct``, which resolves every default on every call."""
    # every field present (required ones as None placeholders) keeps the field order
    # canonical, so model_dump_json of a built record matches a validated one
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    template = model.model_construct(**dict.fromkeys(required))
    return lambda **fields: template.model_copy(update=fields)


_order = _builder(Order)
_line = _builder(LineItem)
_refund = _builder(Refund)
_refund_line = _builder(RefundLine)
_fulfillment = _builder(Fulfillment)
_fulfillment_line = _builder(FulfillmentLine)
_PRICE_SCALE = {"JPY": 150, "KRW": 1300, "HUF": 350, "ISK": 140, "CLP": 900, "VND": 24000}


@dataclass(frozen=True)
class _Category:
    name: str
    nouns: tuple[str, ...]
    price: tuple[float, float]
    options: tuple[tuple[str, float], ...]
    """Variant titles with price multipliers."""
    usage_days: int | None = None
    warranty_days: int | None = None
    weight: float = 1.0


_CATALOGUE = (
    _Category(
        "Coffee",
        ("Espresso Blend", "House Roast", "Single Origin", "Decaf"),
        (12, 24),
        (("250 g", 1.0), ("1 kg", 3.2)),
        usage_days=21,
        weight=2.0,
    ),
    _Category(
        "Tea",
        ("Green Tea", "Earl Grey", "Chai", "Rooibos"),
        (8, 18),
        (("50 g", 1.0), ("200 g", 3.0)),
        usage_days=45,
    ),
    _Category(
        "Skincare",
        ("Face Cream", "Serum", "Cleanser", "Sunscreen"),
        (15, 45),
        (("50 ml", 1.0),),
        usage_days=60,
        weight=1.5,
    ),
    _Category(
        "Supplements",
        ("Vitamin D", "Omega 3", "Magnesium", "Protein"),
        (14, 40),
        (("60 caps", 1.0), ("120 caps", 1.8)),
        usage_days=30,
    ),
    _Category(
        "Pet Food",
        ("Dog Kibble", "Cat Food", "Treats"),
        (18, 55),
        (("2 kg", 1.0), ("7 kg", 2.9)),
        usage_days=28,
    ),
    _Category(
        "Electronics",
        ("Headphones", "Speaker", "Charger", "Smart Lamp"),
        (29, 249),
        (("Black", 1.0), ("White", 1.0)),
        warranty_days=730,
        weight=0.8,
    ),
    _Category(
        "Kitchen",
        ("Grinder", "Kettle", "French Press", "Scale"),
        (25, 180),
        (("Standard", 1.0),),
        warranty_days=365,
        weight=0.7,
    ),
    _Category(
        "Apparel",
        ("T-Shirt", "Hoodie", "Cap", "Socks"),
        (15, 70),
        (("S", 1.0), ("M", 1.0), ("L", 1.0), ("XL", 1.0)),
        weight=1.2,
    ),
    _Category("Home", ("Candle", "Mug", "Blanket", "Vase"), (9, 60), (("Standard", 1.0),)),
)
_ADJECTIVES = (
    "Classic",
    "Organic",
    "Premium",
    "Everyday",
    "Nordic",
    "Wild",
    "Pure",
    "Urban",
    "Golden",
    "Daily",
    "Deluxe",
    "Simple",
)
_VENDORS = ("Acme Goods", "Northwind", "Bluebird Co", "Fieldstone", "Harbor & Hill")
_FIRST = (
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Daniel",
    "Karen",
    "Lukas",
    "Emma",
    "Noah",
    "Mia",
    "Oliver",
    "Sofia",
    "Liam",
    "Chloe",
    "Lucas",
    "Hannah",
    "Ava",
    "Leon",
    "Yuki",
    "Aiko",
    "Mateo",
    "Lea",
    "Omar",
    "Zara",
    "Ingrid",
    "Pierre",
)
_LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Lee",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Müller",
    "Schmidt",
    "Dubois",
    "Bernard",
    "Rossi",
    "Tanaka",
    "Sato",
    "Kowalski",
    "Nielsen",
    "Silva",
    "O'Brien",
    "Novak",
    "Costa",
    "Fischer",
    "Weber",
    "Laurent",
)
_COUNTRIES = (  # code, weight, tax rate, (city, province, zip pattern) ...
    (
        "US",
        0.60,
        "0.07",
        (
            ("Portland", "OR", "972##"),
            ("Austin", "TX", "787##"),
            ("Brooklyn", "NY", "112##"),
            ("Denver", "CO", "802##"),
        ),
    ),
    ("CA", 0.10, "0.13", (("Toronto", "ON", "M5V #A#"), ("Vancouver", "BC", "V6B #A#"))),
    ("GB", 0.10, "0.20", (("London", None, "EC1A #AA"), ("Leeds", None, "LS1 #AA"))),
    ("DE", 0.08, "0.19", (("Berlin", None, "101##"), ("München", None, "803##"))),
    ("FR", 0.05, "0.20", (("Paris", None, "750##"), ("Lyon", None, "690##"))),
    ("AU", 0.07, "0.10", (("Sydney", "NSW", "20##"), ("Melbourne", "VIC", "30##"))),
)
_STREETS = ("Oak", "Maple", "High", "Station", "Park", "Mill", "Church", "Lake", "Hill")
_CARRIERS = (
    ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
    ("DHL Express", "https://www.dhl.com/en/express/tracking.html?AWB={}"),
)
_CODES = (("WELCOME10", "0.10"), ("SAVE15", "0.15"), ("VIP20", "0.20"), ("SPRING10", "0.10"))
_SOURCES = {
    "shopify": (("web", 0.86), ("pos", 0.06), ("shopify_draft_order", 0.08)),
    "woocommerce": (("checkout", 0.93), ("admin", 0.07)),
}
_REFUND_NOTES = ("Damaged in transit", "Changed mind", "Wrong size", "Goodwill", None)
_EMAIL_CONSENT = (
    (ConsentState.SUBSCRIBED, 0.42),
    (ConsentState.NOT_SUBSCRIBED, 0.33),
    (ConsentState.UNSUBSCRIBED, 0.12),
    (ConsentState.PENDING, 0.05),
    (ConsentState.UNKNOWN, 0.08),
)
_SMS_CONSENT = (
    (ConsentState.SUBSCRIBED, 0.25),
    (ConsentState.NOT_SUBSCRIBED, 0.55),
    (ConsentState.UNSUBSCRIBED, 0.10),
    (ConsentState.PENDING, 0.05),
    (ConsentState.UNKNOWN, 0.05),
)


def generate_shop(
    *,
    platform: str,
    shop: str,
    seed: int = 1,
    customers: int = 500,
    orders: int = 2000,
    products: int = 60,
    currency: str = "USD",
    end: dt.datetime | None = None,
    years: float = 3.0,
) -> ShopState:
    """A shop with exactly ``customers`` accounts, ``orders`` orders and ``products``
    products (a few of them deleted, as real shops have), all dated before ``end``
    (default: today 00:00 UTC) and within ``years`` of it."""
    if min(customers, orders, products) < 0 or years <= 0:
        raise ValueError("counts must be >= 0 and years > 0")
    if orders and not products:
        raise ValueError("orders need at least one product")
    if currency not in EXPONENTS:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    if end is None:
        today = dt.datetime.now(dt.timezone.utc).date()
        end = dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc)
    elif end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    gen = _Generator(platform, shop, seed, currency, end.astimezone(dt.timezone.utc), years)
    collecting = gc.isenabled()
    gc.disable()  # millions of young objects, no cycles: the collector only costs time here
    try:
        return gen.run(customers, orders, products)
    finally:
        if collecting:
            gc.enable()


class _Generator:
    def __init__(
        self, platform: str, shop: str, seed: int, currency: str, end: dt.datetime, years: float
    ) -> None:
        self.rng = random.Random(seed)
        self.platform = platform
        self.shop = shop
        self.currency = currency
        self.end = end
        self.start = end - dt.timedelta(days=365.25 * years)
        self.state = ShopState(platform=platform, shop=shop, currency=currency)
        self.ids = dict(_ID_BASE)
        self.step = Decimal(1).scaleb(-EXPONENTS[currency])
        self.scale = _PRICE_SCALE.get(currency, 1)
        self._money: dict[Decimal, Money] = {}
        self._warp_init()

    # ------------------------------------------------------------ helpers

    def next_id(self, kind: str) -> str:
        self.ids[kind] += 1
        return str(self.ids[kind])

    def money(self, amount: Decimal) -> Money:
        """Money values repeat a lot; sharing the frozen instances saves most of the time."""
        amount = amount.quantize(self.step, ROUND_HALF_UP)
        found = self._money.get(amount)
        if found is None:
            found = self._money[amount] = Money(amount=amount, currency=self.currency)
        return found

    def pick(self, table: tuple[tuple[Any, float], ...]) -> Any:
        roll = self.rng.random() * sum(w for _, w in table)
        for value, weight in table:
            roll -= weight
            if roll < 0:
                return value
        return table[-1][0]

    def _warp_init(self) -> None:
        days = max(1, math.ceil((self.end - self.start) / DAY))
        self.days = days
        self.cum: list[float] = []
        total = 0.0
        for d in range(days):
            day = self.start + d * DAY
            weekend = 0.9 if day.weekday() >= 5 else 1.0
            total += _SEASON[day.month - 1] * (1 + _GROWTH * d / days) * weekend
            self.cum.append(total)

    def when(self, u: float) -> dt.datetime:
        """Calendar time of operational time ``u`` in [0, 1): the seasonal time warp."""
        x = min(max(u, 0.0), 0.999999) * self.cum[-1]
        d = bisect.bisect_right(self.cum, x)
        low = self.cum[d - 1] if d else 0.0
        moment = self.start + (d + (x - low) / (self.cum[d] - low)) * DAY
        return min(moment, self.end - dt.timedelta(seconds=1))

    def address(self, first: str, last: str) -> Address:
        rng = self.rng
        code, _, _, cities = self.pick(tuple((c, c[1]) for c in _COUNTRIES))
        city, province, pattern = rng.choice(cities)
        zip_code = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern).replace(
            "A", rng.choice("ABCEHJKLMNPRSTVXY")
        )
        return Address(
            first_name=first,
            last_name=last,
            address1=f"{rng.randrange(1, 999)} {rng.choice(_STREETS)} Street",
            city=city,
            province=province,
            zip=zip_code,
            country_code=code,
        )

    # ------------------------------------------------------------ run

    def run(self, n_customers: int, n_orders: int, n_products: int) -> ShopState:
        catalogue = self.make_products(n_products)
        plans = self.plan(n_customers, n_orders)
        self.make_orders(plans, catalogue)
        self.delete_some_products()
        state = self.state
        state.next_ids = {kind: value + 1 for kind, value in self.ids.items()}
        stamps = [r.updated_at for r in state.customers.values()]
        stamps += [r.updated_at for r in state.orders.values()]
        stamps += [r.updated_at for r in state.products.values()]
        state._last_stamp = max([*stamps, *state.deleted.values()], default=None)
        return state

    def make_products(self, n: int) -> list[tuple[Product, _Category, float]]:
        rng = self.rng
        cats = tuple((c, c.weight) for c in _CATALOGUE)
        made = []
        for i in range(n):
            cat: _Category = self.pick(cats)
            pid = self.next_id("products")
            title = f"{rng.choice(_ADJECTIVES)} {rng.choice(cat.nouns)}"
            base = rng.uniform(*cat.price) * self.scale
            variants = tuple(
                Variant(
                    id=self.next_id("variants"),
                    sku=f"{cat.name[:3].upper()}-{i + 1:04d}-{j}",
                    title=opt,
                    price=self.money(self.price(base * mult)),
                )
                for j, (opt, mult) in enumerate(cat.options, 1)
            )
            if self.platform == "woocommerce" and len(variants) == 1:
                variants = ()  # a WooCommerce "simple" product has no variations
            u = rng.uniform(0, 0.05) if rng.random() < 0.7 else rng.uniform(0, 0.8)
            created = self.when(u) if i else self.start  # the shop opens with one product
            status = self.pick((("active", 0.9), ("draft", 0.04), ("archived", 0.06)))
            product = Product(
                platform=self.platform,
                shop=self.shop,
                id=pid,
                title=title,
                product_type=cat.name,
                vendor=rng.choice(_VENDORS),
                tags=tuple(
                    sorted({cat.name.lower(), *(["bestseller"] if rng.random() < 0.1 else [])})
                ),
                categories=(cat.name,),
                status=str(status),
                created_at=created,
                updated_at=min(created + rng.uniform(0, 400) * DAY, self.end - DAY),
                variants=variants,
            )
            self.state.products[pid] = product
            self.state.product_facts[pid] = ProductFacts(
                cat.name, cat.usage_days, cat.warranty_days
            )
            made.append((product, cat, u))
        made.sort(key=lambda t: t[0].created_at)
        return made

    def price(self, value: float) -> Decimal:
        if self.step >= 1:
            return Decimal(max(10, round(value, -1)))
        return Decimal(max(1, int(value))) + Decimal("0.99")

    def plan(self, n_customers: int, n_orders: int) -> list[tuple[float, int | None]]:
        """Operational times of every order, with the customer index (None: a guest)."""
        rng = self.rng
        guests = round(n_orders * GUEST_SHARE) if n_customers else n_orders
        registered = n_orders - guests
        buyers = min(n_customers - round(n_customers * NO_ORDER_SHARE), registered)
        repeaters = min(buyers - round(buyers * ONE_TIME_SHARE), registered - buyers)
        counts = [0] * n_customers
        order = list(range(n_customers))
        rng.shuffle(order)
        for idx in order[:buyers]:
            counts[idx] = 1
        extra = registered - buyers
        if repeaters:
            weights = [rng.lognormvariate(0, 0.9) for _ in range(repeaters)]
            spare = extra - repeaters
            shares = [spare * w / sum(weights) for w in weights]
            allotted = [math.floor(s) for s in shares]
            by_remainder = sorted(
                range(repeaters), key=lambda k: shares[k] - allotted[k], reverse=True
            )
            for k in by_remainder[: spare - sum(allotted)]:
                allotted[k] += 1
            for k, idx in enumerate(order[:repeaters]):
                counts[idx] = 2 + allotted[k]
        elif extra and buyers:
            counts[order[0]] += extra
        self.counts = counts
        self.signup = [0.0] * n_customers
        plans: list[tuple[float, int | None]] = []
        for idx, n in enumerate(counts):
            # regulars must have been around long enough to be regular
            first = rng.uniform(0, 0.85) ** 1.3 if n > 1 else rng.random()
            self.signup[idx] = first
            if not n:
                continue
            times = [first]
            if n > 1:
                shape = rng.uniform(1.5, 8.0)  # high: clockwork, low: erratic
                span = (1 - first) * rng.uniform(0.5, 0.98)
                gaps = [rng.gammavariate(shape, 1 / shape) for _ in range(n - 1)]
                fit = span / max(sum(gaps), 1e-9)
                for gap in gaps:
                    times.append(times[-1] + gap * fit)
            plans.extend((t, idx) for t in times)
        plans.extend((rng.random(), None) for _ in range(guests))
        plans.sort(key=lambda p: (p[0], -1 if p[1] is None else p[1]))
        return plans

    def make_customer(self, idx: int, created: dt.datetime) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        phone = f"+1555{rng.randrange(10**7):07d}" if rng.random() < 0.4 else None
        consent_at = created + rng.uniform(0, 2) * DAY

        def consent(table: tuple[tuple[object, float], ...]) -> MarketingConsent:
            state: ConsentState = self.pick(table)
            if state is ConsentState.UNKNOWN:
                return MarketingConsent()
            level = OptInLevel.UNKNOWN
            if state in (ConsentState.SUBSCRIBED, ConsentState.PENDING):
                level = (
                    OptInLevel.CONFIRMED_OPT_IN
                    if state is ConsentState.PENDING or rng.random() < 0.4
                    else OptInLevel.SINGLE_OPT_IN
                )
            return MarketingConsent(
                state=state, opt_in_level=level, updated_at=min(consent_at, self.end - DAY)
            )

        local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue")
        return {
            "platform": self.platform,
            "shop": self.shop,
            "email": f"{local}.{idx}@example.com",
            "phone": phone,
            "first_name": first,
            "last_name": last,
            "created_at": created,
            "consent": Consent(
                email=consent(_EMAIL_CONSENT),
                sms=consent(_SMS_CONSENT) if phone else MarketingConsent(),
            ),
            "birthday": dt.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
            if rng.random() < 0.3
            else None,
            "default_address": self.address(first, last),
            "tags": ("newsletter",) if rng.random() < 0.2 else (),
        }

    def make_orders(
        self,
        plans: list[tuple[float, int | None]],
        catalogue: list[tuple[Product, _Category, float]],
    ) -> None:
        rng = self.rng
        n_customers = len(self.signup)
        # customers get ids in sign-up order, as platforms hand them out
        profiles: list[dict[str, Any]] = [{} for _ in range(n_customers)]
        signups = sorted(range(n_customers), key=lambda i: self.signup[i])
        for sid in signups:
            created = self.when(self.signup[sid]) - dt.timedelta(minutes=rng.uniform(1, 30))
            if rng.random() < 0.2:
                created -= rng.uniform(1, 60) * DAY  # signed up well before buying
            created = max(created, self.start)
            profiles[sid] = {"id": self.next_id("customers"), **self.make_customer(sid, created)}
        prod_times = [p[0].created_at for p in catalogue]
        cum: list[float] = []
        total = 0.0
        for k in range(len(catalogue)):
            total += 1 / (k % 17 + 1) ** 0.8  # a few best sellers, a long tail
            cum.append(total)
        favourites: dict[int, list[int]] = {}
        stats: dict[int, list[Any]] = {}
        guest_emails: list[tuple[str, str, str]] = []
        sources = _SOURCES.get(self.platform, (("web", 1.0),))
        for number, (u, idx) in enumerate(plans, 1001):
            created = self.when(u)
            if idx is not None:
                profile = profiles[idx]
                first, last = str(profile["first_name"]), str(profile["last_name"])
                email = str(profile["email"])
                home = profile["default_address"]
                assert isinstance(home, Address)
            else:
                if guest_emails and rng.random() < 0.15:
                    first, last, email = rng.choice(guest_emails)
                else:
                    first, last = rng.choice(_FIRST), rng.choice(_LAST)
                    local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue")
                    email = f"{local}.g{number}@example.net"
                    guest_emails.append((first, last, email))
                home = self.address(first, last)
            eligible = max(1, bisect.bisect_right(prod_times, created))
            lines_from = self.choose_products(idx, eligible, cum, favourites)
            order = self.make_order(
                number,
                created,
                idx,
                email,
                home,
                lines_from,
                catalogue,
                profiles,
                str(self.pick(sources)),
            )
            self.state.orders[order.id] = order
            if idx is not None:
                seen = stats.setdefault(idx, [0, Decimal(0), created])
                seen[0] = int(seen[0]) + 1
                if order.financial_status not in (FinancialStatus.VOIDED, FinancialStatus.PENDING):
                    seen[1] = Decimal(seen[1]) + order.total.amount - order.total_refunded.amount
                seen[2] = created
        spent_rank = sorted(stats, key=lambda i: stats[i][1], reverse=True)
        vips = set(spent_rank[: max(1, len(spent_rank) // 20)]) if spent_rank else set()
        for idx in signups:
            profile = profiles[idx]
            seen = stats.get(idx, [0, Decimal(0), profile["created_at"]])
            touched = max(seen[2], profile["created_at"])
            if rng.random() < 0.1:
                touched += rng.uniform(0, 200) * DAY
            updated = min(touched, self.end - dt.timedelta(seconds=1))
            tags = (*profile["tags"], "vip") if idx in vips else profile["tags"]
            customer = Customer.model_validate(
                {
                    **profile,
                    "tags": tags,
                    "updated_at": updated,
                    "orders_count": seen[0],
                    "total_spent": self.money(Decimal(seen[1])),
                }
            )
            self.state.customers[customer.id] = customer

    def choose_products(
        self, idx: int | None, eligible: int, cum: list[float], favourites: dict[int, list[int]]
    ) -> list[int]:
        rng = self.rng
        n_lines = 1
        while n_lines < min(5, eligible) and rng.random() < 0.45:
            n_lines += 1
        chosen: list[int] = []
        fav = favourites.get(idx) if idx is not None else None
        while len(chosen) < n_lines:
            if fav and rng.random() < 0.6:
                k = rng.choice(fav)  # regulars re-buy what they like (consumables, mostly)
            else:
                k = bisect.bisect_right(cum, rng.random() * cum[eligible - 1], 0, eligible - 1)
            if k not in chosen:
                chosen.append(k)
            elif len(chosen) >= eligible:
                break
        if idx is not None and fav is None:
            favourites[idx] = chosen[:2]
        return chosen

    def make_order(
        self,
        number: int,
        created: dt.datetime,
        idx: int | None,
        email: str,
        home: Address,
        picks: list[int],
        catalogue: list[tuple[Product, _Category, float]],
        profiles: list[dict[str, Any]],
        source: str,
    ) -> Order:
        rng = self.rng
        end = self.end
        code_pct = Decimal(0)
        codes: tuple[str, ...] = ()
        bfcm = created.month == 11 and created.day >= 20
        if rng.random() < (0.3 if bfcm else DISCOUNT_RATE):
            code, pct = ("BFCM25", "0.25") if bfcm else rng.choice(_CODES)
            codes, code_pct = (code,), Decimal(pct)
        lines = []
        for k in picks:
            product, cat, _ = catalogue[k]
            variant = rng.choice(product.variants) if product.variants else None
            unit = (
                variant.price
                if variant and variant.price
                else self.money(self.price(rng.uniform(*cat.price) * self.scale))
            )
            qty = 1 if rng.random() < 0.8 else rng.choice((2, 2, 3))
            gross = unit.amount * qty
            discount = self.money(gross * code_pct)
            lines.append(
                _line(
                    id=self.next_id("line_items"),
                    product_id=product.id,
                    variant_id=variant.id if variant else None,
                    sku=variant.sku if variant else f"{cat.name[:3].upper()}-{product.id}",
                    title=product.title,
                    product_type=product.product_type,
                    quantity=Decimal(qty),  # as validation makes it, so dumps match
                    unit_price=unit,
                    total_discount=discount if codes else None,
                    total=self.money(gross - discount.amount),
                )
            )
        subtotal = sum((li.total.amount for li in lines), Decimal(0))
        discounts = sum((li.total_discount.amount for li in lines if li.total_discount), Decimal(0))
        shipping = (
            Decimal(0)
            if subtotal >= 75 * self.scale
            else self.price(rng.choice((4, 6)) * self.scale)
        )
        tax_rate = next(Decimal(c[2]) for c in _COUNTRIES if c[0] == home.country_code)
        tax = self.money(subtotal * tax_rate).amount
        total = self.money(subtotal + shipping + tax)
        shipping_address = home
        if rng.random() < 0.08:
            shipping_address = self.address(rng.choice(_FIRST), rng.choice(_LAST))  # a gift
        fields: dict[str, Any] = {
            "platform": self.platform,
            "shop": self.shop,
            "id": self.next_id("orders"),
            "name": f"#{number}",
            "customer_id": profiles[idx]["id"] if idx is not None else None,
            "email": email,
            "created_at": created,
            "processed_at": created,
            "currency": self.currency,
            "subtotal": self.money(subtotal),
            "total_discounts": self.money(discounts),
            "total_shipping": self.money(shipping),
            "total_tax": self.money(tax),
            "total": total,
            "total_refunded": self.money(Decimal(0)),
            "line_items": tuple(lines),
            "discount_codes": codes,
            "source": source,
            "tags": ("gift",) if shipping_address is not home else (),
            "billing_address": home,
            "shipping_address": shipping_address,
            "financial_status": FinancialStatus.PAID,
        }
        touched = [created]
        age = (end - created) / DAY
        roll = rng.random()
        if roll < CANCEL_RATE:
            cancelled = min(created + rng.uniform(0.05, 2) * DAY, end - dt.timedelta(seconds=1))
            touched.append(cancelled)
            fields.update(cancelled_at=cancelled, closed_at=cancelled)
            if rng.random() < 0.3:
                fields["financial_status"] = FinancialStatus.VOIDED
            else:
                paid = created + dt.timedelta(seconds=rng.uniform(2, 60))
                fields.update(
                    paid_at=paid,
                    financial_status=FinancialStatus.REFUNDED,
                    total_refunded=total,
                    refunds=(self.full_refund(lines, total, cancelled, "Order cancelled"),),
                )
                fields["line_items"] = tuple(
                    li.model_copy(update={"refunded_quantity": li.quantity}) for li in lines
                )
            fields["updated_at"] = max(touched)
            return _order(**fields)
        if age < 10 and rng.random() < 0.15:
            fields["financial_status"] = FinancialStatus.PENDING  # awaiting a bank transfer
            fields["updated_at"] = created
            return _order(**fields)
        paid = created + dt.timedelta(seconds=rng.uniform(2, 60))
        fields["paid_at"] = paid
        touched.append(paid)
        shipped_at = created + rng.uniform(0.3, 3) * DAY
        shipped_lines = lines
        if shipped_at < end:
            status = FulfillmentStatus.FULFILLED
            if len(lines) > 1 and rng.random() < 0.03:
                shipped_lines = lines[:1]
                status = FulfillmentStatus.PARTIALLY_FULFILLED
            company, url = rng.choice(_CARRIERS)
            tracking = f"{rng.randrange(10**11, 10**12)}"
            delivered: dt.datetime | None = shipped_at + rng.uniform(1, 7) * DAY
            if delivered is not None and (delivered >= end or rng.random() < 0.03):
                delivered = None  # in transit, or the carrier never scanned it
            fields["fulfillments"] = (
                _fulfillment(
                    id=self.next_id("fulfillments"),
                    created_at=shipped_at,
                    tracking_company=company,
                    tracking_numbers=(tracking,),
                    tracking_urls=(url.format(tracking),),
                    delivered_at=delivered,
                    lines=tuple(
                        _fulfillment_line(line_item_id=li.id, quantity=li.quantity)
                        for li in shipped_lines
                    ),
                ),
            )
            fields["fulfillment_status"] = status
            touched.append(delivered or shipped_at)
        if roll < CANCEL_RATE + REFUND_RATE:
            refund_at = max(touched) + rng.uniform(1, 20) * DAY
            if refund_at < end:
                touched.append(refund_at)
                self.refund(fields, lines, total, refund_at)
        fields["updated_at"] = max(touched)
        return _order(**fields)

    def full_refund(
        self, lines: list[LineItem], total: Money, at: dt.datetime, note: str | None
    ) -> Refund:
        return _refund(
            id=self.next_id("refunds"),
            created_at=at,
            amount=total,
            note=note,
            lines=tuple(
                _refund_line(line_item_id=li.id, quantity=li.quantity, subtotal=li.total)
                for li in lines
            ),
        )

    def refund(
        self, fields: dict[str, Any], lines: list[LineItem], total: Money, at: dt.datetime
    ) -> None:
        rng = self.rng
        note = rng.choice(_REFUND_NOTES)
        kind = rng.random()
        if kind < 0.4:  # everything back
            refund = self.full_refund(lines, total, at, note)
            fields["line_items"] = tuple(
                li.model_copy(update={"refunded_quantity": li.quantity}) for li in lines
            )
            fields["financial_status"] = FinancialStatus.REFUNDED
        elif kind < 0.85:  # one unit of one line
            k = rng.randrange(len(lines))
            li = lines[k]
            amount = self.money(li.total.amount / li.quantity)
            line = _refund_line(line_item_id=li.id, quantity=Decimal(1), subtotal=amount)
            refund = _refund(
                id=self.next_id("refunds"), created_at=at, amount=amount, note=note, lines=(line,)
            )
            changed = list(lines)
            changed[k] = li.model_copy(update={"refunded_quantity": Decimal(1)})
            fields["line_items"] = tuple(changed)
            fields["financial_status"] = (
                FinancialStatus.REFUNDED if amount >= total else FinancialStatus.PARTIALLY_REFUNDED
            )
        else:  # a goodwill amount, no goods back
            amount = self.money(total.amount * Decimal("0.1"))
            refund = _refund(
                id=self.next_id("refunds"), created_at=at, amount=amount, note="Goodwill"
            )
            fields["financial_status"] = FinancialStatus.PARTIALLY_REFUNDED
        fields["refunds"] = (refund,)
        fields["total_refunded"] = refund.amount

    def delete_some_products(self) -> None:
        """About 2% of products get deleted late on; their order lines lose the link."""
        state = self.state
        doomed = [pid for pid in state.products if self.rng.random() < 0.02]
        if not doomed:
            return
        gone = set(doomed)
        for pid in doomed:
            old = state.products.pop(pid)
            state.product_facts.pop(pid, None)
            state.deleted[("products", pid)] = max(
                old.updated_at, self.end - self.rng.uniform(1, 30) * DAY
            )
        for oid, order in state.orders.items():
            if any(li.product_id in gone for li in order.line_items):
                items = tuple(
                    li.model_copy(update={"product_id": None, "variant_id": None})
                    if li.product_id in gone
                    else li
                    for li in order.line_items
                )
                state.orders[oid] = order.model_copy(update={"line_items": items})
