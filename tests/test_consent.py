"""Consent from outside the platform: the store keeps it, a list import, the double opt-in."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from shopsync.consent import (
    import_consent,
    subscribe_app,
    subscribe_token,
    subscribe_url,
    verify_subscribe_token,
)
from shopsync.errors import ConfigurationError, SignatureError
from shopsync.models import Consent, ConsentState, Customer, MarketingConsent, OptInLevel
from shopsync.outbox import record_unsubscribe, unsubscribe_token
from shopsync.store import Store

WOO = "woocommerce"
SHOP = "shop.example"
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
SECRET = "s" * 32
URLS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def person(cid: str, email: str, state: ConsentState = ConsentState.UNKNOWN, **kw: Any) -> Customer:
    return Customer(
        platform=WOO,
        shop=SHOP,
        id=cid,
        email=email,
        created_at=T0,
        updated_at=kw.pop("updated_at", T0),
        consent=Consent(
            email=MarketingConsent(state=state, updated_at=kw.pop("consent_at", None), **kw)
        ),
    )


@pytest.fixture(params=URLS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        s = Store(request.getfixturevalue("postgres_url"))  # a schema of its own
    s.upsert([person("1", "Ann@Example.com"), person("2", "bob@example.com"), person("3", "")])
    yield s
    s.close()


def email_state(store: Store, cid: str) -> MarketingConsent:
    found = store.get(Customer, WOO, SHOP, cid)
    assert found is not None
    return found.consent.email


def test_a_record_silent_about_consent_keeps_what_the_store_holds(store: Store) -> None:
    """WooCommerce core and Shopify's 2025+ customer webhooks carry no consent: unknown."""
    store.upsert([person("1", "ann@example.com", ConsentState.SUBSCRIBED, updated_at=T0)])
    later = T0 + dt.timedelta(days=1)
    store.upsert([person("1", "ann@example.com", updated_at=later)])
    assert email_state(store, "1").state is ConsentState.SUBSCRIBED
    assert [s for _, _, s in store.consent_history(WOO, SHOP, "1") if s != "unknown"] == [
        "subscribed"
    ]
    # a record that does say something replaces it
    gone = later + dt.timedelta(days=1)
    store.upsert([person("1", "ann@example.com", ConsentState.UNSUBSCRIBED, updated_at=gone)])
    assert email_state(store, "1").state is ConsentState.UNSUBSCRIBED


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "consent.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_a_consent_list(store: Store, tmp_path: Path) -> None:
    csv = write(
        tmp_path,
        "email,state,date,source\n"
        "ann@example.com,subscribed,2025-02-01T10:00:00Z,MailPoet export\n"
        "nobody@example.com,subscribed,2025-02-01,MailPoet export\n"
        "bob@example.com,maybe,2025-02-01,MailPoet export\n"
        "bob@example.com,subscribed,2025-02-01 10:00,MailPoet export\n",
    )
    report = import_consent(store, WOO, SHOP, csv)
    assert (report.rows, report.applied, report.unmatched) == (4, 1, 1)
    assert [line for line, _ in report.errors] == [4, 5]
    assert "not a consent state" in report.errors[0][1]
    assert "no UTC offset" in report.errors[1][1]
    ann = email_state(store, "1")
    assert ann.state is ConsentState.SUBSCRIBED
    assert ann.updated_at == dt.datetime(2025, 2, 1, 10, tzinfo=dt.timezone.utc)
    counts = store.consent_counts(WOO, SHOP)
    assert (counts.contactable, counts.no_email) == (1, 1)
    assert counts.by_source == {"import: MailPoet export": 1}
    again = import_consent(store, WOO, SHOP, csv)
    assert (again.applied, again.unchanged) == (0, 1)
    # the next sync of a record that says nothing about consent keeps the import
    store.upsert([person("1", "ann@example.com", updated_at=T0 + dt.timedelta(days=3))])
    assert email_state(store, "1").state is ConsentState.SUBSCRIBED


