"""The HTTP layer over a real socket, and every fault as a client meets it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import requests

from shopsync.testing import (
    EmulatorServer,
    Event,
    Faults,
    PlatformEmulator,
    Request,
    Response,
    ShopState,
    Subscription,
)

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


class EchoEmulator:
    """The smallest platform: echoes the request, counts customers, can fail."""

    platform: ClassVar[str] = "echo"

    @classmethod
    def default_shop(cls, seed: int) -> str:
        return f"echo-{seed}.example"

    def __init__(self, state: ShopState, **options: Any) -> None:
        self.state = state

    def handle(self, request: Request) -> Response:
        if request.path == "/boom":
            raise RuntimeError("emulator bug")
        if request.path == "/big":
            return Response.json({"data": "x" * 10_000})
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "raw": request.query_string,
                "body": request.json(),
                "agent": request.headers.get("user-agent", ""),
                "base": request.base_url,
                "customers": len(self.state.customers),
            }
        )

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"url": base_url}

    def rate_limited(self, retry_after: float) -> Response:
        return Response.json({"errors": "Throttled"}, 429, {"Retry-After": f"{retry_after:g}"})

    def webhook(self, event: Event, subscription: Subscription) -> None:
        return None


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    state = generate_state()
    state.faults = Faults(seed=1, slow_seconds=0.3, retry_after=2.5)
    with EmulatorServer(EchoEmulator(state)) as srv:
        yield srv


def generate_state() -> ShopState:
    from shopsync.testing import generate_shop

    return generate_shop(platform="echo", shop="echo-1.example", customers=7, orders=10, end=END)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # never through a proxy: the server is on 127.0.0.1
        yield s


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(EchoEmulator(generate_state()), PlatformEmulator)


def test_serves_requests_over_real_http(server: EmulatorServer, session: requests.Session) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    r = session.get(f"{server.url}/a/b.json?x=1&x=2&y=%20z", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["path"] == "/a/b.json" and body["query"] == {"x": "2", "y": " z"}
    assert body["raw"] == "x=1&x=2&y=%20z" and body["customers"] == 7
    assert body["base"] == server.url
    r = session.post(f"{server.url}/p", json={"k": [1, 2]}, timeout=5)
    assert r.json()["method"] == "POST" and r.json()["body"] == {"k": [1, 2]}
    for method in ("PUT", "DELETE", "PATCH"):
        assert session.request(method, f"{server.url}/m", timeout=5).json()["method"] == method


def test_keep_alive_reuses_one_connection(
    server: EmulatorServer, session: requests.Session
) -> None:
    first = session.get(f"{server.url}/1", timeout=5)
    sock = first.raw._connection.sock if first.raw._connection else None  # type: ignore[union-attr]
    second = session.get(f"{server.url}/2", timeout=5)
    assert first.headers.get("Connection", "keep-alive").lower() != "close"
    assert second.status_code == 200
    assert sock is None or second.raw._connection is None or second.raw._connection.sock is sock  # type: ignore[union-attr]


def test_emulator_exception_becomes_500_and_is_recorded(
    server: EmulatorServer, session: requests.Session
) -> None:
    r = session.get(f"{server.url}/boom", timeout=5)
    assert r.status_code == 500 and "emulator bug" in r.json()["errors"]
    assert len(server.errors) == 1 and isinstance(server.errors[0], RuntimeError)


def test_429_comes_from_the_platform(server: EmulatorServer, session: requests.Session) -> None:
    server.faults.inject("429", count=2)
    statuses = [session.get(f"{server.url}/x", timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].json() == {"errors": "Throttled"}
    assert statuses[0].headers["Retry-After"] == "2.5"
    assert server.faults.counts["429"] == 2


def test_5xx(server: EmulatorServer, session: requests.Session) -> None:
    server.faults.inject("5xx")
    r = session.get(f"{server.url}/x", timeout=5)
    assert r.status_code in (500, 502, 503, 504)
    assert session.get(f"{server.url}/x", timeout=5).status_code == 200


def test_slow_response_hits_a_client_timeout(
    server: EmulatorServer, session: requests.Session
) -> None:
    server.faults.inject("slow")
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{server.url}/x", timeout=0.05)
    server.faults.inject("slow")
    assert session.get(f"{server.url}/x", timeout=5).status_code == 200  # slow, but answers


def test_dropped_connection(server: EmulatorServer, session: requests.Session) -> None:
    server.faults.inject("drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{server.url}/x", timeout=5)
    assert session.get(f"{server.url}/x", timeout=5).status_code == 200
    assert server.faults.counts["drop"] == 1


def test_truncated_body(server: EmulatorServer, session: requests.Session) -> None:
    server.faults.inject("truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(f"{server.url}/big", timeout=5)
    server.faults.inject("truncate")
    raw = session.get(f"{server.url}/big", timeout=5, stream=True)
    assert int(raw.headers["Content-Length"]) > 10_000
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        raw.content  # noqa: B018 - reading is what fails
    good = session.get(f"{server.url}/big", timeout=5)
    assert len(json.loads(good.content)["data"]) == 10_000


def test_rates_are_seeded_and_counted(server: EmulatorServer, session: requests.Session) -> None:
    faults = server.faults
    faults.rate_429, faults.rate_5xx = 0.3, 0.2
    codes = [session.get(f"{server.url}/x", timeout=5).status_code for _ in range(60)]
    throttled = codes.count(429)
    failed = sum(1 for c in codes if c >= 500)
    assert 5 < throttled < 35 and 2 < failed < 25
    assert faults.counts["429"] == throttled and faults.counts["5xx"] == failed
    again = Faults(seed=1, rate_429=0.3, rate_5xx=0.2)
    assert [again.draw() for _ in range(60)] == [
        "429" if c == 429 else "5xx" if c >= 500 else None for c in codes
    ]


def test_suspended_and_clear(server: EmulatorServer, session: requests.Session) -> None:
    faults = server.faults
    faults.rate_5xx = 1.0
    with faults.suspended():
        assert session.get(f"{server.url}/x", timeout=5).status_code == 200
    assert session.get(f"{server.url}/x", timeout=5).status_code >= 500
    faults.inject("429")
    faults.invalid_records.add(("orders", "1"))
    faults.clear()
    assert faults.pending == 0 and not faults.invalid_records
    assert session.get(f"{server.url}/x", timeout=5).status_code == 200


def test_invalid_records_are_for_renderers() -> None:
    faults = Faults(invalid_records=[("orders", "7")])
    assert faults.corrupt("orders", "7") and not faults.corrupt("orders", "8")
    assert faults.counts["invalid"] == 1
    with pytest.raises(ValueError, match="unknown fault"):
        faults.inject("teapot")  # type: ignore[arg-type]


def test_stop_frees_the_port(session: requests.Session) -> None:
    srv = EmulatorServer(EchoEmulator(generate_state())).start()
    url = srv.url
    assert session.get(f"{url}/x", timeout=5).status_code == 200
    srv.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{url}/x", timeout=2)
