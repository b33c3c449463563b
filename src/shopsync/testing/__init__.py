"""Emulated shops for tests, demos and benchmarks.

::

    from shopsync.testing import emulate

    with emulate("shopify", seed=7, customers=50, orders=200) as shop:
        adapter = shopsync.connect("shopify", **shop.settings)
        shop.state.refund_order(next(iter(shop.state.orders)))   # change it as a merchant would
        shop.faults.inject("429", count=2)                        # and make it misbehave

Platform emulators are plugins, found in the ``shopsync.emulators`` entry-point group, the
same way adapters are; this package holds the platform-neutral parts: the generator, the
inspectable state, the HTTP server, faults and webhook delivery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

from shopsync.errors import ConfigurationError
from shopsync.testing.behaviour import CDNOW, BuyingModel
from shopsync.testing.faults import FAULT_KINDS, Faults
from shopsync.testing.generator import generate_shop
from shopsync.testing.profile import GenerationProfile, profile_of
from shopsync.testing.server import EmulatorServer, PlatformEmulator, Request, Response
from shopsync.testing.shortcuts import add_customer, add_order
from shopsync.testing.simulation import Inbox, Simulation, Uplift
from shopsync.testing.state import (
    TOPICS,
    DeliveryAttempt,
    Event,
    ProductFacts,
    ShopState,
    Subscription,
)
from shopsync.testing.webhooks import Delivery, WebhookDispatcher

__all__ = [
    "CDNOW",
    "ENTRY_POINT_GROUP",
    "FAULT_KINDS",
    "TOPICS",
    "BuyingModel",
    "Delivery",
    "DeliveryAttempt",
    "EmulatedShop",
    "EmulatorServer",
    "Event",
    "Faults",
    "GenerationProfile",
    "Inbox",
    "PlatformEmulator",
    "ProductFacts",
    "Request",
    "Response",
    "ShopState",
    "Simulation",
    "Subscription",
    "Uplift",
    "WebhookDispatcher",
    "add_customer",
    "add_order",
    "available_emulators",
    "emulate",
    "generate_shop",
    "load_emulator",
]

ENTRY_POINT_GROUP = "shopsync.emulators"


def available_emulators() -> list[str]:
    """Names of the installed platform emulators."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_emulator(platform: str) -> type[PlatformEmulator]:
    """The emulator class registered as ``platform``."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == platform]
    if not found:
        listed = ", ".join(available_emulators()) or "none"
        raise ConfigurationError(
            f"no shopsync emulator named {platform!r} is installed (installed: {listed}); "
            f"emulators register in the {ENTRY_POINT_GROUP!r} entry-point group"
        )
    try:
        cls: type[PlatformEmulator] = found[0].load()
    except ImportError as exc:
        raise ConfigurationError(
            f"emulator {platform!r} is installed but cannot be imported: {exc}"
        ) from exc
    return cls


@dataclasses.dataclass
class EmulatedShop:
    """A running emulated shop: where it is, how to connect, and its insides."""

    url: str
    settings: dict[str, Any] = dataclasses.field(repr=False)
    """Keyword settings for ``shopsync.connect(platform, **settings)`` (secrets included)."""
    state: ShopState
    faults: Faults
    server: EmulatorServer
    emulator: PlatformEmulator | None = None
    dispatcher: WebhookDispatcher | None = None

    @property
    def platform(self) -> str:
        return self.state.platform

    def subscribe(
        self, address: str, topics: str | Iterable[str], secret: str | None = None
    ) -> list[Subscription]:
        """Register webhook subscriptions directly (no platform API call); ``topics`` are
        the platform's own topic strings."""
        names = [topics] if isinstance(topics, str) else list(topics)
        made = []
        with self.state.lock:
            for topic in names:
                sub = Subscription(self.state.new_id("webhooks"), topic, address, secret)
                self.state.webhooks.append(sub)
                made.append(sub)
        return made

    def add_customer(self, email: str | None = None, **options: Any) -> Any:
        """A customer in one line: :func:`shopsync.testing.add_customer`."""
        return add_customer(self.state, email, **options)

    def add_order(self, customer: Any, total: Any, **options: Any) -> Any:
        """An order in one line: :func:`shopsync.testing.add_order`."""
        return add_order(self.state, customer, total, **options)

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was delivered or given up; False on timeout."""
        return self.dispatcher.flush(timeout) if self.dispatcher else True


@contextmanager
def emulate(
    platform: str,
    *,
    seed: int = 1,
    customers: int = 500,
    orders: int | None = None,
    products: int = 60,
    currency: str = "USD",
    end: datetime | None = None,
    years: float = 3.0,
    buying: BuyingModel | None = None,
    faults: Faults | Mapping[str, Any] | None = None,
    webhook_backoff: float = 0.5,
    webhook_attempts: int = 5,
    port: int = 0,
    **options: Any,
) -> Iterator[EmulatedShop]:
    """Generate a shop, serve it with the platform's emulator, and stop it on exit.

    ``faults`` is a :class:`Faults` or its keyword arguments; ``options`` go to the
    emulator class; ``orders`` (default 2000), ``years`` and ``buying`` are as in
    :func:`generate_shop` (with a buying model, drive the shop with :class:`Simulation`).
    ``webhook_backoff`` (seconds, doubled per retry) and ``webhook_attempts`` tune delivery
    retries; ``port`` 0 picks a free one.
    """
    cls = load_emulator(platform)
    state = generate_shop(
        platform=platform,
        shop=cls.default_shop(seed),
        seed=seed,
        customers=customers,
        orders=orders,
        products=products,
        currency=currency,
        end=end,
        years=years,
        profile=profile_of(cls),
        buying=buying,
    )
    state.faults = faults if isinstance(faults, Faults) else Faults(**dict(faults or {}))
    emulator = cls(state, **options)
    server = EmulatorServer(emulator, faults=state.faults, port=port)
    dispatcher = WebhookDispatcher(
        state, emulator, backoff=webhook_backoff, max_attempts=webhook_attempts
    )
    server.start()
    try:
        dispatcher.start()
        yield EmulatedShop(
            url=server.url,
            settings=emulator.settings(server.url),
            state=state,
            faults=state.faults,
            server=server,
            emulator=emulator,
            dispatcher=dispatcher,
        )
    finally:
        dispatcher.stop()
        server.stop()
