"""What the loyalty derivation reads from the store besides the order frames: the shop's
currency, birthdays not recorded yet, and the contact details that judge referrals."""

from __future__ import annotations

from typing import Any

import polars as pl

from shopsync._collector import collector_paused
from shopsync.core import loyalty as rules
from shopsync.core.loyalty import Person
from shopsync.core.policy import Policy
from shopsync.store import Store, ledger
from shopsync.store.shop_figures import main_currency

__all__ = ["new_birthdays", "people", "shop_currency"]


def shop_currency(store: Store, platform: str, shop: str, policy: Policy) -> str | None:
    """The policy's currency, else the one most of the shop's orders use (None: no orders)."""
    if policy.currency:
        return policy.currency
    return main_currency(store, store.shop_id(platform, shop))


def new_birthdays(
    shop_id: int, frame: pl.DataFrame, inputs: list[Any], as_of: int
) -> list[dict[str, Any]]:
    """New birthday inputs: a value not seen before, dated by the customer's updated_at."""
    latest: dict[str, str] = {}
    for row in inputs:
        if row.kind == "birthday":
            latest[row.customer_id] = row.data["birthday"]
    found = frame.filter(pl.col("birthday").is_not_null() & (pl.col("updated_at") <= as_of))
    if latest:
        seen = pl.DataFrame(
            {"id": list(latest), "_seen": list(latest.values())},
            schema={"id": pl.String, "_seen": pl.String},
        )
        found = found.join(seen, on="id", how="left", maintain_order="left").filter(
            pl.col("birthday").ne_missing(pl.col("_seen"))
        )
    # rules.source_key("birthday", id, birthday, updated_at), hashed by it when too long
    key = pl.concat_str(
        pl.lit("birthday"), "id", "birthday", pl.col("updated_at").cast(pl.String), separator=":"
    )
    found = found.select("id", "birthday", "updated_at", key.alias("_key"))
    keys = found["_key"].to_list()
    ids, birthdays, moments = (found[name].to_list() for name in ("id", "birthday", "updated_at"))
    with collector_paused():  # rows without cycles (a young collection walked them all)
        return [
            {
                "shop_id": shop_id,
                "key": key if len(key) <= 255 else rules.source_key("birthday", c, b, u),
                "kind": "birthday",
                "customer_id": c,
                "occurred_at": u,
                "data": {"birthday": b},
            }
            for key, c, b, u in zip(keys, ids, birthdays, moments, strict=True)
        ]


def people(store: Store, shop_id: int, ids: set[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    if not ids:
        return found
    for row in ledger.contact_rows(store, shop_id, sorted(ids)):
        name = rules.normalize_text(f"{row.first_name or ''} {row.last_name or ''}")
        address = None
        if row.default_address:
            a = row.default_address
            address = rules.normalize_text(
                " ".join(str(a.get(k) or "") for k in ("address1", "zip", "country_code"))
            )
        found[row.id] = Person(row.id, row.email, name, address)
    return found
