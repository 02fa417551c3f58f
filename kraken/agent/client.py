"""``kraken agent``: one long-lived websocket to the server; runs the jobs it is given.

The agent reconnects with exponential backoff (with jitter) when the connection
drops, keeps running its job meanwhile, and re-sends what the server has not
acknowledged (see ``Outbox``).  Heartbeats go both ways: the agent pings every
``heartbeat_interval`` seconds and reconnects when it has heard nothing from the
server for three intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from pathlib import Path
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from kraken.agent.capabilities import capabilities
from kraken.agent.executors import executor_class
from kraken.agent.outbox import Outbox
from kraken.agent.runner import JobRunner

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.2
BACKOFF_MAX = 10.0


def ws_url(server: str) -> str:
    base = server.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[8:]
    elif base.startswith("http://"):
        base = "ws://" + base[7:]
    return base + "/api/agent/ws"


def http_url(ws: str) -> str:
    """The server's HTTP base URL from the agent's websocket URL (artifact and cache transfers)."""
    base = ws.removesuffix("/api/agent/ws")
    if base.startswith("wss://"):
        return "https://" + base[6:]
    if base.startswith("ws://"):
        return "http://" + base[5:]
    return base


class Agent:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        name: str | None = None,
        data_dir: Path = Path("./kraken-agent"),
        groups: list[str] | None = None,
        labels: list[str] | None = None,
        executors: list[str] | None = None,
        limits: dict[str, Any] | None = None,
        heartbeat_interval: float = 5.0,
    ) -> None:
        self.url = ws_url(server)
        self.token = token
        self.name = name or socket.gethostname()
        self.data_dir = data_dir.resolve()
        self.groups = groups or []
        self.labels = labels or []
        self.executors = executors
        self.limits = limits or {}
        self.heartbeat_interval = heartbeat_interval
        self.outbox = Outbox()
        self.runner: JobRunner | None = None
        self.agent_id: int | None = None
        self.connected = asyncio.Event()
        self._stopping = False
        self._caps: dict[str, Any] | None = None

    async def run_forever(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self._remove_orphans()
        self._caps = await capabilities(self.labels, self.executors)
        backoff = BACKOFF_MIN
        while not self._stopping:
            try:
                await self._session()
                backoff = BACKOFF_MIN
            except PermissionError as exc:
                log.error("%s", exc)
                raise
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                log.warning("connection to %s lost: %s; reconnecting in %.1f s", self.url, exc, backoff)
            finally:
                self.connected.clear()
                self.outbox.disconnected()
            if self._stopping:
                break
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        if self.runner is not None:
            await self.runner.cancel()

    async def _remove_orphans(self) -> None:
        for name in self.executors or ["docker", "lxd"]:
            try:
                n = await executor_class(name).remove_orphans(self.name)
            except Exception as exc:  # the engine may not exist here
                log.debug("no orphan clean-up for %s: %s", name, exc)
                continue
            if n:
                log.info("removed %d %s environment(s) left by an earlier run", n, name)

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                max_size=None,
                ping_interval=None,  # the protocol has its own heartbeats
                open_timeout=10,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise PermissionError(f"the server at {self.url} refused the agent token") from exc
            raise
        async with ws:
            await self._send(ws, {
                "type": "hello",
                "name": self.name,
                "groups": self.groups,
                "capabilities": self._caps or {},
                "running_job": self.runner.job_id if self.runner else None,
                "pending_jobs": self.outbox.pending_jobs(),
            })
            first = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            if first.get("type") != "welcome":
                raise websockets.WebSocketException(f"unexpected first message {first!r}")
            self.agent_id = int(first["agent_id"])
            self.heartbeat_interval = float(first.get("heartbeat_interval", self.heartbeat_interval))
            log.info("connected to %s as agent %s (%s)", self.url, self.name, self.agent_id)
            await self.outbox.connected(lambda m: self._send(ws, m))
            self.connected.set()
            pinger = asyncio.create_task(self._ping(ws))
            try:
                await self._receive(ws)
            finally:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger

    async def _send(self, ws: ClientConnection, msg: dict[str, Any]) -> None:
        await ws.send(orjson.dumps(msg).decode())

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._send(ws, {"type": "ping"})

    async def _receive(self, ws: ClientConnection) -> None:
        silence = self.heartbeat_interval * 3
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), silence)
            except TimeoutError as exc:
                raise TimeoutError(f"no word from the server for {silence:g} s") from exc
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1008 and "token" in (exc.rcvd.reason or ""):
                    raise PermissionError(f"the server at {self.url} refused the agent token") from exc
                raise
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind == "ack":
                self.outbox.ack(int(msg["job_id"]), int(msg["seq"]))
            elif kind == "assign":
                self._start_job(msg["job"])
            elif kind == "cancel":
                if self.runner is not None and self.runner.job_id == int(msg["job_id"]):
                    log.info("job %s cancelled by the server", msg["job_id"])
                    await self.runner.cancel()
            elif kind == "ping":
                await self._send(ws, {"type": "pong"})

    def _start_job(self, job: dict[str, Any]) -> None:
        if self.runner is not None:
            if self.runner.job_id == int(job["id"]):
                return  # already running it (a re-sent assignment)
            log.error("server assigned job %s while job %s runs; refusing", job["id"], self.runner.job_id)
            return
        self.outbox.start_job(int(job["id"]), int(job.get("last_seq") or 0))
        server = {"url": http_url(self.url), "token": self.token}
        runner = JobRunner(
            job, self.outbox, self.name, str(self.data_dir), server=server, default_limits=self.limits
        )
        self.runner = runner
        log.info("running job %s (%s)", job["id"], job.get("name"))

        async def go() -> None:
            try:
                await runner.run()
            except Exception:
                log.exception("job %s crashed the runner", runner.job_id)
                await runner.send({"type": "job_done", "result": "error", "reason": "agent-side crash"})
            finally:
                self.runner = None

        runner.task = asyncio.create_task(go())
