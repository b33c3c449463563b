"""A loopback SMTP server whose messages reach the simulated customers.

Messages are only collected here (aiosmtpd serves them from its own thread); the simulation
takes them on its own clock (:meth:`Inbox.take`), so what a customer does about a message
does not depend on when the server thread ran.
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

__all__ = ["Inbox"]


class _Collect:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class Inbox:
    """An SMTP server on 127.0.0.1 (``host``/``port`` for :class:`shopsync.sinks.Email`,
    with ``security="none"``); needs ``aiosmtpd`` (the ``test`` extra)."""

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self._handler = _Collect()
        self._controller: Any = None
        self.messages: list[EmailMessage] = []
        """Every message received so far, in arrival order."""

    def start(self) -> Inbox:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Inbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> list[tuple[list[str], EmailMessage]]:
        """The (recipients, message) pairs received since the last call."""
        with self._handler.lock:
            taken, self._handler.received = self._handler.received, []
        self.messages.extend(m for _, m in taken)
        return taken


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
