"""WooCommerce consent: core has no field, so consent comes from a newsletter plugin's meta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shopsync_woocommerce.consent import DEFAULT_SOURCES, resolve_sources
from shopsync_woocommerce.mapping import customer_from_rest

import shopsync
from shopsync.errors import ConfigurationError, InvalidRecordError
from shopsync.models import ConsentState, Customer, OptInLevel
from shopsync.testing import emulate
from shopsync.testing.contract import read_all


def _customer(*meta: tuple[str, Any]) -> dict[str, Any]:
    return {
        "id": 7,
        "email": "ann@example.com",
        "date_created_gmt": "2024-01-02T03:04:05",
        "date_modified_gmt": "2024-02-02T03:04:05",
        "meta_data": [{"id": i, "key": k, "value": v} for i, (k, v) in enumerate(meta)],
    }


@pytest.mark.parametrize(
    ("value", "state"),
    [
        ("1", ConsentState.SUBSCRIBED),
        (1, ConsentState.SUBSCRIBED),
        (True, ConsentState.SUBSCRIBED),
        ("0", ConsentState.NOT_SUBSCRIBED),
        (0, ConsentState.NOT_SUBSCRIBED),
        ("unsubscribed", ConsentState.UNSUBSCRIBED),
        ("", ConsentState.UNKNOWN),
    ],
)
def test_mailchimp_for_woocommerce_meta(value: Any, state: ConsentState) -> None:
    """mc-woocommerce writes mailchimp_woocommerce_is_subscribed = (int) the checkbox, or
    'unsubscribed' from the profile page (handleStatus, mailchimp-user-profile.php)."""
    customer = customer_from_rest(
        _customer(("mailchimp_woocommerce_is_subscribed", value)), shop="s"
    )
    assert customer.consent.email.state is state
    expected = OptInLevel.SINGLE_OPT_IN if state is ConsentState.SUBSCRIBED else OptInLevel.UNKNOWN
    assert customer.consent.email.opt_in_level is expected
    assert customer.consent.email.updated_at is None  # the plugin keeps no date


def test_mailchimp_sms_and_constant_contact() -> None:
    customer = customer_from_rest(
        _customer(
            ("mailchimp_woocommerce_sms_subscribed", True),
            ("cc_woo_customer_agrees_to_marketing", "yes"),
        ),
        shop="s",
    )
    assert customer.consent.sms.state is ConsentState.SUBSCRIBED
    assert customer.consent.email.state is ConsentState.SUBSCRIBED
    no = customer_from_rest(_customer(("cc_woo_customer_agrees_to_marketing", "no")), shop="s")
    assert no.consent.email.state is ConsentState.NOT_SUBSCRIBED


def test_a_plain_store_customer_is_unknown() -> None:
    assert customer_from_rest(_customer(), shop="s").consent.email.state is ConsentState.UNKNOWN


def test_sources_are_explicit() -> None:
    raw = _customer(("mailchimp_woocommerce_is_subscribed", "1"), ("newsletter_ok", "yes"))
    none = customer_from_rest(raw, shop="s", consent_sources=resolve_sources("none"))
    assert none.consent.email.state is ConsentState.UNKNOWN
    own = customer_from_rest(raw, shop="s", consent_sources=("meta:newsletter_ok",))
    assert own.consent.email.state is ConsentState.SUBSCRIBED
    assert resolve_sources(None) == DEFAULT_SOURCES
    assert resolve_sources("mailchimp, meta:x") == ("mailchimp", "meta:x")
    with pytest.raises(ConfigurationError, match="unknown consent source 'mailpoet'"):
        resolve_sources(["mailpoet"])


def test_the_first_source_that_says_something_wins() -> None:
    raw = _customer(
        ("mailchimp_woocommerce_is_subscribed", "unsubscribed"),
        ("cc_woo_customer_agrees_to_marketing", "yes"),
    )
    got = customer_from_rest(raw, shop="s", consent_sources=("mailchimp", "constant_contact"))
    assert got.consent.email.state is ConsentState.UNSUBSCRIBED
    got = customer_from_rest(raw, shop="s", consent_sources=("constant_contact", "mailchimp"))
    assert got.consent.email.state is ConsentState.SUBSCRIBED


def test_an_unreadable_value_is_refused_with_its_key() -> None:
    raw = _customer(("mailchimp_woocommerce_is_subscribed", "maybe"))
    with pytest.raises(InvalidRecordError) as caught:
        customer_from_rest(raw, shop="s")
    assert caught.value.path == "meta_data.mailchimp_woocommerce_is_subscribed"


def _synced(**options: Any) -> list[Customer]:
    with emulate("woocommerce", seed=5, customers=40, orders=60, products=4, **options) as shop:
        adapter = shopsync.connect("woocommerce", **shop.settings)
        records, rejected, _ = read_all(adapter, "customers")
        expected = {c.id: shop.emulator.view(c) for c in shop.state.customers.values()}
    assert not rejected
    for got in records.values():
        assert got.consent == expected[got.id].consent
    return list(records.values())


def test_the_default_emulated_store_has_no_consent() -> None:
    """WooCommerce core: every customer is unknown, whatever the generator decided."""
    customers = _synced()
    assert {c.consent.email.state for c in customers} == {ConsentState.UNKNOWN}


def test_the_emulator_can_run_mailchimp() -> None:
    customers = _synced(consent_plugin="mailchimp")
    states = {c.consent.email.state for c in customers}
    assert ConsentState.SUBSCRIBED in states
    with (
        pytest.raises(ValueError, match="consent_plugin"),
        emulate("woocommerce", seed=5, customers=2, orders=2, consent_plugin="mailpoet"),
    ):
        pass


def test_check_says_loudly_when_nobody_can_be_contacted() -> None:
    with emulate("woocommerce", seed=5, customers=12, orders=12, products=2) as shop:
        adapter: Any = shopsync.connect("woocommerce", **shop.settings)
        notes = adapter.access_notes(frozenset({"read"}))
    assert len(notes) == 1 and notes[0].startswith("NO MARKETING CONSENT")
    assert "consent import" in notes[0]
    with emulate(
        "woocommerce", seed=5, customers=12, orders=12, products=2, consent_plugin="mailchimp"
    ) as shop:
        adapter = shopsync.connect("woocommerce", **shop.settings)
        notes = adapter.access_notes(frozenset({"read"}))
    assert "comes from plugin meta" in notes[0]


def test_the_cli_says_who_can_be_contacted_and_imports_a_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shopsync.cli import app

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    with emulate("woocommerce", seed=5, customers=20, orders=30, products=4) as shop:
        args = ["sync", "woocommerce", "--db", db, "-r", "customers"]
        args += [arg for k, v in shop.settings.items() for arg in ("-s", f"{k}={v}")]
        result = runner.invoke(app, args)
        emails = sorted(c.email for c in shop.state.customers.values() if c.email)
    assert result.exit_code == 0, result.output
    assert "NO MARKETING CONSENT: 0 of 20 customers" in " ".join(result.output.split())
    listing = tmp_path / "list.csv"
    listing.write_text(
        "email,state,date,source\n"
        f"{emails[0].upper()},subscribed,2025-01-01,newsletter form\n"
        "stranger@example.com,subscribed,2025-01-01,newsletter form\n"
    )
    result = runner.invoke(app, ["consent", "import", str(listing), "--db", db])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "1 applied" in out and "1 without a customer" in out
    assert "1 of 20 customers can be e-mailed (consent from import: newsletter form 1" in out
    planned = runner.invoke(app, ["plan", "--db", db])
    assert planned.exit_code == 0, planned.output
    assert "1 of 20 customers can be e-mailed" in " ".join(planned.output.split())


def test_the_report_says_who_can_be_contacted(tmp_path: Path) -> None:
    import datetime as dt

    from shopsync.report.figures import shop_figures

    store = shopsync.Store(f"sqlite:///{tmp_path / 'r.db'}")
    for plugin in (None, "mailchimp"):
        with emulate(
            "woocommerce", seed=5, customers=20, orders=40, products=4, consent_plugin=plugin
        ) as shop:
            shopsync.sync(shopsync.connect("woocommerce", **shop.settings), store)
            subscribed = sum(
                c.consent.email.state is ConsentState.SUBSCRIBED and bool(c.email)
                for c in shop.state.customers.values()
            )
            name = shop.state.shop
        at = dt.datetime.now(dt.timezone.utc)
        figures = shop_figures(store, "woocommerce", name, as_of=at)
        if plugin is None:
            assert figures.contactable == 0
            assert figures.consent_note.startswith("NO MARKETING CONSENT: 0 of 20")
        else:
            assert figures.contactable == subscribed > 0
            assert "consent from platform" in figures.consent_note
        store.remove_shop("woocommerce", name)
    store.close()
