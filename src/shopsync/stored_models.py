"""The shop-level models a plan uses: the stored ones while fresh, else rebuilt and stored
(issue 19, item 3; what the models are and when they are stale: :mod:`shopsync.core.shop_models`;
how they are stored: :mod:`shopsync.store.shop_models`).

A plan that writes nothing (``update_ledger=False``: a backtest) uses stored models when
fresh but never stores any. A plan for a day before the stored models' day builds its own
and stores nothing (the stored ones stay the newest). Two processes rebuilding at once: the
first to store wins, the other drops what it built and uses the winner's version, so both
plans name the same version. A body this shopsync cannot read (written by an older or newer
one, or damaged) is rebuilt over, with the next version number.

Decoded models are kept on the store object (:attr:`Store.memo`), never in a module, for
the next plan of the same version.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from shopsync._instants import instant
from shopsync.core._data import Frames
from shopsync.core.policy import Policy
from shopsync.core.shop_models import (
    FORMAT,
    ModelHeader,
    ModelsUsed,
    ShopModels,
    decode,
    encode,
    settings_tag,
    stale_reason,
)
from shopsync.core.shop_stats import day_start, shop_models
from shopsync.frames import load
from shopsync.store import NO_SHOP, Store
from shopsync.store import shop_models as rows

__all__ = ["current", "mark", "serve", "stored"]

_KEEP = 8


class _Decoded(OrderedDict[tuple[Any, ...], ShopModels]):
    """Models decoded or built, by (shop, version) or (shop, settings, day, data), newest
    used last (at most ``_KEEP``), owned by the store object."""

    @classmethod
    def of(cls, store: Store) -> _Decoded:
        found = store.memo.setdefault("stored_models.decoded", cls())
        assert isinstance(found, cls)
        return found

    def keep(self, key: tuple[Any, ...], models: ShopModels) -> ShopModels:
        self[key] = models
        self.move_to_end(key)
        while len(self) > _KEEP:
            self.popitem(last=False)
        return models


def current(
    store: Store,
    policy: Policy,
    platform: str,
    shop: str,
    at: int,
    frames: Frames | None,
    *,
    persist: bool,
    seq: int | None = None,
) -> tuple[ShopModels, ModelsUsed]:
    """The models for a plan at ``at`` (micros) and which they are; ``frames`` (the whole
    shop at ``at``) saves a read when they must be rebuilt, and ``seq`` is :func:`mark` read
    before them (so a write landing between the two counts as a change since the build).
    ``persist`` False stores nothing."""
    day = day_start(at)
    tag = settings_tag(policy)
    shop_id = store.shop_id(platform, shop, create=False)
    cache = _Decoded.of(store)
    head = rows.header(store, shop_id) if shop_id != NO_SHOP else None
    why = "no stored models"
    if head is not None:
        changes = rows.changes_since(store, shop_id, head.facts_seq)
        why = stale_reason(head, day=day, settings=tag, changes=changes, policy=policy) or ""
        if not why:
            found = _decoded(store, shop_id, head, cache)
            if found is not None:
                return found, _used(platform, shop, head, changes, rebuilt=False)
            why = "the stored body could not be read"
    if frames is None or seq is None:
        frames, seq = None, mark(store, shop_id)  # read before the frames it describes
    born = rows.shop_mark(store, shop_id)[1]  # a removed shop's id given to a new one (SQLite)
    key = ("built", platform, shop, shop_id, born, tag, day, seq)
    models = cache.get(key)
    if models is None:
        models = cache.keep(
            key, shop_models(frames or _whole(store, policy, platform, shop, day), policy)
        )
    built = _now()
    if not persist or shop_id == NO_SHOP or (head is not None and head.data_as_of > day):
        why += "; not stored: " + (
            "this plan writes nothing" if not persist else "a later day's are"
        )
        return models, _unstored(platform, shop, models, built, why)
    new = ModelHeader(
        version=(head.version if head is not None else 0) + 1,
        format=FORMAT,
        settings=tag,
        data_as_of=models.as_of,
        built_at=built,
        facts_seq=seq,
        customers=models.customers_with_orders,
    )
    if rows.save(store, shop_id, None if head is None else head.version, new, encode(models)):
        cache.keep(_stored_key(shop_id, new), models)
        return models, _used(platform, shop, new, 0, rebuilt=True, why=why)
    # another process stored a version since we read: use it when it serves this plan
    other = rows.header(store, shop_id)
    if other is not None:
        changes = rows.changes_since(store, shop_id, other.facts_seq)
        if stale_reason(other, day=day, settings=tag, changes=changes, policy=policy) is None:
            theirs = _decoded(store, shop_id, other, cache)
            if theirs is not None:
                return theirs, _used(platform, shop, other, changes, rebuilt=False)
    lost = "; not stored: another process stored a version meanwhile"
    return models, _unstored(platform, shop, models, built, why + lost)


def stored(
    store: Store, policy: Policy, platform: str, shop: str, at: int
) -> tuple[ShopModels, ModelsUsed]:
    """The models for a one-customer plan at ``at``: the stored ones as they are, even when
    stale (``ModelsUsed.why`` then says why; only a whole-shop plan rebuilds, so a webhook
    never reads the shop). With none usable (never stored, unreadable) they are built as
    :func:`current` builds them: once, and stored; with a later day's stored, built once
    and kept on the store object (:func:`_earlier_day`)."""
    shop_id = store.shop_id(platform, shop, create=False)
    head = rows.header(store, shop_id) if shop_id != NO_SHOP else None
    if head is not None and head.format == FORMAT and head.data_as_of <= day_start(at):
        found = _decoded(store, shop_id, head, _Decoded.of(store))
        if found is not None:
            changes = rows.changes_since(store, shop_id, head.facts_seq)
            why = stale_reason(
                head,
                day=day_start(at),
                settings=settings_tag(policy),
                changes=changes,
                policy=policy,
            )
            return found, _used(platform, shop, head, changes, rebuilt=False, why=why or "")
    if head is not None and head.data_as_of > day_start(at):
        return _earlier_day(store, policy, platform, shop, at, shop_id)
    return current(store, policy, platform, shop, at, None, persist=True)


def _earlier_day(
    store: Store, policy: Policy, platform: str, shop: str, at: int, shop_id: int
) -> tuple[ShopModels, ModelsUsed]:
    """Models for a day before the stored ones' day, which cannot be stored over them: built
    once per store object and day, then used as kept, stale like stored ones (each webhook
    writes an order: keyed by the data mark, as :func:`current` keys them, they were built
    from the whole shop on every webhook)."""
    seq, born = rows.shop_mark(store, shop_id)  # born: a removed shop's id given to a new one
    kept: dict[tuple[Any, ...], tuple[ShopModels, ModelsUsed, int]]
    kept = store.memo.setdefault("stored_models.earlier_day", {})
    key = (platform, shop, shop_id, born, settings_tag(policy), day_start(at))
    if key not in kept:
        if len(kept) >= _KEEP:
            kept.clear()
        kept[key] = (*current(store, policy, platform, shop, at, None, persist=True), seq)
        return kept[key][0], kept[key][1]
    models, used, since = kept[key]
    changes = rows.changes_since(store, shop_id, since)
    why = "built for this day, not stored: a later day's are"
    return models, replace(used, changes_since=changes, rebuilt=False, why=why)


def serve(store: Store, policy: Policy, shop_id: int, at: int) -> bool:
    """Whether the stored models serve a plan at ``at`` as stored: current (no stale reason)
    and readable. The body is decoded once here, and kept for the plan's :func:`stored`."""
    head = rows.header(store, shop_id) if shop_id != NO_SHOP else None
    if head is None:
        return False
    changes = rows.changes_since(store, shop_id, head.facts_seq)
    tag, day = settings_tag(policy), day_start(at)
    if stale_reason(head, day=day, settings=tag, changes=changes, policy=policy) is not None:
        return False
    return _decoded(store, shop_id, head, _Decoded.of(store)) is not None


