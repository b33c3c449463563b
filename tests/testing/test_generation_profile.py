"""What a generated shop looks like per platform: pinned, so moving the platform's habits
out of the generator (into the emulator's generation profile) cannot change a byte."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from shopsync.testing import ShopState, generate_shop
from shopsync.testing.profile import GenerationProfile

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def digest(state: ShopState) -> str:
    """sha256 over every record in id order, the deletions, the facts and the next ids."""
    h = hashlib.sha256()
    for table in (state.customers, state.orders, state.products):
        for key in sorted(table):
            h.update(table[key].model_dump_json().encode())
    h.update(repr(sorted(state.deleted.items())).encode())
    h.update(repr(sorted(state.product_facts.items())).encode())
    h.update(repr(sorted(state.next_ids.items())).encode())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("shopify", "ddf1b5ccf7b1e4d0af098b0f29bdc79f9db09bfa7bfe7968df09f64e0a72b919"),
        ("woocommerce", "71c7ba3af1c0ebe27b31475aee00fa1434e8f67f27569acf4cafd2d125b8c6a4"),
        # no emulator installed under that name: the neutral profile
        ("echo", "c361887a8facfd55a7ae4aa9480d9c6b30be9d103ee536333c5d92611100f34a"),
    ],
)
def test_a_generated_shop_is_byte_identical(platform: str, expected: str) -> None:
    state = generate_shop(
        platform=platform, shop="pin.example", seed=3, customers=60, orders=240, end=END
    )
    assert digest(state) == expected


def test_each_emulator_declares_its_habits_and_the_generator_follows_them() -> None:
    from shopsync.testing import load_emulator
    from shopsync.testing.profile import NEUTRAL, profile_for

    for platform in ("shopify", "woocommerce"):
        assert profile_for(platform) is load_emulator(platform).generation  # type: ignore[attr-defined]
    assert profile_for("echo") is NEUTRAL
    mine = GenerationProfile(order_sources=(("kiosk", 1.0),), single_option_has_variant=False)
    state = generate_shop(
        platform="shopify", shop="p.example", seed=3, customers=20, orders=60, end=END, profile=mine
    )
    assert {o.source for o in state.orders.values()} == {"kiosk"}
    # the catalogue has one-option categories: they lost their variant, the others kept theirs
    counts = {len(p.variants) for p in state.products.values()}
    assert 0 in counts and 1 not in counts


def test_a_profile_without_a_source_is_refused() -> None:
    with pytest.raises(ValueError, match="order_sources"):
        GenerationProfile(order_sources=())
    with pytest.raises(ValueError, match="weight"):
        GenerationProfile(order_sources=(("web", 0.0),))


def test_an_emulator_declaring_no_profile_gets_the_neutral_one_and_a_wrong_one_is_refused() -> None:
    from shopsync.testing.profile import NEUTRAL, profile_of

    class Plain:
        pass

    class Wrong:
        generation = (("web", 1.0),)  # the sources alone, not a profile

    assert profile_of(Plain) is NEUTRAL
    with pytest.raises(TypeError, match=r"Wrong\.generation must be a GenerationProfile"):
        profile_of(Wrong)
