from __future__ import annotations

import inspect

import pytest

from shopsync import errors
from shopsync.errors import (
    AuthenticationError,
    InvalidRecordError,
    PlatformError,
    RateLimitedError,
    ServerError,
    ShopSyncError,
    TransportError,
)
from shopsync.http import redact, redact_url


def test_every_public_error_derives_from_the_root() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if obj.__module__ == errors.__name__
    ]
    assert set(errors.__all__) == {cls.__name__ for cls in classes}
    assert all(issubclass(cls, ShopSyncError) for cls in classes)


def test_the_tree_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RateLimitedError("slow down", retry_after=2.0, status=429), True),
        (ServerError("boom", status=503), True),
        (TransportError("reset"), True),
        (AuthenticationError("no", status=401), False),
        (errors.NotFoundError("gone", status=404), False),
        (InvalidRecordError("bad total", raw={"total": "x"}, path="total"), False),
        (errors.ConfigurationError("bad"), False),
    ],
)
def test_each_error_says_whether_a_retry_can_help(error: ShopSyncError, retryable: bool) -> None:
    assert error.retryable is retryable


def test_platform_errors_carry_status_and_request_id() -> None:
    error = PlatformError("refused", status=422, request_id="req-1", platform="shopify")
    assert (error.status, error.request_id, error.platform) == (422, "req-1", "shopify")
    assert "status=422" in str(error) and "req-1" in str(error)
    assert RateLimitedError("x", retry_after=1.5).retry_after == 1.5


def test_invalid_record_names_the_field() -> None:
    error = InvalidRecordError("not a decimal", raw={"total": "abc"}, path="line_items.0.price")
    assert str(error) == "line_items.0.price: not a decimal"
    assert error.raw == {"total": "abc"}


def test_a_reason_quoting_a_huge_field_is_cut_and_counted() -> None:
    # A 500 kB email echoed whole into the quarantine reason and the log (hostile input).
    reason = f"{'é' * 500_000!r} is not an email address"
    error = InvalidRecordError(reason, raw={"email": "é" * 500_000}, path="email")
    assert len(error.reason) < errors.REASON_LIMIT + 40
    assert error.reason.endswith(f"… ({len(reason):,} characters)")
    assert str(error).startswith("email: 'éé")
    assert InvalidRecordError("short").reason == "short"


def test_urls_lose_their_credentials() -> None:
    url = (
        "http://ck_user:cs_pass@127.0.0.1:8080/wp-json/wc/v3/orders?page=2&consumer_key=ck_live"
        "&consumer_secret=cs_live&oauth_signature=sigvalue%3D&access_token=shpat_1"
    )
    safe = redact_url(url)
    for secret in ("ck_user", "cs_pass", "ck_live", "cs_live", "sigvalue", "shpat_1"):
        assert secret not in safe
    assert "page=2" in safe and "127.0.0.1:8080/wp-json/wc/v3/orders" in safe


def test_redact_replaces_every_secret() -> None:
    assert (
        redact("token=shpat_abcdef and again shpat_abcdef", ["shpat_abcdef", None])
        == "token=*** and again ***"
    )
