"""Configurations of emulated shops for worker tests."""

from __future__ import annotations

from typing import Any

from shopsync.config import Config, ShopConfig, StoreConfig, WorkerConfig


def shop_config(name: str, platform: str, settings: dict[str, Any], **extra: Any) -> ShopConfig:
    """A configured shop with the emulator's settings (literal credentials: a test shop)."""
    plain = {k: v for k, v in settings.items() if isinstance(v, (str, int, float, bool))}
    return ShopConfig(name=name, platform=platform, settings=plain, **extra)


def config(url: str, configured: list[ShopConfig], **worker: Any) -> Config:
    """The ``configured`` shops on the store ``url`` (worker settings as keywords)."""
    return Config(
        store=StoreConfig(url=url),
        shops={s.name: s for s in configured},
        worker=WorkerConfig(**{"job_ttl": 5.0, **worker}),
    )
