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


def test_orjson_decodes_a_page_with_the_collector_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page is thousands of containers in no cycle: collections during it were wasted."""
    import gc
    import json

    seen: list[bool] = []

    class Recording:
        @staticmethod
        def loads(raw: bytes) -> Any:
            seen.append(gc.isenabled())
            return json.loads(raw)

    was = gc.isenabled()
    gc.enable()
    try:
        monkeypatch.setattr(_transport, "_orjson", Recording)
        body = b'[{"id": 1}]'
        assert _transport._decoded(_response(body, "application/json"), "GET orders") == [{"id": 1}]
        assert seen == [False]
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()
