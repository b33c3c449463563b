from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shopsync
from shopsync.adapter import ENTRY_POINT_GROUP, Adapter, available_adapters
from shopsync.errors import AdapterNotFoundError, ConfigurationError
from tests.fakes import installed

FAKE_ADAPTER = '''
from shopsync.adapter import Page

class BigShopAdapter:
    """A third-party adapter, installed as its own distribution."""
    platform = "bigshop"

    def __init__(self, *, store_hash: str, token: str) -> None:
        self.shop = store_hash
        self._token = token

    def read_customers(self, updated_since=None):
        yield Page(records=[])

    def read_orders(self, updated_since=None):
        yield Page(records=[])

    def read_products(self, updated_since=None):
        yield Page(records=[])

    def close(self) -> None:
        pass

class NotAnAdapter:
    def __init__(self, **settings):
        pass
'''


@pytest.fixture
def fake_distribution(tmp_path: Path) -> Iterator[None]:
    """A distribution 'shopsync_bigshop' on sys.path, the way pip would leave it."""
    targets = {
        "bigshop": "shopsync_bigshop:BigShopAdapter",
        "broken": "shopsync_bigshop:NotAnAdapter",
        "missing": "shopsync_no_such_module:Adapter",
    }
    with installed(tmp_path, "shopsync_bigshop", FAKE_ADAPTER, {ENTRY_POINT_GROUP: targets}):
        yield


def test_builtin_adapters_are_registered() -> None:
    assert {"shopify", "woocommerce"} <= set(available_adapters())


def test_a_third_party_distribution_is_found(fake_distribution: None) -> None:
    assert "bigshop" in available_adapters()
    adapter = shopsync.connect("bigshop", store_hash="abc123", token="t0ken-secret")
    assert isinstance(adapter, Adapter)
    assert (adapter.platform, adapter.shop) == ("bigshop", "abc123")
    assert [list(page.records) for page in adapter.read_orders()] == [[]]


def test_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(AdapterNotFoundError) as info:
        shopsync.connect("magento")
    assert info.value.available == available_adapters()
    assert "shopify" in str(info.value) and "woocommerce" in str(info.value)
    assert not info.value.retryable


def test_wrong_settings_are_a_configuration_error(fake_distribution: None) -> None:
    with pytest.raises(ConfigurationError, match="does not accept these settings"):
        shopsync.connect("bigshop", store_hash="x")


def test_a_class_that_is_no_adapter_is_refused(fake_distribution: None) -> None:
    with pytest.raises(ConfigurationError, match="does not implement"):
        shopsync.connect("broken")


def test_an_adapter_that_cannot_be_imported_says_so(fake_distribution: None) -> None:
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        shopsync.connect("missing")
