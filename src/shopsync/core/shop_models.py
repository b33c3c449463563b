"""Shop-level models, kept between plans (issue 19, item 3): what they are, how they are
written down, and when a stored one is too old to use.

The MBG/NBD fit, the also-bought table, the learned usage periods and the one-time buyers'
win-back delay describe the shop, not one customer, and cost a pass over every order (the
fit alone is an optimisation over every customer). They move slowly: a day's orders barely
shift them. So a plan uses the models stored with the shop while they are fresh, and
rebuilds them on a schedule (``models.refresh_every_days``) or when enough of the shop
changed (``models.refresh_after_changed_share``), not on every run. The service layer
(:mod:`shopsync.stored_models`) reads and writes them; everything here is pure.

A model describes the shop as of 00:00 UTC of the day it was built for (``as_of``): a plan
made on a later day uses it as it is, and a plan for an earlier day never uses it (it would
see orders placed after that plan's moment).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from shopsync import clv
from shopsync._instants import instant
from shopsync.core._data import DAY_US
from shopsync.core.policy import Policy
from shopsync.core.recommend import AlsoBought, Neighbour

__all__ = [
    "FORMAT",
    "ModelHeader",
    "ModelsUsed",
    "ShopModels",
    "decode",
    "encode",
    "settings_tag",
    "stale_reason",
]

FORMAT = 1
"""The layout of :func:`encode`'s body. A stored body of another format (an older or newer
shopsync wrote it) is rebuilt, never guessed at."""


@dataclass(frozen=True)
class ShopModels:
    """The shop-level models as of ``as_of`` (micros, 00:00 UTC of the day built for)."""

    as_of: int
    customers_with_orders: int = 0
    repeat_customers: int = 0
    """Customers with a second paid order."""
    second_gap_median_days: float | None = None
    one_time_days: float = 90.0
    """Win-back delay for one-time buyers."""
    one_time_basis: str = ""
    """How that delay was chosen, for reasons."""
    mbg: clv.MbgNbdParams | None = None
    model_note: str = "no model"
    usage_days: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Learned usage period per product: (days per unit, repeat pairs it rests on)."""
    also_bought: AlsoBought = field(default_factory=AlsoBought)


@dataclass(frozen=True)
class ModelHeader:
    """What the store keeps beside a model's body: enough to judge it without decoding it."""

    version: int
    format: int
    settings: str
    data_as_of: int
    """The ``as_of`` of the models (micros)."""
    built_at: int
    """When they were built (micros, the building process's clock)."""
    facts_seq: int
    """The shop's order-facts sequence read before the build."""
    customers: int
    """Customers with a paid order when built: the base of the changed share."""


@dataclass(frozen=True)
class ModelsUsed:
    """Which models a plan of one shop used (:attr:`shopsync.Plan.models`)."""

    platform: str
    shop: str
    version: int | None
    """The stored version; None: built for this plan alone and not stored (a plan that
    writes nothing, one for an earlier day than the stored models, a lost race)."""
    data_as_of: dt.datetime
    built_at: dt.datetime
    changes_since: int
    """Orders written (new, changed, refunded, deleted) since the models were built."""
    rebuilt: bool
    why: str = ""
    """Why they were rebuilt (or why the rebuilt ones were not stored); for reused ones, why
    they are stale (a one-customer plan uses stale models as stored)."""

    def describe(self) -> str:
        name = "not stored" if self.version is None else f"version {self.version}"
        how = f"rebuilt ({self.why})" if self.rebuilt else "reused"
        if not self.rebuilt and self.why:
            how = f"reused though stale ({self.why})"
        return (
            f"{self.shop}: models {name}, data as of {self.data_as_of:%Y-%m-%d %H:%M} UTC, "
            f"built {self.built_at:%Y-%m-%d %H:%M} UTC, {self.changes_since} order change(s) "
            f"since; {how}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "shop": self.shop,
            "version": self.version,
            "data_as_of": self.data_as_of.isoformat(),
            "built_at": self.built_at.isoformat(),
            "changes_since": self.changes_since,
            "rebuilt": self.rebuilt,
            "why": self.why,
        }


