"""What a backtest reports (:mod:`shopsync.backtest`): per program and step, the holdout
lift with its interval, and the helpers that format them."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Z95", "Backtest", "Group", "Lift", "Planned", "ProgramResult", "wilson"]

Z95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95 % interval."""
Group = Literal["planned", "holdout", "delayed"]


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One action at one step: the per-action record of "to whom"."""

    at: dt.datetime
    """The step (the plan's as_of)."""
    kind: str
    platform: str
    shop: str
    customer_id: str
    idempotency_key: str
    marketing: bool
    group: Group
    """``planned``: would have been sent; ``holdout``: held by the holdout rule;
    ``delayed``: held by the quiet period or the frequency cap (it comes back later)."""
    returned: bool | None
    """A paid order within the horizon after ``at``; None when the step is censored."""


@dataclass(frozen=True)
class ProgramResult:
    """What one action kind would have done over the backtest."""

    kind: str
    actions: int
    """Planned actions, counted at every step they were planned."""
    customers: int
    """Distinct customers planned, counted once."""
    returned: int
    """Of the ``observed`` customers, those with a paid order within the horizon after a step
    they were planned at (in a replay: without any message)."""
    holdout: int
    """Distinct customers the holdout rule held back from this kind."""
    holdout_returned: int
    unique_actions: int = 0
    """Distinct idempotency keys: what the outbox would really have delivered."""
    observed: int = 0
    """Planned customers with at least one uncensored step (the denominator of ``returned``)."""
    holdout_observed: int = 0

    @property
    def rate(self) -> float:
        """Share of observed planned customers who came back (NaN when none observed)."""
        return _ratio(self.returned, self.observed)

    @property
    def holdout_rate(self) -> float:
        return _ratio(self.holdout_returned, self.holdout_observed)


@dataclass(frozen=True)
class Lift:
    """Repurchase rate of treated customers against the holdout group, with a 95 % interval."""

    treated: int
    treated_returned: int
    holdout: int
    holdout_returned: int
    sent: bool = False
    """True when at least half the treated customers had an action found ``done`` in the
    outbox (real messages); False when the comparison is a replay."""
    delivered: int = 0
    """Treated customers with at least one of their actions done in the outbox."""

    def __post_init__(self) -> None:
        for n, x in ((self.treated, self.treated_returned), (self.holdout, self.holdout_returned)):
            if n < 0 or not 0 <= x <= n:
                raise ValueError(f"returned must be between 0 and the group size, got {x}/{n}")

    @property
    def rate_treated(self) -> float:
        return _ratio(self.treated_returned, self.treated)

    @property
    def rate_holdout(self) -> float:
        return _ratio(self.holdout_returned, self.holdout)

    @property
    def difference(self) -> float:
        """Treated rate minus holdout rate (NaN when a group is empty)."""
        return self.rate_treated - self.rate_holdout

    @property
    def interval(self) -> tuple[float, float]:
        """Newcombe's hybrid score interval of the difference (NaN when a group is empty)."""
        if self.treated == 0 or self.holdout == 0:
            return (math.nan, math.nan)
        p1, p2 = self.rate_treated, self.rate_holdout
        l1, u1 = wilson(self.treated_returned, self.treated)
        l2, u2 = wilson(self.holdout_returned, self.holdout)
        d = p1 - p2
        return (d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))

    @property
    def low(self) -> float:
        return self.interval[0]

    @property
    def high(self) -> float:
        return self.interval[1]

    def __str__(self) -> str:
        how = "real sends" if self.sent else "replay: nothing was sent"
        if self.delivered and not self.sent:
            how = f"mostly a replay: {self.delivered:,} of {self.treated:,} were sent"
        if self.treated == 0 or self.holdout == 0:
            return (
                f"holdout lift ({how}): not measurable, treated {self.treated} and holdout "
                f"{self.holdout} customers observed"
            )
        return (
            f"holdout lift ({how}): treated {_pct(self.rate_treated)} of {self.treated:,} vs "
            f"holdout {_pct(self.rate_holdout)} of {self.holdout:,} came back: "
            f"{100 * self.difference:+.1f} points (95% CI {100 * self.low:+.1f} to "
            f"{100 * self.high:+.1f})"
        )


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN when ``n`` is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    z2 = z * z
    centre = (successes + z2 / 2) / (n + z2)
    half = z * math.sqrt(successes * (n - successes) / n + z2 / 4) / (n + z2)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Backtest:
    """The outcome of :func:`backtest`; ``str()`` gives a summary to print."""

    start: dt.datetime
    end: dt.datetime
    step: dt.timedelta
    horizon: dt.timedelta
    steps: list[dt.datetime]
    programs: dict[str, ProgramResult]
    lift: Lift
    recipients: dict[str, list[str]]
    """Action kind -> the customer ids it would have gone to, sorted, each once (with several
    shops an id may appear once per shop; :attr:`planned` tells them apart)."""
    planned: tuple[Planned, ...] = ()
    """Every planned, holdout and delayed action at every step, in step order."""
    censored: list[dt.datetime] = field(default_factory=list)
    """Steps left out of the return figures: their horizon reaches past ``latest_order``."""
    latest_order: dt.datetime | None = None
    consent_unseen: int = 0
    """Customers held for marketing because their consent was unknown at the step, though
    the store records them as subscribed later (see the module docstring, "Consent")."""
    notes: tuple[str, ...] = ()
    """What a reader of the figures should know."""

    def __str__(self) -> str:
        lines = [
            f"backtest {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC: "
            f"{len(self.steps)} step(s) every {_span(self.step)}, returns counted within "
            f"{_span(self.horizon)}"
        ]
        if self.latest_order is not None:
            lines.append(f"latest order in the store: {self.latest_order:%Y-%m-%d %H:%M} UTC")
        if self.censored:
            lines.append(
                f"{len(self.censored)} step(s) from {self.censored[0]:%Y-%m-%d} on are censored "
                "(their horizon reaches past the latest order) and left out of the return figures"
            )
        head = ("program", "actions", "unique", "customers", "returned", "holdout", "returned")
        rows = [
            (
                r.kind,
                f"{r.actions:,}",
                f"{r.unique_actions:,}",
                f"{r.customers:,}",
                _share(r.returned, r.observed),
                f"{r.holdout:,}",
                _share(r.holdout_returned, r.holdout_observed),
            )
            for r in self.programs.values()
        ]
        if not rows:
            lines.append("the policy planned nothing in this period")
        else:
            widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
            for row in [head, *rows]:
                cells = [row[0].ljust(widths[0])] + [
                    c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
                ]
                lines.append("  ".join(cells).rstrip())
        if rows:
            lines.append(
                f"returned: placed a paid order within {_span(self.horizon)} of a step they were "
                "planned at; unique: distinct actions, what the outbox would have sent"
            )
        lines.append(str(self.lift))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- formatting ------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({_pct(part / whole)})" if whole else "-"


def _span(value: dt.timedelta) -> str:
    if value % dt.timedelta(days=1) == dt.timedelta(0):
        days = value.days
        return f"{days} day{'s' if days != 1 else ''}"
    return str(value)
