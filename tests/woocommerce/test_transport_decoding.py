"""orjson decoding of WooCommerce responses (``_transport._decoded``): the result is what
``json`` (``requests``) reads, whether orjson is installed or not."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from shopsync_woocommerce import _transport


def _response(body: bytes, content_type: str) -> requests.Response:
    response = requests.Response()
    response._content = body
    response.status_code = 200
    response.headers["Content-Type"] = content_type
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    return response


def _both(body: bytes, content_type: str, patch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = _transport._decoded(_response(body, content_type), "GET orders")
    with patch.context() as p:
        p.setattr(_transport, "_orjson", None)
        plain = _transport._decoded(_response(body, content_type), "GET orders")
    return fast, plain


@pytest.mark.skipif(_transport._orjson is None, reason="the fast extra is not installed")
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=UTF-8",
        "application/json",
        "application/json; charset=ISO-8859-1",  # a WordPress whose blog_charset is Latin-1
        "text/html",  # a host or cache that relabels the body (requests reads it as Latin-1)
    ],
)
def test_a_body_decodes_the_same_with_or_without_orjson(
    content_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '[{"id": 7, "billing": {"first_name": "João"}}]'.encode()
    fast, plain = _both(body, content_type, monkeypatch)
    assert repr(fast) == repr(plain)
