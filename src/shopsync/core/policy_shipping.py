"""The policy sections of the after-purchase service messages: the shipping notice with its
tracking link (``[shipping]``) and the education series by product type or tag
(``[education]``). The programs are :mod:`shopsync.core.shipping` and
:mod:`shopsync.core.education`; docs/programs.md says why one is transactional and the other
marketing.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from shopsync.core.policy_fields import DERIVED, _f, _Section

__all__ = ["EducationSeries", "EducationSettings", "EducationStep", "ShippingSettings"]

SHOPIFY_NOTIFY = (
    "Shopify sends its own Shipping confirmation when a fulfilment is created with the "
    "customer notified (help.shopify.com/en/manual/fulfillment: 'send your customers "
    "fulfillment notifications when you mark an order as fulfilled'; the admin's default); "
    "WooCommerce sends its Completed order email, which the Shipment Tracking extension "
    "extends with the tracking link"
)
_TEMPLATE = r"^[a-z][a-z0-9_]{0,63}$"
_SERIES = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class ShippingSettings(_Section):
    """The "thank you, it has shipped" message with the parcel's tracking link."""

    enabled: bool = _f(True, "Plan shipping notices (see `platform_sends`).", DERIVED)
    platform_sends: dict[str, bool] = _f(
        {"shopify": True, "woocommerce": True},
        "Platforms that already send the customer their own shipping confirmation: no "
        "notice is planned for their shops (so by default none at all). Set "
        "`platform_sends.shopify = false` when the shop turned Shopify's Shipping "
        "confirmation off. A platform not listed counts as not sending one.",
        SHOPIFY_NOTIFY,
    )
    delay_hours: int = _f(
        0, "Hours after the shipment before the notice is due.", DERIVED, ge=0, le=720
    )
    tracking_wait_hours: int = _f(
        24,
        "A shipment without a tracking link waits this long for one (merchants often add "
        "the number after marking the order fulfilled; the next sync brings it).",
        DERIVED,
        ge=0,
        le=720,
    )
    without_link: Literal["send", "skip"] = _f(
        "send",
        "After that wait, `send` the thank-you saying plainly that the carrier gave no "
        "tracking link, or `skip` the notice.",
        f"{DERIVED}: the customer still learns the order left the warehouse",
    )
    max_late_hours: int = _f(
        72,
        "A notice not sent within this many hours of its due date is dropped, so the first "
        "plan on an old store does not announce old shipments.",
        DERIVED,
        ge=0,
    )
    carrier_urls: dict[str, str] = _f(
        {},
        "Tracking URL templates of your own, by carrier name (`{number}` stands for the "
        'tracking number), e.g. `"Acme Freight" = "https://track.acme.example/{number}"`; '
        "they win over the built-in table (docs/programs.md, Shipping notice).",
        DERIVED,
    )

    @field_validator("carrier_urls")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            parts = urlsplit(template.replace("{number}", "N"))
            if "{number}" not in template or parts.scheme != "https" or not parts.netloc:
                raise ValueError(
                    f"carrier_urls[{name!r}] must be an https URL containing {{number}}"
                )
        return value


class EducationStep(_Section):
    """One message of an education series."""

    days: int = _f(
        ..., "Days after the purchase was received (delivery, else shipment).", DERIVED, ge=0
    )
    template: str = _f(
        ...,
        "Email template name (`email/<template>.txt` and `.html`; a missing one falls back "
        "to `email/education.*`); also names the step in its idempotency key.",
        DERIVED,
        pattern=_TEMPLATE,
    )
    recommend: bool = _f(
        False,
        'Attach "also bought" products to this step (the pairs-well-with step); the other '
        "steps teach and do not sell.",
        DERIVED,
    )


DEFAULT_STEPS = (
    EducationStep(days=3, template="education_how_to_use"),
    EducationStep(days=14, template="education_care"),
    EducationStep(days=30, template="education_pairs_well_with", recommend=True),
)


class EducationSeries(_Section):
    """A series for the products of some types or tags."""

    name: str = _f(
        ..., "Names the series (in keys: never rename a live one).", DERIVED, pattern=_SERIES
    )
    product_types: tuple[str, ...] = _f(
        (), "Product types whose purchase starts the series (case-insensitive).", DERIVED
    )
    tags: tuple[str, ...] = _f(
        (), "Product tags whose purchase starts the series (case-insensitive).", DERIVED
    )
    steps: tuple[EducationStep, ...] = _f(
        DEFAULT_STEPS,
        "The messages, in day order: by default day 3 how to use, day 14 care, day 30 "
        "pairs well with.",
        "[3rd] post-purchase flow practice: how to use on day 3 (everestx.com Klaviyo "
        "post-purchase tutorial), care or use 3-5 days after delivery (runplaybook.io), "
        "'what pairs well' cross-sell on day 20-28 (sorted.agency flow template); day 14 "
        "and 30: [derived]",
    )

    @model_validator(mode="after")
    def _valid(self) -> EducationSeries:
        if not self.product_types and not self.tags:
            raise ValueError(f"series {self.name!r} needs product_types or tags")
        if not self.steps:
            raise ValueError(f"series {self.name!r} needs at least one step")
        days = [s.days for s in self.steps]
        if days != sorted(set(days)):
            raise ValueError(f"series {self.name!r}: step days must strictly increase")
        names = [s.template for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"series {self.name!r}: each step needs its own template")
        return self


class EducationSettings(_Section):
    """Teach customers to get more out of what they bought: a short series per product type
    or tag, once per customer and series."""

    enabled: bool = _f(True, "Plan education series (none is configured by default).", DERIVED)
    series: tuple[EducationSeries, ...] = _f(
        (), "The series (`[[education.series]]` name, product_types, tags, steps).", DERIVED
    )
    max_late_days: int = _f(
        7,
        "A step not sent within this many days of its due date is dropped (only the "
        "current step of a series is ever planned).",
        DERIVED,
        ge=0,
    )

    @model_validator(mode="after")
    def _unique(self) -> EducationSettings:
        names = [s.name for s in self.series]
        if len(set(names)) != len(names):
            raise ValueError("education series names must be unique")
        return self
