"""The policy model: defaults, TOML loading, errors that name the key, the reference page."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shopsync.core.policy import Policy, PolicyError
from shopsync.errors import ConfigurationError


def test_defaults_are_the_documented_anchors() -> None:
    p = Policy()
    assert p.loyalty.earn.points_per_unit == 5
    assert p.loyalty.earn.pending_days == 14
    assert p.loyalty.redemption.points_per_unit == 100
    assert p.loyalty.redemption.steps == (500, 1000, 1500, 2000)
    assert p.loyalty.expiry.inactivity_months == 12
    assert p.loyalty.expiry.warn_days_before == (30, 7)
    assert p.loyalty.tiers.window == "rolling_12_months"
    assert p.loyalty.tiers.hold_months == 12
    assert p.loyalty.birthday.min_days_after_entry == 30
    assert p.loyalty.birthday.cooldown_days == 365
    assert p.frequency_cap.email_hours == 16
    assert p.reviews.days_after_fulfillment == 14


def test_every_field_has_a_meaning_and_a_source() -> None:
    def walk(model: type) -> None:
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            annotation = info.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation)
                continue
            extra = info.json_schema_extra or {}
            assert info.description, f"{model.__name__}.{name} has no description"
            assert extra.get("source"), f"{model.__name__}.{name} has no source"

    walk(Policy)


def test_from_toml_text_and_path(tmp_path: Path) -> None:
    text = """
currency = "eur"

[loyalty.earn]
points_per_unit = 3
include_shipping = true

[[loyalty.tiers.tiers]]
name = "Member"
threshold = 0

[[loyalty.tiers.tiers]]
name = "VIP"
threshold = 49.99
multiplier = "1.5"
"""
    p = Policy.from_toml(text)
    assert p.currency == "EUR"
    assert p.loyalty.earn.points_per_unit == 3 and p.loyalty.earn.include_shipping
    assert p.loyalty.tiers.tiers[1].threshold == Decimal("49.99")
    path = tmp_path / "retention.toml"
    path.write_text(text)
    assert Policy.from_toml(path) == p
    assert Policy.from_toml(str(path)) == p
    assert Policy.from_toml("") == Policy()


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[loyalty.earn]\npoints_per_unit = 0", "loyalty.earn.points_per_unit"),
        ("[loyalty.earn]\npending_dayz = 3", "loyalty.earn.pending_dayz"),
        ('[loyalty.tiers]\nwindow = "weekly"', "loyalty.tiers.window"),
        ('[[loyalty.tiers.tiers]]\nname = "x"\nthreshold = -1', "loyalty.tiers.tiers[0].threshold"),
        ("[loyalty.redemption]\nsteps = [1000, 500]", "loyalty.redemption"),
        ('currency = "XXY"', "currency"),
        ("[frequency_cap]\nemail_hours = -1", "frequency_cap.email_hours"),
    ],
)
def test_errors_name_the_key(toml: str, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml(toml)
    assert key in caught.value.keys
    assert key in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_unreadable_and_malformed() -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        Policy.from_toml("no-such-file.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        Policy.from_toml("[loyalty\n")
