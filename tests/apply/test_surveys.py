"""NPS / CSAT answers through the survey WSGI app: signed links, bad input refused with 4xx
and nothing written, the first answer stands, the optional comment, the follow-ups planned
with the answer (exactly once), GDPR export and erasure (shopsync.surveys)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shopsync.core.surveys import SurveyRequest
from shopsync.errors import SignatureError
from shopsync.outbox import apply, list_outbox, signed_token, unsubscribe_token
from shopsync.store import Store
from shopsync.store.survey_rows import survey_answer_rows
from shopsync.surveys import SurveyLinks, survey_app, survey_token, verify_survey_token
from tests.apply.test_outbox import Recorder
from tests.core.frames_kit import T0, Shop

SECRET = "survey-secret-0123456789abcdef"
NOW = T0 + dt.timedelta(days=20)
LINES: list[tuple[str | None, Any, str]] = [("p1", 1, "20"), ("p2", 1, "50"), ("p1", 1, "20")]


def survey(customer: str = "c1", order: str = "o1", scale: str = "nps", **kw: Any) -> SurveyRequest:
    values: dict[str, Any] = {
        "platform": "shopify",
        "shop": "acme",
        "customer_id": customer,
        "due_at": NOW,
        "reason": "asked",
        "facts": {"order_id": order, "scale": scale},
        "idempotency_key": f"survey_request:acme:{order}",
        "order_id": order,
        "scale": scale,
    }
    values.update(kw)
    return SurveyRequest(**values)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, filled store file, copied for each test (migrating costs most)."""
    path = tmp_path_factory.mktemp("surveys") / "store.db"
    s = Store(f"sqlite:///{path}")
    shop = Shop().customer("c1").order("o1", "c1", T0, LINES).customer("c2")
    s.upsert(shop.order("o2", "c2", T0 + dt.timedelta(days=40)).models())
    s.close()
    return path


@pytest.fixture
def store(filled: Path, tmp_path: Path) -> Iterator[Store]:
    shutil.copy(filled, tmp_path / "store.db")
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


class Sinks:
    def __init__(self) -> None:
        self.support: Any = Recorder("support")  # a Sink (its guarantee is a plain str)
        self.customer: Any = Recorder("email")


@pytest.fixture
def sinks() -> Sinks:
    return Sinks()


def call(app: Any, method: str, query: str, body: bytes = b"", path: str = "/survey") -> Any:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    page = b"".join(app(environ, start_response)).decode()
    return seen["status"].split()[0], page, seen["headers"]


def make(store: Store, sinks: Sinks, **kw: Any) -> Any:
    return survey_app(
        store, SECRET, support=[sinks.support], customer=[sinks.customer], clock=lambda: NOW, **kw
    )


def click(app: Any, score: Any, request: SurveyRequest | None = None, method: str = "GET") -> Any:
    token = survey_token(SECRET, request or survey())
    return call(app, method, f"token={token}&score={score}")


def outbox(store: Store) -> list[tuple[str, str, str]]:
    return sorted((e.idempotency_key, e.sink, e.status) for e in list_outbox(store))


def test_tokens_name_one_survey_and_refuse_tampering_and_other_link_kinds() -> None:
    token = survey_token(SECRET, survey())
    assert verify_survey_token(SECRET, token) == {
        "platform": "shopify",
        "shop": "acme",
        "customer_id": "c1",
        "order_id": "o1",
        "scale": "nps",
        "survey_key": "survey_request:acme:o1",
    }
    other = survey_token(SECRET, survey("c2", "o2"))
    forged = token.split(".")[0] + "." + other.split(".")[1]
    unsubscribe = unsubscribe_token(SECRET, "shopify", "acme", "c1")
    seven = signed_token(SECRET, ["subscribe", "shopify", "acme", "c1", "o1", "nps", "k"])
    for bad in (forged, token + "x", "garbage", "", unsubscribe, seven):
        with pytest.raises(SignatureError):
            verify_survey_token(SECRET, bad)
    with pytest.raises(SignatureError):
        verify_survey_token("another-secret-0123456789abc", token)


def test_a_click_records_the_answer_and_offers_a_comment(store: Store, sinks: Sinks) -> None:
    status, page, headers = click(make(store, sinks), 8)
    assert status == "200" and '<textarea name="comment"' in page
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    [answer] = survey_answer_rows(store, "shopify", "acme")
    assert (answer.customer_id, answer.order_id, answer.scale, answer.score) == (
        "c1",
        "o1",
        "nps",
        8,
    )
    assert answer.cohort == "2024-03" and answer.answered_at == NOW
    assert outbox(store) == []  # a passive: no follow-up


