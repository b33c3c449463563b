"""Settings of the stored shop-level models (issue 19, item 3): ``[models]``."""

from __future__ import annotations

from shopsync.core.policy_fields import _f, _Section

__all__ = ["ModelSettings"]

_SRC = (
    "shopsync default (issue 19): once a day keeps every plan's models as of 00:00 UTC of "
    "its day, as before they were stored; 5 % of customers moves a fit or a median little"
)


class ModelSettings(_Section):
    """When the shop-level models (the MBG/NBD fit behind the win-back P(alive) trigger, the
    also-bought table, the learned usage periods, the one-time buyers' win-back delay) are
    rebuilt. Between rebuilds every plan uses the models stored with the shop, and the plan
    says which version it used (`shopsync plan` prints it; `Plan.models` in Python). A plan
    for an earlier day than the stored models builds its own and stores nothing."""

    refresh_every_days: int = _f(
        1,
        "Rebuild when the stored models describe the shop this many days or more before the "
        "plan's day (1: once a day, at the first plan of the day).",
        _SRC,
        ge=1,
    )
    refresh_after_changed_share: float = _f(
        0.05,
        "Rebuild sooner when the orders written since the build (new, changed, refunded, "
        "deleted) reach this share of the customers the models rest on (0: any change).",
        _SRC,
        ge=0,
        le=1,
    )
