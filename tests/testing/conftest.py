"""Fixtures for the emulator framework's own tests: a fake platform emulator, installed
as a fake distribution so ``emulate()`` finds it through entry points like a real one."""

from __future__ import annotations

import datetime as dt
import http.server
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsync.testing.pytest_plugin import emulated_shop  # noqa: F401  (the fixture under test)

END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

FAKE_MODULE = textwrap.dedent(
    '''
    """A fake platform: customers as JSON pages, webhooks signed with HMAC-SHA256."""
    import hashlib, hmac, json

    from shopsync.testing import Delivery, Response

    TOPICS = {"customers/update": "customer.updated", "orders/create": "order.created"}


    class FakeEmulator:
        platform = "fake"

        @classmethod
        def default_shop(cls, seed):
            return f"fake-{seed}.example"

        def __init__(self, state, **options):
            self.state = state
            self.options = options

        def handle(self, request):
            if request.path == "/customers":
                rows = self.state.ordered("customers")
                page, size = int(request.query.get("page", 1)), int(request.query.get("limit", 50))
                chunk = rows[(page - 1) * size: page * size]
                body = [{"id": c.id, "email": c.email, "updated_at": c.updated_at} for c in chunk]
                return Response.json(body, headers={"X-Total": str(len(rows))})
            if request.path == "/options":
                return Response.json(self.options)
            return Response.json({"errors": "Not Found"}, status=404)

        def settings(self, base_url):
            return {"url": base_url, "token": "fake-token"}

        def rate_limited(self, retry_after):
            return Response.json({"errors": "slow down"}, 429, {"Retry-After": str(retry_after)})

        def webhook(self, event, subscription):
            if TOPICS.get(subscription.topic) != event.topic:
                return None
            body = json.dumps({"id": event.record_id, "topic": subscription.topic}).encode()
            digest = hmac.new((subscription.secret or "").encode(), body, hashlib.sha256)
            return Delivery({"X-Fake-Topic": subscription.topic,
                             "X-Fake-Signature": digest.hexdigest()}, body)
    '''
)


@pytest.fixture
def fake_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install ``fake`` in the ``shopsync.emulators`` group via a dist-info on sys.path."""
    root = tmp_path / "site"
    dist = root / "fake-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[shopsync.emulators]\nfake = fake_shop_emulator:FakeEmulator\n"
    )
    (root / "fake_shop_emulator.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(__import__("sys").modules, "fake_shop_emulator", raising=False)
    return "fake"


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 that answers with scripted statuses."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        """Statuses to answer with, in order; 200 once they run out."""
        self.received: list[tuple[dict[str, str], bytes]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = owner.statuses.pop(0) if owner.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
