"""``shopsync tombstones``: list and lift what deletions and erasures keep out of the store.

A deletion webhook is only an id, signed without its topic, so a replay can delete (and keep
out) a record of another kind; an erasure may have named the wrong customer. Lifting a
tombstone lets the next full sync (``shopsync sync SHOP --full``) store what the platform
still has. Lifting an erasure's tombstone lets that person's data back in: do it only when
the erasure was not genuine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from shopsync import _cli_inputs as inputs
from shopsync.errors import ConfigurationError

if TYPE_CHECKING:  # SQLAlchemy loads when a command opens a store, not for --help
    from shopsync.store import Store

__all__ = ["tombstones_app"]

console = Console(highlight=False)
tombstones_app = typer.Typer(
    help="Records a deletion or an erasure keeps out of the store; lift a wrong one."
)
PLATFORM = typer.Option(None, help="The shop's platform, when two platforms share the name.")


def _platform(store: Store, shop: str, platform: str | None) -> str:
    found = sorted({p for p, s in store.shops() if s == shop and platform in (None, p)})
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{s} ({p})" for p, s in store.shops()) or "none"
    if not found:
        raise ConfigurationError(f"the store holds no shop {shop!r}; it holds: {known}")
    raise ConfigurationError(f"{shop!r} is a shop of {', '.join(found)}: pass --platform")


@tombstones_app.command("list")
def tombstones_list(
    ctx: typer.Context,
    shop: str = typer.Argument(..., help="The shop, as the store names it."),
    db: str = inputs.DB_OPTION,
    platform: str = PLATFORM,
) -> None:
    """Every tombstone of one shop."""
    store = inputs.open_store(inputs.options(ctx), db)
    try:
        marks = store.tombstones(_platform(store, shop, platform), shop)
    finally:
        store.close()
    table = Table()
    for column in ("resource", "id", "reason", "since"):
        table.add_column(column)
    for mark in marks:
        table.add_row(
            mark.resource, mark.record_id, mark.reason, mark.at.isoformat(timespec="seconds")
        )
    console.print(table if table.row_count else f"no tombstones for {shop}")


@tombstones_app.command("lift")
def tombstones_lift(
    ctx: typer.Context,
    shop: str = typer.Argument(..., help="The shop, as the store names it."),
    customer: list[str] = typer.Option(None, "--customer", help="A customer id."),
    order: list[str] = typer.Option(None, "--order", help="An order id."),
    product: list[str] = typer.Option(None, "--product", help="A product id."),
    everything: bool = typer.Option(False, "--all", help="Every tombstone of the shop."),
    db: str = inputs.DB_OPTION,
    platform: str = PLATFORM,
) -> None:
    """Lift tombstones; then run a full sync to bring back what the platform still has."""
    chosen = {"customers": customer or [], "orders": order or [], "products": product or []}
    if everything == any(chosen.values()):
        raise ConfigurationError(
            "say what to lift: --customer ID, --order ID or --product ID (repeatable), or --all"
        )
    store = inputs.open_store(inputs.options(ctx), db)
    try:
        name = _platform(store, shop, platform)
        if everything:
            lifted = store.lift_tombstones(name, shop)
        else:
            lifted = sum(
                store.lift_tombstones(name, shop, resource, ids)
                for resource, ids in chosen.items()
                if ids
            )
    finally:
        store.close()
    console.print(
        f"lifted {lifted} tombstone(s) of {shop}; run `shopsync sync {shop} --full` to bring "
        "back what the platform still has"
    )
