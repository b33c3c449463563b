"""The platform habits a generated shop follows, declared by the platform's emulator.

The generator is platform-neutral; what differs between platforms (where orders come from,
whether a product with one option still has a variant) lives with the emulator that serves
it, as its ``generation`` class attribute. An emulator without one, or a platform with no
emulator installed, gets :data:`NEUTRAL`.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

__all__ = ["NEUTRAL", "GenerationProfile", "profile_for", "profile_of"]


@dataclasses.dataclass(frozen=True)
class GenerationProfile:
    """What :func:`~shopsync.testing.generate_shop` draws differently per platform."""

    order_sources: tuple[tuple[str, float], ...] = (("web", 1.0),)
    """The order's ``source`` values with their weights (they need not sum to 1)."""
    single_option_has_variant: bool = True
    """False: a product with one option has no variants (WooCommerce's "simple" product)."""

    def __post_init__(self) -> None:
        if not self.order_sources or any(w <= 0 for _, w in self.order_sources):
            raise ValueError("order_sources needs at least one source, each with a weight > 0")


NEUTRAL = GenerationProfile()
"""The profile of a platform whose emulator declares none."""


def profile_of(emulator: type) -> GenerationProfile:
    """The profile an emulator class declares (``generation``), else :data:`NEUTRAL`."""
    profile = getattr(emulator, "generation", NEUTRAL)
    if not isinstance(profile, GenerationProfile):
        raise TypeError(f"{emulator.__name__}.generation must be a GenerationProfile")
    return profile


_FOUND: dict[str, GenerationProfile] = {}
"""Profiles of installed emulators by platform: reading the entry points takes ~50 ms."""


def profile_for(platform: str) -> GenerationProfile:
    """The profile of the emulator registered as ``platform``, else :data:`NEUTRAL`.

    An emulator that is installed but fails to import raises, as :func:`load_emulator` does:
    a silent neutral profile would generate a different shop. A found profile is kept for
    the life of the process.
    """
    found = _FOUND.get(platform)
    if found is None:
        from shopsync.testing import ENTRY_POINT_GROUP, load_emulator  # the package imports us

        if all(ep.name != platform for ep in entry_points(group=ENTRY_POINT_GROUP)):
            return NEUTRAL
        found = _FOUND[platform] = profile_of(load_emulator(platform))
    return found
