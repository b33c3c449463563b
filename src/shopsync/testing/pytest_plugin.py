"""pytest fixtures for testing against emulated shops.

Registered through the ``pytest11`` entry point, so it is loaded in every pytest run of
every project that installs shopsync: it must stay import-light (the emulator framework
is imported only when a test asks for a shop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from shopsync.testing import EmulatedShop

__all__ = ["emulated_shop"]


@pytest.fixture
def emulated_shop() -> Iterator[Callable[..., EmulatedShop]]:
    """A factory of running emulated shops, all stopped at teardown::

    def test_sync(emulated_shop):
        shop = emulated_shop("shopify", customers=50, orders=200)
        adapter = shopsync.connect("shopify", **shop.settings)
    """
    from shopsync.testing import emulate

    with ExitStack() as stack:

        def start(platform: str, **kwargs: Any) -> EmulatedShop:
            return stack.enter_context(emulate(platform, **kwargs))

        yield start