def settings_tag(policy: Policy) -> str:
    """Names the settings the models are built with (other settings, other models): the
    sections :func:`~shopsync.core.shop_stats.shop_models` reads, and the currency (which
    orders count as paid)."""
    parts = [
        str(FORMAT),
        str(policy.currency),
        policy.winback.model_dump_json(),
        policy.replenishment.model_dump_json(),
        policy.recommendations.model_dump_json(),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def stale_reason(
    head: ModelHeader, *, day: int, settings: str, changes: int, policy: Policy
) -> str | None:
    """Why the stored models cannot serve a plan of ``day`` (00:00 UTC, micros), or None.

    ``changes`` is the number of orders written since they were built; over the customers
    the models rest on it is the changed share (an order changed twice counts once, two
    orders of one customer twice: the share errs towards rebuilding)."""
    m = policy.models
    if head.format != FORMAT:
        return f"stored in format {head.format}, this shopsync reads format {FORMAT}"
    if head.settings != settings:
        return "built with other settings"
    if head.data_as_of > day:
        return f"built for a later day ({instant(head.data_as_of):%Y-%m-%d}) than the plan's"
    age = (day - head.data_as_of) // DAY_US
    if age >= m.refresh_every_days:
        return (
            f"built for data {age} day(s) old (models.refresh_every_days = {m.refresh_every_days})"
        )
    share = changes / head.customers if head.customers else float(changes > 0)
    if changes and share >= m.refresh_after_changed_share:
        return (
            f"{changes} order change(s) since, {share:.1%} of {head.customers} customers "
            f"(models.refresh_after_changed_share = {m.refresh_after_changed_share})"
        )
    return None


# -- the stored form -----------------------------------------------------------------------


def encode(models: ShopModels) -> bytes:
    """Compressed JSON of ``models`` (format :data:`FORMAT`). Floats are written as Python's
    shortest repr, which reads back to the same float: a decoded model plans exactly as the
    one built."""
    mbg = models.mbg
    data = {
        "format": FORMAT,
        "as_of": models.as_of,
        "customers_with_orders": models.customers_with_orders,
        "repeat_customers": models.repeat_customers,
        "second_gap_median_days": models.second_gap_median_days,
        "one_time_days": models.one_time_days,
        "one_time_basis": models.one_time_basis,
        "mbg": None
        if mbg is None
        else [mbg.r, mbg.alpha, mbg.a, mbg.b, mbg.log_likelihood, mbg.n_customers],
        "model_note": models.model_note,
        "usage_days": {k: [d, n] for k, (d, n) in sorted(models.usage_days.items())},
        "also_bought": {
            "customers": models.also_bought.customers,
            "neighbours": {
                pid: [[n.product_id, n.cosine, n.lift, n.co_buyers] for n in found]
                for pid, found in models.also_bought.neighbours.items()
            },
        },
    }
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def decode(body: bytes) -> ShopModels:
    """The models :func:`encode` wrote; ValueError for a body this version cannot read."""
    try:
        data = json.loads(zlib.decompress(body))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        raw = data["mbg"]
        mbg = None
        if raw is not None:
            r, alpha, a, b, ll, n = raw
            mbg = clv.MbgNbdParams(
                r=float(r),
                alpha=float(alpha),
                a=float(a),
                b=float(b),
                log_likelihood=float(ll),
                n_customers=int(n),
            )
        table = data["also_bought"]
        gap = data["second_gap_median_days"]
        return ShopModels(
            as_of=int(data["as_of"]),
            customers_with_orders=int(data["customers_with_orders"]),
            repeat_customers=int(data["repeat_customers"]),
            second_gap_median_days=None if gap is None else float(gap),
            one_time_days=float(data["one_time_days"]),
            one_time_basis=str(data["one_time_basis"]),
            mbg=mbg,
            model_note=str(data["model_note"]),
            usage_days={str(k): (float(d), int(n)) for k, (d, n) in data["usage_days"].items()},
            also_bought=AlsoBought(
                {
                    str(pid): tuple(
                        Neighbour(str(p), float(c), float(lift), int(co))
                        for p, c, lift, co in found
                    )
                    for pid, found in table["neighbours"].items()
                },
                int(table["customers"]),
            ),
        )
    except (zlib.error, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable shop models: {type(exc).__name__}: {exc}") from None
