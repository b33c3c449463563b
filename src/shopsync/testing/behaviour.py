"""Customers who buy by a published repeat-purchase model, so cohorts behave as real ones do.

The default generator spreads a fixed number of orders over customers; it makes a plausible
shop but not one whose buying follows a known law, so a model fitted to it (or a measured
lift) cannot be checked against the truth. :class:`BuyingModel` draws each customer's
purchases from the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy
way", Marketing Science 24(2)) and each order's value from the gamma-gamma spend model
(Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4); Fader & Hardie 2013, "The Gamma-Gamma
Model of Monetary Value"):

* while alive, a customer buys as a Poisson process of rate λ per week, λ ~ Gamma(r, α);
* after each *repeat* purchase the customer drops out for good with probability
  p ~ Beta(a, b) (never after the first: acquisition is the first purchase);
* each order's value is Gamma(p, ν) with ν ~ Gamma(q, v) per customer.

The defaults are the published CDNOW estimates: r=0.243, α=4.414 (weeks), a=0.793, b=2.426
(FHL 2005, table 2; the values lifetimes' and BTYD's test suites check their fits against)
and p=6.25, q=3.74, v=15.44 (Fader & Hardie 2013; CLVTools' correctness test), so a mean
order of about p·v/(q-1) = 35 in the shop's currency (times the generator's price scale).

Customers are acquired (make their first purchase) uniformly over the whole window, so every
monthly cohort has customers and keeps returning at the model's rates; an optional monthly
``seasonality`` modulates acquisition and buying by thinning (Lewis & Shedler 1979), which
keeps the process memoryless: a :class:`Buyer` can be carried on past the window day by day
(:mod:`shopsync.testing.simulation`) exactly as if it had been drawn in one go.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

__all__ = ["CDNOW", "RETAIL_SEASON", "Buyer", "BuyingModel", "Population"]

WEEK = dt.timedelta(weeks=1)

RETAIL_SEASON = (0.85, 0.8, 0.9, 0.9, 0.95, 0.95, 0.9, 0.95, 1.0, 1.05, 1.6, 1.85)
"""Monthly demand of a retail shop (January first) with its November-December peak: the
default generator's own season, for ``BuyingModel(seasonality=RETAIL_SEASON)``."""


@dataclasses.dataclass
class Buyer:
    """One customer's latent buying state; the simulation carries it on after generation."""

    rate: float
    """Purchases per week while alive (λ)."""
    dropout: float
    """Probability of dropping out after each repeat purchase (p)."""
    spend_rate: float
    """ν: the customer's order values are Gamma(p, ν), mean p/ν."""
    first: dt.datetime
    alive: bool = True
    next_at: dt.datetime | None = None
    """The next candidate purchase (accepted or thinned away by the season); None when dead."""
    purchases: list[dt.datetime] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BuyingModel:
    """BG/NBD buying with gamma-gamma spend; the defaults are the CDNOW estimates.

    ``alpha`` is in weeks; ``v`` in the shop's money (before the generator's price scale for
    currencies with large units such as JPY). ``seasonality`` is 12 monthly multipliers
    (January first) of both acquisition and buying, normalised to mean 1; None: flat.
    """

    r: float = 0.243
    alpha: float = 4.414
    a: float = 0.793
    b: float = 2.426
    p: float = 6.25
    q: float = 3.74
    v: float = 15.44
    seasonality: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        values = (self.r, self.alpha, self.a, self.b, self.p, self.q, self.v)
        if not all(x > 0 and x == x and x != float("inf") for x in values):
            raise ValueError("every BuyingModel parameter must be a finite number > 0")
        if self.seasonality is not None:
            season = tuple(float(x) for x in self.seasonality)
            if len(season) != 12 or any(not 0 < x < float("inf") for x in season):
                raise ValueError("seasonality needs 12 monthly multipliers, each > 0")
            mean = sum(season) / 12
            object.__setattr__(self, "seasonality", tuple(x / mean for x in season))

    # ------------------------------------------------------------------ season

    def season(self, at: dt.datetime) -> float:
        """Demand multiplier at ``at`` (1.0 without seasonality)."""
        return 1.0 if self.seasonality is None else self.seasonality[at.month - 1]

    @property
    def peak(self) -> float:
        return 1.0 if self.seasonality is None else max(self.seasonality)

    def arrival(self, rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        """A first-purchase time in [start, end), uniform after the season's weighting."""
        span = (end - start).total_seconds()
        while True:
            at = start + dt.timedelta(seconds=rng.random() * span)
            if rng.random() * self.peak < self.season(at):
                return at

    # ------------------------------------------------------------------ buyers

    def buyer(self, rng: random.Random, first: dt.datetime) -> Buyer:
        """A new customer whose first purchase is at ``first``."""
        rate = rng.gammavariate(self.r, 1 / self.alpha)
        dropout = rng.betavariate(self.a, self.b)
        spend_rate = rng.gammavariate(self.q, 1 / self.v)
        found = Buyer(rate, dropout, spend_rate, first, purchases=[first])
        found.next_at = self._after(rng, found, first)
        return found

    def _after(self, rng: random.Random, buyer: Buyer, at: dt.datetime) -> dt.datetime | None:
        total = buyer.rate * self.peak
        if total <= 0:
            return None
        weeks = rng.expovariate(total)
        if weeks > 52 * 1000:  # nobody lives this long: a dormant customer
            return None
        return at + weeks * WEEK

    def purchases_until(
        self, rng: random.Random, buyer: Buyer, until: dt.datetime
    ) -> list[dt.datetime]:
        """The buyer's purchases after the last drawn one and up to ``until`` (exclusive),
        appended to ``buyer.purchases``; a dropout ends them for good."""
        made: list[dt.datetime] = []
        while buyer.alive and buyer.next_at is not None and buyer.next_at < until:
            at = buyer.next_at
            if rng.random() * self.peak < self.season(at):  # thinning: a real purchase
                made.append(at)
                if rng.random() < buyer.dropout:
                    buyer.alive = False
            buyer.next_at = self._after(rng, buyer, at) if buyer.alive else None
        buyer.purchases.extend(made)
        return made

    def spend(self, rng: random.Random, buyer: Buyer | None = None) -> float:
        """One order's value (a guest, ``buyer`` None, gets a fresh ν)."""
        rate = buyer.spend_rate if buyer is not None else rng.gammavariate(self.q, 1 / self.v)
        return rng.gammavariate(self.p, 1 / rate)


CDNOW = BuyingModel()
"""The CDNOW fit: BG/NBD (FHL 2005) and gamma-gamma (Fader & Hardie 2013), flat season."""


@dataclasses.dataclass
class Population:
    """The buyers of a generated shop, by customer id, with the model and the time they were
    drawn up to (the shop's generation ``end``)."""

    model: BuyingModel
    buyers: dict[str, Buyer]
    until: dt.datetime
    simulated: bool = False
    """A :class:`~shopsync.testing.simulation.Simulation` carries these buyers on: a second
    one would draw their purchases again."""