@pytest.mark.parametrize("score", ["11", "-1", "", "7.5", "x", "٣", "99999999999999999999"])
def test_an_out_of_range_or_missing_score_is_400_and_writes_nothing(
    store: Store, sinks: Sinks, score: str
) -> None:
    token = survey_token(SECRET, survey())
    status, _, _ = call(make(store, sinks), "GET", f"token={token}&score={quote(score)}")
    assert status == "400"
    assert survey_answer_rows(store, "shopify", "acme") == [] and outbox(store) == []


def test_csat_takes_one_to_five(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    assert click(app, 0, survey(scale="csat"))[0] == "400"
    assert click(app, 6, survey(scale="csat"))[0] == "400"
    assert click(app, 5, survey(scale="csat"))[0] == "200"


def test_a_bad_signature_is_403_and_writes_nothing(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    forged = survey_token("not-the-secret-0123456789abc", survey())
    for token in (forged, "", "abc.def"):
        assert call(app, "GET", f"token={token}&score=0")[0] == "403"
        assert call(app, "POST", f"token={token}", b"comment=hi")[0] == "403"
    assert survey_answer_rows(store, "shopify", "acme") == [] and outbox(store) == []


def test_an_unknown_shop_is_404_and_is_not_created(store: Store, sinks: Sinks) -> None:
    status, _, _ = click(make(store, sinks), 0, survey(shop="other.example"))
    assert status == "404"
    assert store.shop_id("shopify", "other.example", create=False) == -1
    assert outbox(store) == []


def test_an_erased_or_unknown_customer_is_410_and_writes_nothing(
    store: Store, sinks: Sinks
) -> None:
    store.redact_customer("shopify", "acme", "c1")
    app = make(store, sinks)
    assert click(app, 0)[0] == "410"
    assert click(app, 0, survey("nobody", "o9"))[0] == "410"
    assert survey_answer_rows(store, "shopify", "acme") == [] and outbox(store) == []


def test_the_first_answer_stands_a_second_click_is_409(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    assert click(app, 3)[0] == "200"
    status, page, _ = click(app, 10)
    assert status == "409" and "You answered 3" in page
    assert click(app, 3)[0] == "409"
    [answer] = survey_answer_rows(store, "shopify", "acme")
    assert answer.score == 3
    assert outbox(store) == [("survey_detractor:acme:o1", "support", "pending")]


def test_head_records_nothing(store: Store, sinks: Sinks) -> None:
    assert click(make(store, sinks), 0, method="HEAD")[0] == "200"
    assert survey_answer_rows(store, "shopify", "acme") == []


def test_other_paths_and_methods(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    token = survey_token(SECRET, survey())
    assert call(app, "GET", f"token={token}&score=1", path="/elsewhere")[0] == "404"
    assert call(app, "DELETE", f"token={token}&score=1")[0] == "405"
    assert survey_answer_rows(store, "shopify", "acme") == []


def test_a_detractor_goes_to_support_only_once_and_is_delivered(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    assert click(app, 2)[0] == "200"
    assert outbox(store) == [("survey_detractor:acme:o1", "support", "pending")]
    report = apply(None, store, [sinks.support, sinks.customer], now=NOW)
    assert report.delivered == 1
    assert sinks.support.delivered == ["survey_detractor:acme:o1"]
    assert sinks.customer.delivered == []  # never to the customer
    apply(None, store, [sinks.support, sinks.customer], now=NOW)
    assert sinks.support.delivered == ["survey_detractor:acme:o1"]


def test_a_detractors_comment_is_a_second_alert_and_only_one_comment(
    store: Store, sinks: Sinks
) -> None:
    app = make(store, sinks)
    token = survey_token(SECRET, survey())
    assert call(app, "GET", f"token={token}&score=4")[0] == "200"
    status, _, _ = call(app, "POST", f"token={token}", b"comment=the+box+was+crushed")
    assert status == "200"
    assert call(app, "POST", f"token={token}", b"comment=again")[0] == "409"
    [answer] = survey_answer_rows(store, "shopify", "acme")
    assert answer.comment == "the box was crushed" and answer.commented_at == NOW
    assert [k for k, _, _ in outbox(store)] == [
        "survey_detractor:acme:o1",
        "survey_detractor:acme:o1:comment",
    ]
    [entry] = [e for e in list_outbox(store) if e.idempotency_key.endswith(":comment")]
    assert entry.action["comment"] == "the box was crushed"


def test_a_comment_needs_an_answer_and_text(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    token = survey_token(SECRET, survey())
    assert call(app, "POST", f"token={token}", b"comment=hello")[0] == "400"
    assert call(app, "GET", f"token={token}&score=9")[0] == "200"
    assert call(app, "POST", f"token={token}", b"comment=++")[0] == "400"
    assert call(app, "POST", f"token={token}", b"x" * 70_000)[0] == "400"
    # a comment form with a score answers and comments at once
    other = survey_token(SECRET, survey("c2", "o2"))
    assert call(app, "POST", f"token={other}&score=7", b"comment=fine")[0] == "200"
    assert {a.order_id: a.comment for a in survey_answer_rows(store, "shopify", "acme")} == {
        "o1": None,
        "o2": "fine",
    }


def test_a_promoter_is_asked_for_a_review_of_the_order_once(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    assert click(app, 10)[0] == "200"
    [entry] = list_outbox(store)
    assert (entry.idempotency_key, entry.sink) == ("review_request:acme:o1", "email")
    assert entry.action["product_ids"] == ["p1", "p2"]
    assert entry.kind == "review_request" and entry.marketing


def test_a_promoter_whose_review_request_is_queued_is_asked_to_refer(
    store: Store, sinks: Sinks
) -> None:
    from shopsync.core.actions import ReviewRequest

    queued = ReviewRequest(
        platform="shopify",
        shop="acme",
        customer_id="c1",
        due_at=NOW,
        reason="r",
        idempotency_key="review_request:acme:o1",
        order_id="o1",
        product_ids=("p1",),
    )
    apply([queued], store, [], now=NOW)
    apply([queued], store, [Recorder("email")], now=NOW - dt.timedelta(days=1))
    assert click(make(store, sinks), 9)[0] == "200"
    keys = [k for k, _, _ in outbox(store)]
    assert keys == ["review_request:acme:o1", "survey_referral:acme:o1"]


def test_promoter_followup_from_the_policy(store: Store, sinks: Sinks) -> None:
    from shopsync.core.policy import Policy

    none = Policy.from_dict({"surveys": {"promoter_followup": "none"}})
    assert click(make(store, sinks, policy=none), 10)[0] == "200"
    assert outbox(store) == []
    refer = Policy.from_dict({"surveys": {"promoter_followup": "referral"}})
    app = make(store, sinks, policy=refer)
    assert click(app, 5, survey("c2", "o2", scale="csat"))[0] == "200"
    assert outbox(store) == [("survey_referral:acme:o2", "email", "pending")]


def test_export_and_erasure_cover_answers(store: Store, sinks: Sinks) -> None:
    app = make(store, sinks)
    token = survey_token(SECRET, survey())
    call(app, "GET", f"token={token}&score=1")
    call(app, "POST", f"token={token}", b"comment=call+me+at+555")
    exported = store.export_customer("shopify", "acme", "c1")["survey_answers"]
    assert [(a["order_id"], a["score"], a["comment"]) for a in exported] == [
        ("o1", 1, "call me at 555")
    ]
    store.redact_customer("shopify", "acme", "c1")
    [kept] = survey_answer_rows(store, "shopify", "acme")
    assert (kept.customer_id, kept.comment, kept.score, kept.cohort) == (None, None, 1, "2024-03")
    assert store.export_customer("shopify", "acme", "c1")["survey_answers"] == []
    # and a click after the erasure changes nothing
    assert call(app, "POST", f"token={token}", b"comment=again")[0] == "410"


def test_survey_links_for_the_email_template() -> None:
    links = SurveyLinks("https://acme.example/survey", SECRET)
    values = links(survey())
    assert [s["score"] for s in values["survey_scores"]] == list(range(11))
    url = values["survey_scores"][7]["url"]
    assert url.startswith("https://acme.example/survey?token=") and url.endswith("&score=7")
    assert [s["score"] for s in links(survey(scale="csat"))["survey_scores"]] == [1, 2, 3, 4, 5]
    assert SECRET not in repr(links)
    from tests.apply.helpers import nudge

    assert links(nudge("1")) == {}


def test_a_short_secret_is_refused() -> None:
    from shopsync.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        survey_app(None, "short")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SurveyLinks("https://acme.example/survey", "short")


def test_scores_read_the_answers_of_the_store(store: Store, sinks: Sinks) -> None:
    from shopsync.surveys import scores

    app = make(store, sinks)
    click(app, 10)
    click(app, 3, survey("c2", "o2"))
    [month] = scores(store, "shopify", "acme")
    assert (month.group, month.n, month.value) == ("2024-03", 2, 0.0)
    cohorts = scores(store, "shopify", "acme", by="cohort")
    assert [(c.group, c.value) for c in cohorts] == [("2024-03", 100.0), ("2024-04", -100.0)]
    assert scores(store, "shopify", "acme", "csat") == []


class Exploding(Recorder):
    """A support sink that fails while the follow-up rows are being written."""

    def accepts(self, action: Any) -> bool:
        raise RuntimeError("the process died here")


def test_the_answer_and_its_follow_up_are_written_together_or_not_at_all(
    store: Store, sinks: Sinks
) -> None:
    from shopsync.surveys import answer

    verified = verify_survey_token(SECRET, survey_token(SECRET, survey()))
    with pytest.raises(RuntimeError):
        answer(store, verified, 1, support=[Exploding("support")], now=NOW)
    assert survey_answer_rows(store, "shopify", "acme") == [] and outbox(store) == []
    # the customer clicks again: recorded, with its alert, once
    assert click(make(store, sinks), 1)[0] == "200"
    assert outbox(store) == [("survey_detractor:acme:o1", "support", "pending")]


def test_two_clicks_at_once_record_one_answer_and_one_alert(store_url: str, sinks: Sinks) -> None:
    """Two processes' worth of clicks (threads with their own Store) on SQLite and PostgreSQL:
    the shop lock and the unique key leave one answer and one alert."""
    import threading

    from shopsync.surveys import answer

    setup = Store(store_url)
    setup.upsert(Shop().customer("c1").order("o1", "c1", T0, LINES).models())
    setup.close()
    verified = verify_survey_token(SECRET, survey_token(SECRET, survey()))
    outcomes: list[str] = []
    start = threading.Barrier(3)

    def one(score: int) -> None:
        mine = Store(store_url)
        try:
            start.wait()
            outcomes.append(answer(mine, verified, score, support=[sinks.support], now=NOW)[0])
        finally:
            mine.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in (0, 1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["answered", "answered", "recorded"]
    check = Store(store_url)
    [kept] = survey_answer_rows(check, "shopify", "acme")
    assert [(e.idempotency_key, e.sink) for e in list_outbox(check)] == [
        ("survey_detractor:acme:o1", "support")
    ]
    assert kept.score in (0, 1, 2)
    check.close()


def test_a_survey_email_without_its_links_is_parked_not_sent(store: Store) -> None:
    from shopsync.sinks import Brand, Email
    from tests.apply.helpers import smtp_server

    with smtp_server() as server:
        email = Email(
            "127.0.0.1",
            server.port,
            sender="shop@acme.example",
            brand=Brand(name="Acme", address="1 Main St"),
            security="none",
            unsubscribe_url="https://acme.example/unsubscribe",
            unsubscribe_secret=SECRET,
        )
        report = apply([survey()], store, [email], now=NOW)
        assert report.parked == 1 and server.messages == []
        [entry] = list_outbox(store)
        assert entry.status == "parked" and "survey_question" in (entry.reason or "")
        email.close()


def test_a_detractor_alert_by_email_goes_to_the_shop_not_the_customer(store: Store) -> None:
    from shopsync.sinks import Brand
    from shopsync.sinks.support_email import SupportEmail
    from tests.apply.helpers import smtp_server

    with smtp_server() as server:
        support = SupportEmail(
            "127.0.0.1",
            server.port,
            to="help@acme.example",
            sender="shop@acme.example",
            brand=Brand(name="Acme"),
            security="none",
        )
        app = survey_app(store, SECRET, support=[support], clock=lambda: NOW)
        token = survey_token(SECRET, survey())
        assert call(app, "GET", f"token={token}&score=1")[0] == "200"
        assert call(app, "POST", f"token={token}", b"comment=%3Cb%3Ebroken%3C%2Fb%3E")[0] == "200"
        report = apply(None, store, [support], now=NOW)
        assert report.delivered == 2 and report.parked == 0
        [first, second] = server.messages
        assert [m["To"] for m in server.handler.messages] == ["help@acme.example"] * 2
        assert server.handler.envelopes[0][1] == ["help@acme.example"]
        text = first.get_body(("plain",)).get_content()
        assert "answered the NPS survey with 1" in text and "c1@example.com" in text
        assert "Unhappy customer: 1 on NPS, order o1" in str(first["Subject"])
        assert "Comment: <b>broken</b>" in second.get_body(("plain",)).get_content()
        assert "&lt;b&gt;broken" in second.get_body(("html",)).get_content()
        assert "List-Unsubscribe" not in first
        # only detractor alerts: a survey or review request is not its kind
        assert not support.accepts(survey())
        support.close()