def mark(store: Store, shop_id: int) -> int:
    """The shop's order-facts sequence now: read it before reading the frames a build uses."""
    return rows.facts_seq(store, shop_id) if shop_id != NO_SHOP else 0


def _stored_key(shop_id: int, head: ModelHeader) -> tuple[Any, ...]:
    """A stored body's identity: its version and when it was built, since a version number
    repeats when a removed shop's id is given to a new shop (SQLite) or a backup is restored."""
    return ("stored", shop_id, head.version, head.built_at, head.facts_seq)


def _decoded(store: Store, shop_id: int, head: ModelHeader, cache: _Decoded) -> ShopModels | None:
    key = _stored_key(shop_id, head)
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
        return found
    data = rows.body(store, shop_id, head.version)
    if data is None:
        return None
    try:
        return cache.keep(key, decode(data))
    except ValueError:
        return None


def _whole(store: Store, policy: Policy, platform: str, shop: str, day: int) -> Frames:
    """The whole shop as of ``day`` (00:00 UTC): what the models are built from."""
    return load(
        store,
        platform,
        shop,
        instant(day),
        currency=policy.currency,
        window_days=policy.frequency_cap.window_days,
        advocates=False,
    )


def _now() -> int:
    return time.time_ns() // 1000


def _used(
    platform: str, shop: str, head: ModelHeader, changes: int, *, rebuilt: bool, why: str = ""
) -> ModelsUsed:
    return ModelsUsed(
        platform,
        shop,
        head.version,
        instant(head.data_as_of),
        instant(head.built_at),
        changes,
        rebuilt,
        why,
    )


def _unstored(platform: str, shop: str, models: ShopModels, built: int, why: str) -> ModelsUsed:
    return ModelsUsed(platform, shop, None, instant(models.as_of), instant(built), 0, True, why)
