"""A simulated clock for an emulated shop whose customers answer what shopsync sends them.

A holdout lift or a backtest can only be judged against a known truth. Here the truth is
set: each program has a true :class:`Uplift` (an extra probability that a customer who got
its message buys once more within a window), and everything else is the customers' own
buying, drawn from the shop's :class:`~shopsync.testing.behaviour.BuyingModel`::

    state = generate_shop(platform="shopify", shop="sim.example", customers=3000,
                          buying=CDNOW, end=start)
    sim = Simulation(state, uplift={"winback": Uplift(0.10, window_days=14)}, seed=1,
                     inbox=Inbox().start())
    ...  # sync, plan, apply with shopsync.sinks.Email(sim.inbox.host, sim.inbox.port, ...)
    sim.advance(days=7)                       # customers read, buy, use their codes
    sim.truth.programs()["winback"]           # treated, incremental orders, discount cost

Each :meth:`Simulation.advance` first takes what shopsync delivered since the last step:
emails received by the :class:`~shopsync.testing._inbox.Inbox` (the program is the
``X-Shopsync-Kind`` header the email sink sets; a code is one the platform holds for that
customer, or matches ``code_pattern``, quoted in the text; its percentage, when the
platform does not keep one, is the first "NN %" of the text) and discount codes created on
the emulated platform that no email announced. Then, day by day, every customer buys when
their BG/NBD draw says so, and a treated customer also buys at the time drawn for their
response. A customer with a code uses it on their next order within the window, so orders
that would have happened anyway cost a discount too. Draws are seeded per customer and per
message, so the truth does not depend on the order messages arrived in.

What is not simulated: opens and clicks (a message is read or it is not: the uplift is the
whole effect), unsubscribes, guest orders after the generation, refunds of new orders, and
any effect on the customer's later buying (a response does not revive a dropped-out buyer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from typing import Any, Literal

from shopsync._currencies import EXPONENTS
from shopsync.models import Money
from shopsync.testing._catalogue import PRICE_SCALE
from shopsync.testing._inbox import Inbox
from shopsync.testing.behaviour import Buyer, Population
from shopsync.testing.shortcuts import add_order
from shopsync.testing.state import ShopState

__all__ = [
    "Exposure",
    "Inbox",
    "ProgramTruth",
    "SimulatedPurchase",
    "Simulation",
    "Truth",
    "Uplift",
]

DAY = dt.timedelta(days=1)
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d+)?)\s?%")
Channel = Literal["email", "code", "direct"]


@dataclasses.dataclass(frozen=True)
class Uplift:
    """A program's true effect. A customer who gets its message opens it with ``open_rate``,
    clicks through (if opened) with ``click_rate``, and then (if clicked) buys once more
    because of it with ``probability``, at a time uniform within ``window_days`` of the
    message. With the rates at 1 (the default) every message is opened and clicked, and
    ``probability`` is the whole effect; :attr:`per_message` is the effect either way."""

    probability: float
    window_days: float = 14.0
    open_rate: float = 1.0
    click_rate: float = 1.0

    def __post_init__(self) -> None:
        for name in ("probability", "open_rate", "click_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                label = "uplift probability" if name == "probability" else name
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        if not self.window_days > 0:
            raise ValueError(f"window_days must be > 0, got {self.window_days}")

    @property
    def per_message(self) -> float:
        """The chance that one message causes an extra order: opened, clicked, then bought."""
        return self.open_rate * self.click_rate * self.probability


NO_EFFECT = Uplift(0.0)


@dataclasses.dataclass(frozen=True)
class Exposure:
    """A message that reached a customer, and what the customer will do about it."""

    customer_id: str
    program: str
    at: dt.datetime
    channel: Channel
    key: str
    """What makes it one message: the Message-ID, the code, or the caller's key."""
    code: str | None
    responds: bool
    """True: the customer buys once more because of it (the truth)."""
    response_at: dt.datetime | None
    opened: bool = True
    clicked: bool = True


@dataclasses.dataclass(frozen=True)
class SimulatedPurchase:
    """An order the simulation placed, with why."""

    order_id: str
    customer_id: str
    at: dt.datetime
    value: Money
    """The order's value before any discount: what the customer meant to spend."""
    discount: Money
    incremental: bool
    """True: bought only because of a message (the counterfactual has no such order)."""
    program: str | None
    """The program that caused it (incremental) or whose code it used (baseline)."""
    code: str | None


