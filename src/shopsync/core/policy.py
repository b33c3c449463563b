"""The retention policy: every program's settings in one validated model.

A policy is plain data. Rules read it; nothing in it is looked up at run time. Every default
comes from what the leading tools ship or recommend (shared research, retention §2 and §8),
and each field names its source, so a merchant can see why a number is what it is. The
reference page ``docs/policy.md`` is generated from this model by :mod:`shopsync._docs`
(``python -m shopsync._docs``).

Load one from TOML::

    policy = Policy.from_toml("retention.toml")        # a path
    policy = Policy.from_toml('[loyalty.earn]\\npoints_per_unit = 3')   # or TOML text

Unknown keys are refused (a typo must not silently fall back to a default), and every error
names the dotted key that is wrong.

The sections live in :mod:`shopsync.core.policy_loyalty` and
:mod:`shopsync.core.policy_programs`, built from :mod:`shopsync.core.policy_fields`, and
are re-exported here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError

from shopsync._currencies import EXPONENTS
from shopsync.core.policy_abandoned import AbandonedCheckoutSettings
from shopsync.core.policy_browse import BrowseSettings
from shopsync.core.policy_fields import DERIVED, _f, _Section
from shopsync.core.policy_loyalty import (
    BirthdaySettings,
    CategoryBonusSettings,
    EarnSettings,
    ExpirySettings,
    LoyaltySettings,
    MilestoneSettings,
    OrderMilestone,
    RedemptionSettings,
    ReferralSettings,
    Tier,
    TierSettings,
)
from shopsync.core.policy_models import ModelSettings
from shopsync.core.policy_programs import (
    ConsentSettings,
    FrequencyCapSettings,
    HoldoutSettings,
    LifecycleSettings,
    MessagingSettings,
    QuietPeriod,
    QuietSettings,
    RecommendationSettings,
    ReplenishmentSettings,
    ReviewSettings,
    WarrantySettings,
    WinbackSettings,
)
from shopsync.core.policy_shipping import (
    EducationSeries,
    EducationSettings,
    EducationStep,
    ShippingSettings,
)
from shopsync.core.policy_surveys import SurveySettings
from shopsync.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "AbandonedCheckoutSettings",
    "BirthdaySettings",
    "BrowseSettings",
    "CategoryBonusSettings",
    "ConsentSettings",
    "EarnSettings",
    "EducationSeries",
    "EducationSettings",
    "EducationStep",
    "ExpirySettings",
    "FrequencyCapSettings",
    "HoldoutSettings",
    "LifecycleSettings",
    "LoyaltySettings",
    "MessagingSettings",
    "MilestoneSettings",
    "ModelSettings",
    "OrderMilestone",
    "Policy",
    "PolicyError",
    "QuietPeriod",
    "QuietSettings",
    "RecommendationSettings",
    "RedemptionSettings",
    "ReferralSettings",
    "ReplenishmentSettings",
    "ReviewSettings",
    "ShippingSettings",
    "SurveySettings",
    "Tier",
    "TierSettings",
    "WarrantySettings",
    "WinbackSettings",
]


def _currency(value: Any) -> Any:
    if value is None:
        return None
    code = str(value).strip().upper()
    if code not in EXPONENTS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


class Policy(_Section):
    """Every retention program's settings. ``Policy()`` is the documented default."""

    currency: Annotated[str | None, BeforeValidator(_currency)] = _f(
        None,
        "The shop currency (ISO 4217). Orders in another currency are kept out of money "
        "features and quarantined from loyalty. Null: the currency most orders use.",
        DERIVED,
    )
    loyalty: LoyaltySettings = LoyaltySettings()
    frequency_cap: FrequencyCapSettings = FrequencyCapSettings()
    consent: ConsentSettings = ConsentSettings()
    reviews: ReviewSettings = ReviewSettings()
    winback: WinbackSettings = WinbackSettings()
    replenishment: ReplenishmentSettings = ReplenishmentSettings()
    warranty: WarrantySettings = WarrantySettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    shipping: ShippingSettings = ShippingSettings()
    education: EducationSettings = EducationSettings()
    surveys: SurveySettings = SurveySettings()
    holdout: HoldoutSettings = HoldoutSettings()
    quiet: QuietSettings = QuietSettings()
    messaging: MessagingSettings = MessagingSettings()
    abandoned_checkout: AbandonedCheckoutSettings = AbandonedCheckoutSettings()
    browse_abandonment: BrowseSettings = BrowseSettings()
    models: ModelSettings = ModelSettings()

    @classmethod
    def from_toml(cls, source: str | Path) -> Policy:
        """A policy from a TOML file path or TOML text; missing keys keep their defaults.

        Raises :class:`PolicyError` naming every wrong key (``loyalty.earn.points_per_unit``).
        """
        if isinstance(source, Path) or (source.strip() and not any(c in source for c in "\n=[")):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PolicyError(f"cannot read policy file {str(path)!r}: {exc}", []) from None
        else:
            text = source
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy is not valid TOML: {exc}", []) from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """A policy from plain data (as parsed from TOML or JSON)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [(_key(err["loc"]), err["msg"]) for err in exc.errors()]
            lines = "; ".join(f"{key}: {msg}" for key, msg in problems)
            raise PolicyError(f"invalid policy: {lines}", [k for k, _ in problems]) from None


def _key(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        else:
            parts.append(part)
    return ".".join(parts) or "(policy)"


class PolicyError(ConfigurationError):
    """A policy that does not validate; ``keys`` lists the dotted keys at fault."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys
