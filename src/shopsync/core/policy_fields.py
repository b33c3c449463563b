"""What every policy section is built from: the base model, the field helper, the sources.

Each field of a section names its source (``json_schema_extra={"source": ...}``), which
the generated reference (``docs/policy.md``) prints beside the default; the source strings
shared by several sections live here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

SMILE_EARN = "Smile.io launch checklist and earning rules (help.smile.io 2547, 4036267)"
SMILE_REWARDS = "Smile.io fixed rewards (help.smile.io 4036249); research retention §2.1"
SMILE_EXPIRY = "Smile.io points expiry FAQ (help.smile.io 5348802); research retention §8"
LL_PENDING = "LoyaltyLion, how points work (help.loyaltylion.com 6062006)"
LL_REFUND = "LoyaltyLion, points on refunds (help.loyaltylion.com article 90)"
TIERS_SRC = "LoyaltyLion tiers (rolling 12 months, silent downgrade); Yotpo (12 months from entry)"
BIRTHDAY_SRC = "Smile.io birthday rewards (30-day rule); LoyaltyLion (365-day cool-off)"
REFERRAL_SRC = "Smile.io referral fraud (help.smile.io 4036291); LoyaltyLion refer-a-friend"
KLAVIYO_SS = "Klaviyo Smart Sending (help.klaviyo.com 115005078227)"
YOTPO_POLICY = "Yotpo review request email policies; research retention §3"
DERIVED = "shopsync default [derived], research retention §8"
MILESTONE_SRC = (
    "Smile.io VIP tier milestones (help.smile.io 4036321); tier progress email within 10-20 % "
    "of the next tier (yourorbit.team loyalty-program-lifecycle); 5th/10th order "
    "celebrations (sequenzy loyalty templates); research retention §8 (anniversary = first "
    "order date, yearly)"
)


def _decimal(value: Any) -> Any:
    # TOML has floats; a float threshold like 49.99 means the decimal 49.99, not its binary
    # neighbour, so go through its shortest repr.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


Dec = Annotated[Decimal, BeforeValidator(_decimal)]


def _f(default: Any, doc: str, source: str, **kw: Any) -> Any:
    return Field(default, description=doc, json_schema_extra={"source": source}, **kw)


class _Section(BaseModel):
    # ``model_min_customers`` and its kin: pydantic before 2.10 warns on any ``model_`` field
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())