@dataclasses.dataclass(frozen=True)
class ProgramTruth:
    """One program's true effect over the simulation so far."""

    program: str
    uplift: Uplift
    treated: int
    """Customers who got at least one of its messages."""
    messages: int
    opened: int
    """Messages opened (the truth: no tracking pixel is involved)."""
    clicked: int
    """Messages clicked through."""
    incremental_orders: int
    incremental_revenue: Money
    """Paid by incremental orders (after their discounts)."""
    discount_cost: Money
    """All discounts of its codes."""
    discount_on_baseline: Money
    """Discounts given on orders that would have happened anyway."""


class Truth:
    """Everything the simulation decided: exposures, purchases, and the counterfactual."""

    def __init__(self, currency: str, uplift: Mapping[str, Uplift], default: Uplift) -> None:
        self.currency = currency
        self._uplift = dict(uplift)
        self._default = default
        self.exposures: list[Exposure] = []
        self.purchases: list[SimulatedPurchase] = []

    def uplift(self, program: str) -> Uplift:
        return self._uplift.get(program, self._default)

    def treated(self, program: str) -> set[str]:
        return {e.customer_id for e in self.exposures if e.program == program}

    def incremental(self, program: str | None = None) -> list[SimulatedPurchase]:
        return [p for p in self.purchases if p.incremental and program in (None, p.program)]

    def counterfactual(self, customer_id: str | None = None) -> list[SimulatedPurchase]:
        """The orders that would have happened without any message (discounts aside)."""
        return [
            p for p in self.purchases if not p.incremental and customer_id in (None, p.customer_id)
        ]

    def programs(self) -> dict[str, ProgramTruth]:
        zero = Money.zero(self.currency)
        found: dict[str, ProgramTruth] = {}
        for program in sorted({e.program for e in self.exposures}):
            mine = [p for p in self.purchases if p.program == program]
            extra = [p for p in mine if p.incremental]
            found[program] = ProgramTruth(
                program=program,
                uplift=self.uplift(program),
                treated=len(self.treated(program)),
                messages=sum(e.program == program for e in self.exposures),
                opened=sum(e.program == program and e.opened for e in self.exposures),
                clicked=sum(e.program == program and e.clicked for e in self.exposures),
                incremental_orders=len(extra),
                incremental_revenue=sum((p.value - p.discount for p in extra), zero),
                discount_cost=sum((p.discount for p in mine), zero),
                discount_on_baseline=sum((p.discount for p in mine if not p.incremental), zero),
            )
        return found


@dataclasses.dataclass
class _Code:
    code: str
    program: str
    until: dt.datetime
    value: Money | None
    percent: Decimal | None
    used: bool = False


class Simulation:
    """Advances an emulated shop generated with ``buying=`` by days (see the module doc).

    The simulation owns the shop's clock from the shop's generation ``end`` on:
    ``state.clock`` reads :attr:`now`, so every stamp and every platform answer follows it.
    Programs not in ``uplift`` get ``default`` (no effect). Give ``emulator`` (the running
    platform emulator) for codes created on the platform to reach the customers.
    """

    def __init__(
        self,
        state: ShopState,
        *,
        uplift: Mapping[str, Uplift] | None = None,
        seed: int = 1,
        inbox: Inbox | None = None,
        emulator: Any = None,
        default: Uplift = NO_EFFECT,
        code_pattern: str = r"\bSS-[0-9A-F]{10}\b",
        code_program: str = "discount_code",
    ) -> None:
        population = state.population
        if not isinstance(population, Population):
            raise ValueError("the shop has no buyers: generate it with buying=BuyingModel()")
        if population.simulated:
            raise ValueError("a Simulation already drives this shop: use that one")
        population.simulated = True
        self.state = state
        self.population = population
        self.seed = seed
        self.inbox = inbox
        self.emulator = emulator
        self.code_pattern = re.compile(code_pattern)
        self.code_program = code_program
        self.truth = Truth(state.currency, uplift or {}, default)
        self._now = population.until
        self._rng = random.Random(f"{seed}:buying")
        self._spend = random.Random(f"{seed}:spend")
        self._step = Decimal(1).scaleb(-EXPONENTS[state.currency])
        self._scale = PRICE_SCALE.get(state.currency, 1)
        self._seen: set[tuple[str, str]] = set()
        self._codes: dict[str, list[_Code]] = {}
        self._platform_seen: set[str] = set()
        self._pending: list[Exposure] = []
        state.clock = self.clock

    @property
    def now(self) -> dt.datetime:
        return self._now

    def clock(self) -> dt.datetime:
        """The simulated time (installed as ``state.clock``)."""
        return self._now

    # ------------------------------------------------------------------ messages

    def receive(
        self,
        customer_id: str,
        program: str,
        *,
        code: str | None = None,
        value: Money | None = None,
        percent: Decimal | int | None = None,
        channel: Channel = "direct",
        key: str | None = None,
    ) -> Exposure | None:
        """A message of ``program`` reaches the customer now (None: the same ``key`` had
        already reached them; a message delivered twice is read once)."""
        key = key or f"{program}:{len(self.truth.exposures)}"
        if (customer_id, key) in self._seen:
            return None
        self._seen.add((customer_id, key))
        effect = self.truth.uplift(program)
        rng = random.Random(f"{self.seed}:{customer_id}:{program}:{key}")
        responds = rng.random() < effect.probability
        window = dt.timedelta(days=effect.window_days)
        response_at = self._now + rng.random() * window
        # the funnel draws come after the purchase draws, from their own stream, so rates
        # of 1 leave every earlier simulation exactly as it was
        funnel = random.Random(f"{self.seed}:{customer_id}:{program}:{key}:funnel")
        opened = funnel.random() < effect.open_rate
        clicked = opened and funnel.random() < effect.click_rate
        responds = responds and clicked
        exposure = Exposure(
            customer_id,
            program,
            self._now,
            channel,
            key,
            code,
            responds,
            response_at if responds else None,
            opened,
            clicked,
        )
        self.truth.exposures.append(exposure)
        held_codes = {c.code for c in self._codes.get(customer_id, ())}
        if code is not None and code not in held_codes:  # one code, used once, however told
            pct = Decimal(percent) if percent is not None else None
            held = _Code(code, program, self._now + window, value, pct)
            self._codes.setdefault(customer_id, []).append(held)
        if responds:
            self._pending.append(exposure)
        return exposure

    def collect(self) -> list[Exposure]:
        """Take the emails received and the codes created since the last call."""
        made: list[Exposure] = []
        codes = self._platform_codes()
        announced: set[str] = set()
        if self.inbox is not None:
            by_email = {(c.email or "").lower(): c.id for c in list(self.state.customers.values())}
            taken = self.inbox.take()
            taken.sort(key=lambda t: (str(t[1]["Message-ID"]), sorted(t[0])))
            for recipients, message in taken:
                text = _text(message)
                program = str(message["X-Shopsync-Kind"] or "email")
                key = str(message["Message-ID"] or f"email:{len(self.truth.exposures)}")
                for address in recipients:
                    cid = by_email.get(address.lower())
                    if cid is None:
                        continue
                    quoted = [c for c in self.code_pattern.findall(text)]
                    quoted += [c for c, (owner, *_) in codes.items() if owner == cid and c in text]
                    code = quoted[0] if quoted else None
                    value, percent = _terms(code, codes, text) if code else (None, None)
                    if code:
                        announced.add(code)
                    found = self.receive(
                        cid,
                        program,
                        code=code,
                        value=value,
                        percent=percent,
                        channel="email",
                        key=key,
                    )
                    if found is not None:
                        made.append(found)
        for code in sorted(codes):
            if code in self._platform_seen:
                continue
            self._platform_seen.add(code)
            owner, value, percent = codes[code]
            if code in announced or owner not in self.state.customers:
                continue
            found = self.receive(
                owner,
                self.code_program,
                code=code,
                value=value,
                percent=percent,
                channel="code",
                key=code,
            )
            if found is not None:
                made.append(found)
        return made

    def _platform_codes(self) -> dict[str, tuple[str, Money | None, Decimal | None]]:
        """Single-customer codes the emulator holds: Shopify's ``discounts`` (customer ids,
        a fixed amount) or WooCommerce's ``coupons`` (email restrictions, amount/percent)."""
        emu = self.emulator
        found: dict[str, tuple[str, Money | None, Decimal | None]] = {}
        if emu is None:
            return found
        currency = self.state.currency
        with self.state.lock:
            for d in list(getattr(emu, "discounts", {}).values()):
                if len(d.customer_ids) == 1:
                    amount = Money.of(d.amount, currency) if d.amount is not None else None
                    found[d.code] = (d.customer_ids[0], amount, None)
            if hasattr(emu, "coupons"):
                by_email = {(c.email or "").lower(): c.id for c in self.state.customers.values()}
                for body in list(emu.coupons.values()):
                    emails = body.get("email_restrictions") or []
                    owner = by_email.get(emails[0]) if len(emails) == 1 else None
                    if owner is None:
                        continue
                    if body.get("discount_type") == "percent":
                        found[body["code"]] = (owner, None, Decimal(str(body["amount"])))
                    else:
                        found[body["code"]] = (owner, Money.of(body["amount"], currency), None)
        return found

    # ------------------------------------------------------------------ time

    def advance(self, days: int = 1) -> list[SimulatedPurchase]:
        """Take what shopsync delivered, then live ``days`` days; returns the new orders."""
        if days < 0:
            raise ValueError("the clock only goes forward")
        self.collect()
        placed: list[SimulatedPurchase] = []
        model = self.population.model
        for _ in range(days):
            until = self._now + DAY
            events: list[tuple[dt.datetime, str, Exposure | None]] = []
            for cid in sorted(self.population.buyers):
                buyer = self.population.buyers[cid]
                for at in model.purchases_until(self._rng, buyer, until):
                    events.append((at, cid, None))
            due = [e for e in self._pending if e.response_at is not None and e.response_at < until]
            self._pending = [e for e in self._pending if e not in due]
            events += [(e.response_at, e.customer_id, e) for e in due if e.response_at]
            events.sort(key=lambda e: (e[0], e[1], e[2] is not None))
            for at, cid, cause in events:
                made = self._buy(cid, at, cause)
                if made is not None:
                    placed.append(made)
            self._now = until
        return placed

    def _buy(self, cid: str, at: dt.datetime, cause: Exposure | None) -> SimulatedPurchase | None:
        if cid not in self.state.customers:
            return None  # deleted or never a customer: nobody to buy
        buyer: Buyer | None = self.population.buyers.get(cid)
        self._now = max(self._now, at)
        value = Decimal(repr(self.population.model.spend(self._spend, buyer) * self._scale))
        value = max(self._step, value.quantize(self._step, ROUND_HALF_UP))
        gross = Money.of(value, self.state.currency)
        held = self._usable_code(cid, at, cause)
        discount = Money.zero(self.state.currency)
        if held is not None:
            held.used = True
            if held.percent is not None:
                off = (value * held.percent / 100).quantize(self._step, ROUND_HALF_UP)
            else:
                off = held.value.amount if held.value is not None else Decimal(0)
            discount = Money.of(min(off, value), self.state.currency)
        fields: dict[str, Any] = {"at": at}
        if held is not None:
            fields.update(discount_codes=(held.code,), total_discounts=discount)
        order = add_order(self.state, cid, (gross - discount).amount, **fields)
        program = cause.program if cause is not None else (held.program if held else None)
        made = SimulatedPurchase(
            order.id,
            cid,
            at,
            gross,
            discount,
            cause is not None,
            program,
            held.code if held else None,
        )
        self.truth.purchases.append(made)
        return made

    def _usable_code(self, cid: str, at: dt.datetime, cause: Exposure | None) -> _Code | None:
        usable = [c for c in self._codes.get(cid, ()) if not c.used and at <= c.until]
        if cause is not None:  # the message that brought them: its code first
            usable.sort(key=lambda c: c.code != cause.code)
        return usable[0] if usable else None


def _terms(
    code: str, codes: Mapping[str, tuple[str, Money | None, Decimal | None]], text: str
) -> tuple[Money | None, Decimal | None]:
    """What a quoted code is worth: as the platform holds it, else the first "NN %" of the
    text (Shopify's emulator keeps a fixed amount only; the email says "15 %")."""
    _, value, percent = codes.get(code, ("", None, None))
    if value is None and percent is None:
        said = _PERCENT.search(text)
        percent = Decimal(said.group(1).replace(",", ".")) if said else None
    return value, percent


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain", "html"))
    return str(body.get_content()) if body is not None else ""
