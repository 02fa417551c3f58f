"""Real receivers for notifications: an SMTP server (aiosmtpd) and an HTTP server (aiohttp)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import missing_service
from tests.support.procs import free_port


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    rcpts: list[list[str]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.rcpts.append(list(envelope.rcpt_tos))
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{count} mails not received, got {len(self.messages)}")


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    try:
        from aiosmtpd.controller import Controller
    except ImportError as exc:
        missing_service("aiosmtpd", exc)
    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    yield box
    controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """Answers 2xx to every POST, except ``fail[path]`` times 500 first."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.changed = asyncio.Condition()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.attempts[path] = self.attempts.get(path, 0) + 1
        if self.fail.get(path, 0) > 0:
            self.fail[path] -= 1
            return web.Response(status=500, text="try again")
        body = await request.json()
        async with self.changed:
            self.requests.append(Received(path, dict(request.headers), body))
            self.changed.notify_all()
        return web.json_response({"ok": True}, status=201 if "/statuses/" in path else 200)

    def at(self, prefix: str) -> list[Received]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    async def wait(self, prefix: str, count: int, timeout: float = 30) -> list[Received]:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.at(prefix)) >= count), timeout)
        return self.at(prefix)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", rec.port)
    await site.start()
    yield rec
    await runner.cleanup()


from tests.e2e.conftest import api, server  # noqa: E402

__all__ = ["Mailbox", "Receiver", "api", "receiver", "server", "smtp"]
