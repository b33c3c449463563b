"""NPS / CSAT answers: signed one-click links, the WSGI app that records them, the
follow-ups, and the figures (issue 22).

The survey email (planned by :mod:`shopsync.core.surveys`) shows every score as a link::

    {base_url}?token=<signed survey token>&score=<n>

The token is :func:`shopsync.outbox.signed_token` over the survey (platform, shop, customer,
order, scale, key), so a link names one survey of one customer and cannot be forged; the
score is the customer's own choice and is checked against the scale. :func:`survey_app`
serves the links:

- ``GET`` records the answer and thanks the customer, with a form for an optional comment;
  ``HEAD`` (link checkers) records nothing;
- ``POST`` adds the comment (one per survey; a ``score`` in the query records the answer
  first when the survey had none);
- a bad signature gets 403, a missing or out-of-range score 400, an unknown shop 404, a
  customer the store does not hold (erased, or never synced) 410: nothing is written;
- **the first answer stands.** A second click (another score, the same score, a mail
  scanner) gets 409 and changes nothing. The follow-ups are planned when the answer is
  recorded, in the same transaction, and an alert the shop's support already has cannot be
  taken back; NPS also counts each respondent once per survey. A customer who changes their
  mind says so in the comment, which support sees.

Follow-ups, written as outbox rows with the answer (exactly once, crash-safe; the next
``shopsync.apply`` or worker run delivers them, due at once):

- a **detractor** (NPS 0-6, CSAT 1-2) becomes a :class:`~shopsync.core.surveys.SurveyDetractor`
  for the ``support`` sinks only (a :class:`~shopsync.sinks.Webhook` to the help desk, with
  ``kinds={"survey_detractor"}``, or a :class:`~shopsync.sinks.support_email.SupportEmail`
  to the shop's address), never for a sink that reaches the customer; a later comment sends
  a second alert carrying it;
- a **promoter** (NPS 9-10, CSAT 5) is asked for a review of the order (the order's own
  ``review_request`` key, so the review program never asks again; when that request is
  queued already, a referral ask instead) or to refer a friend
  (:class:`~shopsync.core.surveys.SurveyReferral`), through the ``customer`` sinks.
  Both are marketing: the outbox checks consent when it delivers them.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

import polars as pl
from pydantic import SecretStr

from shopsync.core.actions import Action, ReviewRequest
from shopsync.core.survey_stats import Z95, SurveyScore, survey_scores
from shopsync.core.surveys import SCALES, SurveyDetractor, SurveyReferral, band
from shopsync.errors import SignatureError
from shopsync.models import Order
from shopsync.outbox import signed_token, verify_signed_token
from shopsync.outbox._queue import _row
from shopsync.outbox._unsubscribe import link_page
from shopsync.sinks._base import Sink
from shopsync.store import times
from shopsync.store.survey_rows import Answer, add_comment, record_answer, survey_answer_rows

if TYPE_CHECKING:
    from shopsync.core.policy import Policy
    from shopsync.store import Store

__all__ = [
    "SurveyLinks",
    "answer",
    "comment",
    "scores",
    "survey_app",
    "survey_token",
    "survey_url",
    "verify_survey_token",
]

log = logging.getLogger("shopsync.surveys")
Secret = str | bytes | SecretStr
MAX_COMMENT = 2000
"""Characters kept of a comment (a longer one is cut)."""
_MAX_BODY = 64 * 1024
_QUESTIONS = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied are you with your order?",
}


def survey_token(secret: Secret, action: Action) -> str:
    """The signed token of a survey request (seven fields: no other link kind has seven)."""
    order_id, scale = str(action.facts.get("order_id")), str(action.facts.get("scale"))
    order_id = str(getattr(action, "order_id", order_id))
    scale = str(getattr(action, "scale", scale))
    fields = [
        "survey",
        action.platform,
        action.shop,
        action.customer_id,
        order_id,
        scale,
        action.idempotency_key,
    ]
    return signed_token(secret, fields)


def verify_survey_token(secret: Secret, token: str) -> dict[str, str]:
    """The survey a token names; :class:`SignatureError` if it was not signed with
    ``secret``, is malformed or is another kind of link."""
    fields = verify_signed_token(secret, token, 7, "survey")
    kind, platform, shop, customer_id, order_id, scale, key = fields
    if kind != "survey" or scale not in SCALES:
        raise SignatureError("malformed survey token")
    return {
        "platform": platform,
        "shop": shop,
        "customer_id": customer_id,
        "order_id": order_id,
        "scale": scale,
        "survey_key": key,
    }


def survey_url(base_url: str, secret: Secret, action: Action, score: int) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}token={survey_token(secret, action)}&score={score}"


class SurveyLinks:
    """Template values for the survey email: pass as ``Email(extra_context=...)``.

    Gives ``survey_question`` and ``survey_scores`` (score, url) to ``survey_request``
    templates; other kinds get nothing. Without it a survey email fails to render and is
    parked with the template's message (never sent without its links).
    """

    def __init__(self, base_url: str, secret: Secret) -> None:
        self.base_url = base_url
        self._secret: Secret = secret if not isinstance(secret, str) else SecretStr(secret)
        signed_token(self._secret, ["check"])  # a short secret fails here, not in every email

    def __repr__(self) -> str:
        return f"SurveyLinks({self.base_url!r})"

    def __call__(self, action: Action) -> dict[str, Any]:
        if action.kind != "survey_request":
            return {}
        scale = str(getattr(action, "scale", "nps"))
        low, high = SCALES[scale]
        return {
            "survey_question": _QUESTIONS[scale],
            "survey_scores": [
                {"score": n, "url": survey_url(self.base_url, self._secret, action, n)}
                for n in range(low, high + 1)
            ],
        }


# -- recording ---------------------------------------------------------------------------------


def _rows_for(shop_id: int, actions: Sequence[Action], sinks: Sequence[Sink], at: int) -> list[Any]:
    return [_row(shop_id, a, s, at) for a in actions for s in sinks if s.accepts(a)]


def answer(
    store: Store,
    survey: Mapping[str, str],
    score: int,
    *,
    support: Sequence[Sink] = (),
    customer: Sequence[Sink] = (),
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, Answer | None]:
    """Record the answer of a verified survey (:func:`verify_survey_token`) and plan its
    follow-ups; returns the outcome (``recorded``, ``answered``, ``no_shop``, ``erased``) and
    the answer stored. Raises ValueError for a score outside the scale."""
    scale = survey["scale"]
    low, high = SCALES[scale]
    if not low <= score <= high:
        raise ValueError(f"score {score} is outside {low}-{high}")
    moment = now or dt.datetime.now(dt.timezone.utc)
    at = times.to_micros(moment)
    platform, shop, order_id = survey["platform"], survey["shop"], survey["order_id"]
    base = {
        "platform": platform,
        "shop": shop,
        "customer_id": survey["customer_id"],
        "due_at": moment,
    }
    kind = band(scale, score)
    ask = policy.surveys.promoter_followup if policy is not None else "review"
    products: tuple[str, ...] = ()
    if kind == "promoter" and ask == "review":
        order = store.get(Order, platform, shop, order_id)
        seen: list[str] = []
        for line in order.line_items if order is not None else ():
            if line.product_id and line.product_id not in seen:
                seen.append(line.product_id)
        products = tuple(seen[:3])

    def followups(shop_id: int, queued: Callable[[str], bool]) -> list[Any]:
        out: list[Any] = []
        facts = {"order_id": order_id, "scale": scale, "score": score}
        if kind == "detractor":
            alert = SurveyDetractor(
                **base,
                reason=f"scored {score} on {scale.upper()} for order {order_id}: a detractor",
                facts=facts,
                idempotency_key=f"survey_detractor:{shop}:{order_id}",
                order_id=order_id,
                scale=scale,
                score=score,
            )
            out += _rows_for(shop_id, [alert], support, at)
        elif kind == "promoter" and ask != "none":
            review_key = f"review_request:{shop}:{order_id}"
            follow: Action
            if ask == "review" and products and not queued(review_key):
                follow = ReviewRequest(
                    **base,
                    reason=f"scored {score} on {scale.upper()}: ask for a review of {order_id}",
                    facts={**facts, "product_ids": list(products), "after": "survey"},
                    idempotency_key=review_key,
                    order_id=order_id,
                    product_ids=products,
                )
            else:
                follow = SurveyReferral(
                    **base,
                    reason=f"scored {score} on {scale.upper()}: ask to refer a friend",
                    facts=facts,
                    idempotency_key=f"survey_referral:{shop}:{order_id}",
                    order_id=order_id,
                    score=score,
                )
            out += _rows_for(shop_id, [follow], customer, at)
        return out

    values = {
        "survey_key": survey["survey_key"],
        "customer_id": survey["customer_id"],
        "order_id": order_id,
        "scale": scale,
        "score": score,
    }
    return record_answer(store, platform, shop, values, followups, moment)


def comment(
    store: Store,
    survey: Mapping[str, str],
    text: str,
    *,
    support: Sequence[Sink] = (),
    now: dt.datetime | None = None,
) -> tuple[str, Answer | None]:
    """Add the one comment of an answered survey; a detractor's comment goes to support as a
    second alert. Outcomes: ``recorded``, ``commented`` (had one), ``unanswered``,
    ``no_shop``, ``erased``."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    at = times.to_micros(moment)
    text = text.strip()[:MAX_COMMENT]
    platform, shop, order_id = survey["platform"], survey["shop"], survey["order_id"]

    def followups(shop_id: int, stored: Answer) -> list[Any]:
        if band(stored.scale, stored.score) != "detractor":
            return []
        alert = SurveyDetractor(
            platform=platform,
            shop=shop,
            customer_id=survey["customer_id"],
            due_at=moment,
            reason=f"a detractor of order {order_id} commented",
            facts={"order_id": order_id, "scale": stored.scale, "score": stored.score},
            idempotency_key=f"survey_detractor:{shop}:{order_id}:comment",
            order_id=order_id,
            scale=stored.scale,
            score=stored.score,
            comment=text,
        )
        return _rows_for(shop_id, [alert], support, at)

    return add_comment(store, platform, shop, survey["survey_key"], text, followups, moment)