def test_an_import_never_overrides_a_later_consent(store: Store, tmp_path: Path) -> None:
    gone = T0 + dt.timedelta(days=2)
    store.upsert(
        [
            person(
                "2",
                "bob@example.com",
                ConsentState.UNSUBSCRIBED,
                updated_at=gone,
                consent_at=gone,
            )
        ]
    )
    csv = write(tmp_path, "email,state,date\nbob@example.com,subscribed,2025-01-01\n")
    report = import_consent(store, WOO, SHOP, csv)
    assert (report.applied, report.older) == (0, 1)
    assert email_state(store, "2").state is ConsentState.UNSUBSCRIBED


def test_a_list_without_the_columns_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="email and state"):
        import_consent(store, WOO, SHOP, write(tmp_path, "mail,status\n"))
    with pytest.raises(ConfigurationError, match="cannot read"):
        import_consent(store, WOO, SHOP, tmp_path / "missing.csv")


def call(app: Any, method: str, query: str) -> tuple[str, str]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/subscribe",
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(b""),
    }
    out = b"".join(app(environ, start_response)).decode()
    return seen["status"], out


def test_double_opt_in_confirms_on_post_only(store: Store) -> None:
    record_unsubscribe(store, WOO, SHOP, "2", now=T0)
    asked = T0 + dt.timedelta(minutes=5)  # asked to subscribe again after unsubscribing
    url = subscribe_url("https://shop.example/subscribe", SECRET, WOO, SHOP, "2", issued_at=asked)
    query = url.split("?", 1)[1]
    clicked = T0 + dt.timedelta(hours=2)
    app = subscribe_app(store, SECRET, clock=lambda: clicked)
    status, page = call(app, "GET", query)
    assert status == "200 OK" and "<form" in page  # a mail scanner's GET changes nothing
    assert email_state(store, "2").state is ConsentState.UNKNOWN
    status, _ = call(app, "POST", query)
    assert status == "200 OK"
    bob = email_state(store, "2")
    assert (bob.state, bob.opt_in_level, bob.updated_at) == (
        ConsentState.SUBSCRIBED,
        OptInLevel.CONFIRMED_OPT_IN,
        clicked,
    )
    counts = store.consent_counts(WOO, SHOP)
    assert counts.by_source == {"double opt-in": 1}  # the earlier unsubscribe was lifted
    assert counts.suppressed == 0


def test_a_link_sent_before_an_unsubscribe_cannot_undo_it(store: Store) -> None:
    token = subscribe_token(SECRET, WOO, SHOP, "1", issued_at=T0)
    record_unsubscribe(store, WOO, SHOP, "1", now=T0 + dt.timedelta(hours=1))
    app = subscribe_app(store, SECRET, clock=lambda: T0 + dt.timedelta(hours=2))
    assert call(app, "POST", f"token={token}")[0] == "409 Conflict"
    assert email_state(store, "1").state is ConsentState.UNKNOWN
    assert store.consent_counts(WOO, SHOP).suppressed == 1


def test_double_opt_in_refuses_forged_expired_and_unsubscribe_tokens(store: Store) -> None:
    app = subscribe_app(store, SECRET, clock=lambda: T0 + dt.timedelta(days=8))
    old = subscribe_token(SECRET, WOO, SHOP, "1", issued_at=T0)
    assert call(app, "POST", f"token={old}")[0] == "410 Gone"
    with pytest.raises(SignatureError, match="expired"):
        verify_subscribe_token(SECRET, old, now=T0 - dt.timedelta(hours=1))  # from the future
    fresh = subscribe_token(SECRET, WOO, SHOP, "1", issued_at=T0 + dt.timedelta(days=8))
    assert call(app, "POST", f"token={fresh[:-2]}xx")[0] == "403 Forbidden"
    other = subscribe_token("t" * 32, WOO, SHOP, "1", issued_at=T0 + dt.timedelta(days=8))
    assert call(app, "POST", f"token={other}")[0] == "403 Forbidden"
    unsubscribe = unsubscribe_token(SECRET, WOO, SHOP, "1")
    assert call(app, "POST", f"token={unsubscribe}")[0] == "403 Forbidden"
    unknown = subscribe_token(SECRET, WOO, SHOP, "99", issued_at=T0 + dt.timedelta(days=8))
    assert call(app, "POST", f"token={unknown}")[0] == "404 Not Found"
    assert email_state(store, "1").state is ConsentState.UNKNOWN
