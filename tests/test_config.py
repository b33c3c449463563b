"""shopsync.toml: shops, store and policy, with credentials only by reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from shopsync.check import AccessCheck
from shopsync.config import Config, load_config
from shopsync.errors import ConfigurationError
from shopsync.http import RetryPolicy

TOKEN = "shpat_0123456789abcdef-very-secret"

SHOPS = """
[shops.main]
platform = "shopify"
shop = "acme.myshopify.com"
access_token = "env:TEST_SHOPIFY_TOKEN"
retry = { attempts = 2, max_elapsed = 5 }

[shops.outlet]
platform = "woocommerce"
url = "https://outlet.example"
consumer_key = "secret:outlet.key"
consumer_secret = "secret:outlet_secret"
write_back = false
"""


def _write(folder: Path, text: str, name: str = "shopsync.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _secrets(folder: Path, mode: int = 0o600) -> Path:
    path = _write(
        folder, f'outlet_secret = "cs_{TOKEN}"\n[outlet]\nkey = "ck_public_part"\n', "s.toml"
    )
    path.chmod(mode)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_full_file_loads_and_resolves_references_only_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _secrets(tmp_path)
    (tmp_path / "retention.toml").write_text("currency = 'EUR'\n", encoding="utf-8")
    path = _write(
        tmp_path,
        'secrets_file = "s.toml"\npolicy = "retention.toml"\n'
        '[store]\nurl = "sqlite:///data/shop.db"\n' + SHOPS,
    )
    config = load_config(path)
    assert sorted(config.shops) == ["main", "outlet"]
    assert config.store_url() == f"sqlite:///{tmp_path / 'data' / 'shop.db'}"
    assert config.policy is not None and config.policy.currency == "EUR"
    assert config.shops["outlet"].write_back is False and config.shops["main"].write_back

    with pytest.raises(ConfigurationError, match=r"shops\.main\.access_token.*TEST_SHOPIFY_TOKEN"):
        config.shop("main").resolve()  # not set yet: an error only now, naming the variable
    monkeypatch.setenv("TEST_SHOPIFY_TOKEN", TOKEN)
    settings = config.shop("main").resolve()
    assert isinstance(settings["access_token"], SecretStr)
    assert settings["access_token"].get_secret_value() == TOKEN
    adapter = config.shop("main").connect()
    assert adapter.shop == "acme.myshopify.com"
    assert adapter.http.policy == RetryPolicy(attempts=2, max_elapsed=5.0)  # type: ignore[attr-defined]
    adapter.close()

    outlet = config.shop("outlet").resolve()
    assert outlet["consumer_secret"].get_secret_value() == f"cs_{TOKEN}"
    assert outlet["consumer_key"].get_secret_value() == "ck_public_part"  # dotted name
    woo = config.shop("outlet").connect()  # its consumer_key wants a plain str: unwrapped
    assert woo.shop == "outlet.example"
    woo.close()

    shown = " ".join([repr(config), str(config), repr(settings), repr(outlet), str(outlet)])
    assert TOKEN not in shown


def test_the_policy_can_be_a_table(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, "[policy]\ncurrency = 'GBP'\n[policy.winback]\nsteps = 2")
    )
    assert config.policy is not None and config.policy.winback.steps == 2
    assert config.shops == {} and config.store_url().endswith("shopsync.db")


def test_a_literal_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = SHOPS.replace('"env:TEST_SHOPIFY_TOKEN"', f'"{TOKEN}"')
    message = _error(_write(tmp_path, text))
    assert str(tmp_path / "shopsync.toml") in message
    assert "shops.main.access_token" in message and "env:MAIN_ACCESS_TOKEN" in message
    assert TOKEN not in message


def test_every_wrong_key_is_named_with_the_file(tmp_path: Path) -> None:
    text = (
        '[shops.main]\nplatform = "shopfy"\n'
        '[shops.other]\nplatform = "shopify"\nacess_token = "env:X"\nwrite_back = "maybe"\n'
        "[policy]\ncurrency = 'EURO'\nwinback = { stepz = 3 }\n"
        "[stor]\nurl = 'sqlite://'\n"
    )
    message = _error(_write(tmp_path, text))
    assert message.startswith(str(tmp_path / "shopsync.toml"))
    assert "shops.main.platform: no shopsync adapter named 'shopfy'" in message
    assert "installed: shopify, woocommerce" in message
    assert "shops.other.write_back:" in message
    assert "policy.currency: 'EURO' is not an ISO 4217 currency code" in message
    assert "policy.winback.stepz: not a known key" in message
    assert "stor: not a known key" in message


def test_adapter_settings_are_checked_against_the_adapter(tmp_path: Path) -> None:
    text = '[shops.main]\nplatform = "shopify"\nacess_token = "env:X"\n'
    message = _error(_write(tmp_path, text))
    assert "shops.main.acess_token: the shopify adapter has no setting 'acess_token'" in message
    assert "shops.main.shop: required by the shopify adapter" in message
    assert "shops.main.access_token: required" in message


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, '[store]\nurl = "sqlite:///x.db"\n[shops.main\n'))
    assert "is not valid TOML" in message and "line 3" in message


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    message = _error(tmp_path / "nope.toml")
    assert "does not exist" in message and "--config" in message


def test_a_store_password_must_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = _error(_write(tmp_path, "[store]\nurl = 'postgresql://me:hunter22@db/shop'\n"))
    assert "store.url" in message and "env:" in message and "hunter22" not in message
    path = _write(tmp_path, "[store]\nurl = 'env:TEST_STORE_URL'\n")
    monkeypatch.setenv("TEST_STORE_URL", "postgresql://me:hunter22@db/shop")
    assert load_config(path).store_url() == "postgresql://me:hunter22@db/shop"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_secrets_file_everyone_can_read_is_refused(tmp_path: Path) -> None:
    secrets = _secrets(tmp_path, 0o644)
    config = load_config(_write(tmp_path, 'secrets_file = "s.toml"\n' + SHOPS))
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        config.shop("outlet").resolve()
    assert TOKEN not in str(caught.value)
    secrets.chmod(0o640)  # group-readable is the owner's choice
    assert config.shop("outlet").resolve()["consumer_secret"].get_secret_value().endswith(TOKEN)


def test_missing_secrets_say_where_to_put_them(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, 'secrets_file = "missing.toml"\n' + SHOPS))
    with pytest.raises(ConfigurationError, match=r"missing\.toml does not exist"):
        config.shop("outlet").resolve()
    _secrets(tmp_path)
    text = SHOPS.replace("secret:outlet_secret", "secret:not_there")
    config = load_config(_write(tmp_path, 'secrets_file = "s.toml"\n' + text))
    with pytest.raises(ConfigurationError) as caught:
        config.shop("outlet").resolve()
    message = str(caught.value)
    assert "shops.outlet.consumer_secret" in message and "'not_there'" in message
    assert TOKEN not in message


def test_an_unknown_shop_lists_the_configured_ones() -> None:
    config = Config()
    with pytest.raises(ConfigurationError, match=r"no shop named 'main'.*configured: none"):
        config.shop("main")


def test_an_access_check_lists_what_is_missing_per_use() -> None:
    granted = frozenset({"read_orders", "read_customers", "write_customers"})
    result = AccessCheck(
        "main",
        "shopify",
        "acme.myshopify.com",
        granted=granted,
        needed={"sync": ("read_customers", "read_orders"), "apply": ("write_discounts",)},
        hint="grant them in the admin",
    )
    assert result.missing == {"apply": ("write_discounts",)} and not result.ok
    text = "\n".join(result.lines())
    assert "sync needs read_customers, read_orders: granted" in text
    assert "MISSING write_discounts" in text and "grant them in the admin" in text
    assert AccessCheck("main", "shopify", granted=granted, needed={"sync": ("read_orders",)}).ok