def scores(
    store: Store,
    platform: str,
    shop: str,
    scale: str = "nps",
    *,
    by: Literal["month", "quarter", "cohort"] = "month",
    z: float = Z95,
    until: dt.datetime | None = None,
) -> list[SurveyScore]:
    """The shop's NPS (or CSAT) per month, quarter or first-order cohort, with its interval
    (:mod:`shopsync.core.survey_stats`); ``until``: answers given by then only."""
    rows = survey_answer_rows(store, platform, shop)
    if until is not None:
        rows = [a for a in rows if a.answered_at <= until]
    frame = pl.DataFrame(
        {
            "answered_at": [times.to_micros(a.answered_at) for a in rows],
            "scale": [a.scale for a in rows],
            "score": [a.score for a in rows],
            "cohort": [a.cohort for a in rows],
        },
        schema={
            "answered_at": pl.Int64,
            "scale": pl.String,
            "score": pl.Int64,
            "cohort": pl.String,
        },
    )
    return survey_scores(frame, scale, by=by, z=z)


# -- the app -----------------------------------------------------------------------------------


def survey_app(
    store: Store,
    secret: Secret,
    *,
    support: Sequence[Sink] = (),
    customer: Sequence[Sink] = (),
    policy: Policy | None = None,
    path: str = "/survey",
    clock: Callable[[], dt.datetime] | None = None,
) -> Callable[..., Iterator[bytes]]:
    """A WSGI app serving the survey links (see the module's docstring). ``support``: the
    sinks a detractor's alert goes to; ``customer``: the sinks of a promoter's ask (by name:
    pass the same sinks to ``shopsync.apply`` to deliver them)."""
    verify_signed_token(secret, signed_token(secret, ["check"]), 1)  # a short secret fails now

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        def page(status: str, title: str, text: str, form: str = "") -> Iterator[bytes]:
            return link_page(start_response, status, title, text, form)

        if environ.get("PATH_INFO", "") != path:
            return page("404 Not Found", "Not found", "There is nothing here.")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return page("405 Method Not Allowed", "Not allowed", "Use the link in the email.")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        token = (query.get("token") or [""])[0]
        try:
            survey = verify_survey_token(secret, token)
        except SignatureError:
            return page("403 Forbidden", "Link not valid", "This survey link is not valid.")
        if method == "HEAD":
            return page("200 OK", "Survey", "")
        raw_score = (query.get("score") or [""])[0]
        score: int | None = None
        if raw_score or method == "GET":
            low, high = SCALES[survey["scale"]]
            if not (raw_score.isascii() and raw_score.isdigit()) or not (
                low <= int(raw_score) <= high
            ):
                return page(
                    "400 Bad Request", "Not a score", f"Choose a score from {low} to {high}."
                )
            score = int(raw_score)
        now = clock() if clock is not None else dt.datetime.now(dt.timezone.utc)
        form = _form(path, token)
        if score is not None:
            outcome, stored = answer(
                store, survey, score, support=support, customer=customer, policy=policy, now=now
            )
            if outcome == "no_shop":
                return page("404 Not Found", "Not found", "This survey is no longer open.")
            if outcome == "erased":
                return page("410 Gone", "Closed", "This survey is no longer open.")
            if outcome == "answered" and method == "GET":
                told = stored.score if stored is not None else "?"
                return page(
                    "409 Conflict",
                    "Already answered",
                    f"You answered {told} already: thank you. Anything to add?",
                    form if stored is not None and stored.comment is None else "",
                )
            if outcome == "recorded":
                log.info("survey of %s answered", survey["shop"])
        if method == "GET":
            return page("200 OK", "Thank you", "Thank you for your answer. Anything to add?", form)
        text = _read_comment(environ)
        if text is None:
            return page("400 Bad Request", "No comment", "Write a comment to send.")
        outcome, _ = comment(store, survey, text, support=support, now=now)
        statuses = {
            "recorded": ("200 OK", "Thank you", "Thank you, we read every comment."),
            "commented": ("409 Conflict", "Already sent", "You sent a comment already."),
            "unanswered": ("400 Bad Request", "No answer", "Choose a score first."),
            "no_shop": ("404 Not Found", "Not found", "This survey is no longer open."),
            "erased": ("410 Gone", "Closed", "This survey is no longer open."),
        }
        return page(*statuses[outcome])

    return app


def _form(path: str, token: str) -> str:
    action = html.escape(f"{path}?token={token}", quote=True)
    return (
        f'<form method="post" action="{action}">'
        f'<textarea name="comment" rows="5" cols="40" maxlength="{MAX_COMMENT}"></textarea>'
        '<br><button type="submit">Send</button></form>'
    )


def _read_comment(environ: dict[str, Any]) -> str | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > _MAX_BODY:
        return None
    body = environ["wsgi.input"].read(length)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    found = (parse_qs(text).get("comment") or [""])[0].strip()
    return found or None
