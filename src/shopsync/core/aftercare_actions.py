"""The actions of the after-purchase service programs: the shipping notice and the education
series steps (:mod:`shopsync.core.shipping`, :mod:`shopsync.core.education`).

They live in their own module; the outbox stores each action's class path and loads it back
from there (``shopsync.core.aftercare_actions:ShippingNotice``).
"""

from __future__ import annotations

from typing import Literal

from shopsync.core.actions import Action

__all__ = ["EducationCrossSell", "EducationMessage", "ShippingNotice"]


class ShippingNotice(Action):
    """ "Thank you, your order has shipped", with the parcel's tracking link.

    Transactional: its primary purpose is to complete a purchase the customer made (CAN-SPAM,
    15 U.S.C. 7702(17)(A)(i) and (v): "to facilitate, complete, or confirm a commercial
    transaction", "to deliver goods"; ePrivacy art. 13 covers direct marketing only). It
    carries no recommendation and no offer, so that stays true.
    """

    kind: Literal["shipping_notice"] = "shipping_notice"
    marketing: bool = False
    order_id: str
    fulfillment_id: str
    carrier: str | None = None
    tracking_numbers: tuple[str, ...] = ()
    tracking_urls: tuple[str, ...] = ()
    """One link per tracking number when one is known (the platform's, else built from the
    carrier table); empty: the message says plainly that there is no tracking link."""
    link_source: Literal["platform", "carrier_table", "none"] = "none"


class EducationMessage(Action):
    """One step of an education series ("how to use", "care", "pairs well with").

    Marketing by default: it is sent to promote the shop's relationship and, in its last step,
    further products (BGH VI ZR 225/17: any message meant to promote sales, even indirectly,
    is advertising); ``messaging.marketing.education = false`` overrides it.
    """

    kind: Literal["education"] = "education"
    marketing: bool = True
    series: str
    step: int
    """1-based position in the series."""
    template: str
    """The step's email template (and its name in the idempotency key)."""
    order_id: str
    """The purchase the series follows."""
    product_ids: tuple[str, ...]


class EducationCrossSell(EducationMessage):
    """An education step with ``recommend = true`` ("pairs well with"): the planner attaches
    the "also bought" products of ``product_ids``; the teaching steps carry none."""

    recommendations: tuple[str, ...] = ()
