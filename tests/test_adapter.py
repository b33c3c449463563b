from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shopsync
from shopsync.adapter import (
    CAPABILITIES,
    ENTRY_POINT_GROUP,
    Adapter,
    CapabilityError,
    DeletionReader,
    TagWriter,
    adapter_class,
    available_adapters,
    capabilities,
    capability,
    check_capabilities,
)
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


# ----------------------------------------------------------------------------- capabilities

DECLARING = """
from shopsync.adapter import Adapter, CustomerFieldWriter, DeletionReader, Page, TagWriter

class _Reads:
    platform = "declaring"

    def __init__(self, **settings) -> None:
        self.shop = "declaring-shop"

    def read_customers(self, updated_since=None):
        yield Page(records=[])

    def read_orders(self, updated_since=None):
        yield Page(records=[])

    def read_products(self, updated_since=None):
        yield Page(records=[])

    def close(self) -> None:
        pass

class Complete(_Reads, TagWriter, DeletionReader):
    def add_customer_tags(self, customer_id, tags):
        pass

    def remove_customer_tags(self, customer_id, tags):
        pass

    def read_deletions(self, updated_since=None):
        return iter(())

class HalfTags(_Reads, TagWriter):
    def add_customer_tags(self, customer_id, tags):
        pass

class NoFields(_Reads, CustomerFieldWriter):
    pass

class FieldsNotCallable(_Reads, CustomerFieldWriter):
    set_customer_fields = "no"

class Undeclared(_Reads):
    def add_customer_tags(self, customer_id, tags):
        pass

    def remove_customer_tags(self, customer_id, tags):
        pass
"""


@pytest.fixture
def declaring(tmp_path: Path) -> Iterator[None]:
    names = ("Complete", "HalfTags", "NoFields", "FieldsNotCallable", "Undeclared")
    targets = {name.lower(): f"shopsync_declaring:{name}" for name in names}
    with installed(tmp_path, "shopsync_declaring", DECLARING, {ENTRY_POINT_GROUP: targets}):
        yield


def test_declared_capabilities_are_listed(declaring: None) -> None:
    adapter = shopsync.connect("complete")
    assert capabilities(adapter) == frozenset({"read", "tags", "deletions"})
    assert capabilities(type(adapter)) == capabilities(adapter)
    assert isinstance(adapter, TagWriter) and isinstance(adapter, DeletionReader)


def test_a_declared_method_that_is_missing_fails_at_connect_with_its_name(
    declaring: None,
) -> None:
    with pytest.raises(CapabilityError, match="remove_customer_tags") as info:
        shopsync.connect("halftags")
    assert "TagWriter" in str(info.value) and "halftags" in str(info.value)
    assert info.value.missing == ("remove_customer_tags",)
    assert isinstance(info.value, ConfigurationError) and not info.value.retryable
    with pytest.raises(CapabilityError, match="set_customer_fields"):
        shopsync.connect("nofields")
    with pytest.raises(CapabilityError, match="set_customer_fields"):
        shopsync.connect("fieldsnotcallable")


def test_methods_without_the_declaration_are_not_a_capability(declaring: None) -> None:
    adapter = shopsync.connect("undeclared")
    assert capabilities(adapter) == frozenset({"read"})
    assert capability(adapter, "tags") is None


def test_a_reader_missing_a_method_is_refused_with_its_name(fake_distribution: None) -> None:
    with pytest.raises(ConfigurationError, match="read_customers"):
        shopsync.connect("broken")


def test_check_capabilities_is_the_same_check_without_connect(declaring: None) -> None:
    from shopsync_declaring import HalfTags  # type: ignore[import-not-found]

    with pytest.raises(CapabilityError, match="remove_customer_tags"):
        check_capabilities(HalfTags())


@pytest.mark.parametrize("name", ["shopify", "woocommerce"])
def test_builtin_adapters_declare_one_vocabulary(name: str) -> None:
    cls = adapter_class(name)
    assert capabilities(cls) == frozenset(CAPABILITIES)
    check_capabilities(cls)  # raises CapabilityError naming a missing member
