"""A seeded generator of realistic shops, so tests and demos exercise real-looking data.

Retention logic is only as good as the data it is tried on, so the shop has the shape real
shops have: most customers buy once, a minority of regulars buy on their own rhythm
(gamma-distributed gaps, regular for some, erratic for others), November and December
peak, the shop grows, consumables get re-bought, some orders are refunded, cancelled or
left unshipped, guests check out without an account, and consent is a mix of states.

Seasonality is a time warp: each customer lives on an "operational" clock where demand is
flat, mapped onto the calendar through the cumulative seasonal intensity, so rhythms stay
intact while busy months get more orders. Everything comes from one ``random.Random(seed)``:
the same arguments give an equal :class:`ShopState`. The orders themselves are drawn in
:mod:`._generator_orders`, the catalogue's data is :mod:`._catalogue`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shopsync._collector import collector_paused
from shopsync._currencies import EXPONENTS
from shopsync.models import (
    Address,
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    MarketingConsent,
    Money,
    OptInLevel,
    Product,
    Variant,
)
from shopsync.testing._catalogue import (
    ADJECTIVES,
    CATALOGUE,
    COUNTRIES,
    EMAIL_CONSENT,
    FIRST,
    LAST,
    PRICE_SCALE,
    SMS_CONSENT,
    STREETS,
    VENDORS,
    Category,
)
from shopsync.testing._generator_orders import OrderMaker
from shopsync.testing.behaviour import Buyer, BuyingModel, Population
from shopsync.testing.profile import GenerationProfile, profile_for
from shopsync.testing.state import ProductFacts, ShopState

__all__ = ["generate_shop"]

DAY = dt.timedelta(days=1)

ONE_TIME_SHARE = 0.60
"""Share of buying customers who buy once."""
GUEST_SHARE = 0.15
NO_ORDER_SHARE = 0.08
"""Accounts that never ordered (newsletter sign-ups, abandoned checkouts)."""

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


def generate_shop(
    *,
    platform: str,
    shop: str,
    seed: int = 1,
    customers: int = 500,
    orders: int | None = None,
    products: int = 60,
    currency: str = "USD",
    end: dt.datetime | None = None,
    years: float = 3.0,
    profile: GenerationProfile | None = None,
    buying: BuyingModel | None = None,
) -> ShopState:
    """A shop with exactly ``customers`` accounts, ``orders`` orders (default 2000) and
    ``products`` products (a few of them deleted, as real shops have), all dated before
    ``end`` (default: today 00:00 UTC) and within ``years`` of it; ``profile`` (default: the
    one the ``platform``'s emulator declares) gives the platform's habits.

    With ``buying`` (e.g. :data:`shopsync.testing.behaviour.CDNOW`) each account that buys
    is a :class:`~shopsync.testing.behaviour.Buyer` of that model: the number of orders
    follows from it (``orders`` must be left out), acquisition is spread over the window,
    order values are gamma-gamma draws, and the buyers are kept as ``state.population`` for
    :class:`~shopsync.testing.simulation.Simulation`. Without it the shop is exactly what it
    always was for the same arguments."""
    if buying is not None and orders is not None:
        raise ValueError("with buying=, the orders follow from the model: leave orders out")
    if orders is None:
        orders = 2000
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
    if profile is None:
        profile = profile_for(platform)
    gen = _Generator(
        platform, shop, seed, currency, end.astimezone(dt.timezone.utc), years, profile, buying
    )
    with collector_paused():  # millions of young objects, no cycles
        return gen.run(customers, orders, products)


class _Generator:
    def __init__(
        self,
        platform: str,
        shop: str,
        seed: int,
        currency: str,
        end: dt.datetime,
        years: float,
        profile: GenerationProfile,
        buying: BuyingModel | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.platform = platform
        self.profile = profile
        self.shop = shop
        self.currency = currency
        self.end = end
        self.start = end - dt.timedelta(days=365.25 * years)
        self.state = ShopState(platform=platform, shop=shop, currency=currency)
        self.ids = dict(_ID_BASE)
        self.step = Decimal(1).scaleb(-EXPONENTS[currency])
        self.scale = PRICE_SCALE.get(currency, 1)
        self._money: dict[Decimal, Money] = {}
        self.buying = buying
        self.buyers: dict[int, Buyer] = {}
        self._warp_init()
        self.orders = OrderMaker(self)

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
        """Calendar time of operational time ``u`` in [0, 1): the seasonal time warp (none
        with a buying model, which brings its own season)."""
        if self.buying is not None:
            moment = self.start + min(max(u, 0.0), 1.0) * (self.end - self.start)
            return min(moment, self.end - dt.timedelta(seconds=1))
        x = min(max(u, 0.0), 0.999999) * self.cum[-1]
        d = bisect.bisect_right(self.cum, x)
        low = self.cum[d - 1] if d else 0.0
        moment = self.start + (d + (x - low) / (self.cum[d] - low)) * DAY
        return min(moment, self.end - dt.timedelta(seconds=1))

    def address(self, first: str, last: str) -> Address:
        rng = self.rng
        code, _, _, cities = self.pick(tuple((c, c[1]) for c in COUNTRIES))
        city, province, pattern = rng.choice(cities)
        zip_code = "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern).replace(
            "A", rng.choice("ABCEHJKLMNPRSTVXY")
        )
        return Address(
            first_name=first,
            last_name=last,
            address1=f"{rng.randrange(1, 999)} {rng.choice(STREETS)} Street",
            city=city,
            province=province,
            zip=zip_code,
            country_code=code,
        )

    # ------------------------------------------------------------ run

    def run(self, n_customers: int, n_orders: int, n_products: int) -> ShopState:
        catalogue = self.make_products(n_products)
        if self.buying is not None:
            plans = self.plan_buying(self.buying, n_customers)
        else:
            plans = self.plan(n_customers, n_orders)
        self.make_orders(plans, catalogue)
        self.delete_some_products()
        state = self.state
        if self.buying is not None:
            ids = {idx: self.customer_ids[idx] for idx in self.buyers}
            state.population = Population(
                self.buying, {ids[idx]: b for idx, b in self.buyers.items()}, self.end
            )
        state.next_ids = {kind: value + 1 for kind, value in self.ids.items()}
        stamps = [r.updated_at for r in state.customers.values()]
        stamps += [r.updated_at for r in state.orders.values()]
        stamps += [r.updated_at for r in state.products.values()]
        state._last_stamp = max([*stamps, *state.deleted.values()], default=None)
        return state

    def make_products(self, n: int) -> list[tuple[Product, Category, float]]:
        rng = self.rng
        cats = tuple((c, c.weight) for c in CATALOGUE)
        made = []
        for i in range(n):
            cat: Category = self.pick(cats)
            pid = self.next_id("products")
            title = f"{rng.choice(ADJECTIVES)} {rng.choice(cat.nouns)}"
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
            if len(variants) == 1 and not self.profile.single_option_has_variant:
                variants = ()
            u = rng.uniform(0, 0.05) if rng.random() < 0.7 else rng.uniform(0, 0.8)
            created = self.when(u) if i else self.start  # the shop opens with one product
            status = self.pick((("active", 0.9), ("draft", 0.04), ("archived", 0.06)))
            product = Product(
                platform=self.platform,
                shop=self.shop,
                id=pid,
                title=title,
                product_type=cat.name,
                vendor=rng.choice(VENDORS),
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

    def plan_buying(self, model: BuyingModel, n_customers: int) -> list[tuple[float, int | None]]:
        """Like :meth:`plan`, but every buyer's orders come from ``model``: acquisition
        spread over the window, repeat purchases by BG/NBD (see :mod:`.behaviour`)."""
        rng = self.rng
        span = self.end - self.start
        buyers = n_customers - round(n_customers * NO_ORDER_SHARE)
        self.signup = [0.0] * n_customers
        plans: list[tuple[float, int | None]] = []
        order = list(range(n_customers))
        rng.shuffle(order)
        for k, idx in enumerate(order):
            first = model.arrival(rng, self.start, self.end)
            self.signup[idx] = (first - self.start) / span
            if k >= buyers:
                continue
            buyer = self.buyers[idx] = model.buyer(rng, first)
            model.purchases_until(rng, buyer, self.end)
            plans.extend(((at - self.start) / span, idx) for at in buyer.purchases)
        guests = round(len(plans) * GUEST_SHARE / (1 - GUEST_SHARE))
        for _ in range(guests):
            plans.append(((model.arrival(rng, self.start, self.end) - self.start) / span, None))
        plans.sort(key=lambda p: (p[0], -1 if p[1] is None else p[1]))
        return plans

    def make_customer(self, idx: int, created: dt.datetime) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
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
                email=consent(EMAIL_CONSENT),
                sms=consent(SMS_CONSENT) if phone else MarketingConsent(),
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
        catalogue: list[tuple[Product, Category, float]],
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
        self.customer_ids = [str(p["id"]) for p in profiles]
        prod_times = [p[0].created_at for p in catalogue]
        cum: list[float] = []
        total = 0.0
        for k in range(len(catalogue)):
            total += 1 / (k % 17 + 1) ** 0.8  # a few best sellers, a long tail
            cum.append(total)
        favourites: dict[int, list[int]] = {}
        stats: dict[int, list[Any]] = {}
        guest_emails: list[tuple[str, str, str]] = []
        sources = self.profile.order_sources
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
                    first, last = rng.choice(FIRST), rng.choice(LAST)
                    local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue")
                    email = f"{local}.g{number}@example.net"
                    guest_emails.append((first, last, email))
                home = self.address(first, last)
            eligible = max(1, bisect.bisect_right(prod_times, created))
            lines_from = self.choose_products(idx, eligible, cum, favourites)
            spend = None
            if self.buying is not None:
                value = self.buying.spend(rng, self.buyers.get(idx) if idx is not None else None)
                spend = Decimal(repr(value * self.scale))
            order = self.orders.make_order(
                number,
                created,
                idx,
                email,
                home,
                lines_from,
                catalogue,
                profiles,
                str(self.pick(sources)),
                spend=spend,
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
