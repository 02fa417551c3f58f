"""The agents' websocket endpoint and the hub of agents connected to this server replica.

Protocol (JSON text frames):
- agent -> server: ``hello`` {name, groups, capabilities, running_job, pending_jobs}; ``ping``;
  ``batch`` {messages: [job message...]} where a job message is {type, job_id, seq, ...}
  (``step_started``, ``log``, ``step_done``, ``job_done``, and the types later features
  register); each job's messages are acknowledged with ``ack`` {job_id, seq} (highest applied).
- server -> agent: ``welcome`` {agent_id, heartbeat_interval}; ``assign`` {job};
  ``cancel`` {job_id}; ``ack``; ``ping``/``pong``.

Assignments reach the replica that holds the agent's socket through the bus channel
``agent:<id>``, so any replica may schedule for any agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from sqlmodel import col, select

from kraken.api.state import ServerState
from kraken.control import agents as agent_ctl
from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.scheduler import assign_next
from kraken.core.security import tokens_equal
from kraken.models import Job
from kraken.models.enums import Result, State

log = logging.getLogger(__name__)
router = APIRouter()

REPLACED = "_replaced"


class AgentConnection:
    def __init__(self, ws: WebSocket, agent_id: int, conn_id: str) -> None:
        self.ws = ws
        self.agent_id = agent_id
        self.conn_id = conn_id
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.sender = asyncio.create_task(self._send_loop())

    async def _send_loop(self) -> None:
        while True:
            msg = await self.outbox.get()
            if msg is None:
                return
            try:
                await self.ws.send_text(orjson.dumps(msg).decode())
            except Exception:
                return

    def send(self, msg: dict[str, Any]) -> None:
        self.outbox.put_nowait(msg)

    async def close(self, code: int = status.WS_1000_NORMAL_CLOSURE) -> None:
        self.outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.ws.close(code)


class AgentHub:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.local: dict[int, AgentConnection] = {}
        self._forwarder: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sub = await self.state.runtime.bus.subscribe("agent:*")
        self._forwarder = asyncio.create_task(self._forward(sub))
        self._pinger = asyncio.create_task(self._ping())

    async def stop(self) -> None:
        for task in (self._forwarder, self._pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for conn in list(self.local.values()):
            await conn.close(status.WS_1012_SERVICE_RESTART)

    async def _forward(self, sub: Any) -> None:
        async for channel, msg in sub:
            agent_id = int(channel.split(":", 1)[1])
            conn = self.local.get(agent_id)
            if conn is None:
                continue
            if msg.get("type") == REPLACED:
                if msg.get("conn_id") != conn.conn_id:
                    self.local.pop(agent_id, None)
                    await conn.close(status.WS_1008_POLICY_VIOLATION)
                continue
            conn.send(msg)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.state.runtime.settings.heartbeat_interval)
            for conn in list(self.local.values()):
                conn.send({"type": "ping"})

    # ------------------------------------------------------------ one connection

    async def serve(self, ws: WebSocket) -> None:
        settings = self.state.runtime.settings
        db = self.state.runtime.db
        address = f"{ws.client.host}:{ws.client.port}" if ws.client else None
        auth = ws.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not tokens_equal(token, self.state.agent_token):
            log.warning("agent connection from %s refused: wrong or missing agent token", address)
            await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="wrong agent token")
            return
        await ws.accept()
        try:
            hello = orjson.loads(await asyncio.wait_for(ws.receive_text(), 30))
        except (TimeoutError, WebSocketDisconnect, orjson.JSONDecodeError):
            await ws.close(code=status.WS_1002_PROTOCOL_ERROR)
            return
        if hello.get("type") != "hello" or not hello.get("name"):
            await ws.close(code=status.WS_1002_PROTOCOL_ERROR, reason="expected hello with a name")
            return
        conn_id = f"{self.state.instance_id}/{uuid.uuid4().hex[:8]}"
        agent = await agent_ctl.register_agent(
            db,
            name=str(hello["name"]),
            groups=[str(g) for g in hello.get("groups") or []],
            capabilities=hello.get("capabilities") or {},
            conn_id=conn_id,
            address=address,
        )
        assert agent.id is not None
        old = self.local.pop(agent.id, None)
        if old is not None:
            await old.close(status.WS_1008_POLICY_VIOLATION)
        conn = AgentConnection(ws, agent.id, conn_id)
        self.local[agent.id] = conn
        await self.state.runtime.bus.publish(f"agent:{agent.id}", {"type": REPLACED, "conn_id": conn_id})
        conn.send({"type": "welcome", "agent_id": agent.id, "heartbeat_interval": settings.heartbeat_interval})
        log.info("agent %s connected from %s", agent.name, address)
        try:
            await self._resume(conn, hello.get("running_job"), set(hello.get("pending_jobs") or []))
            await self.state.runtime.bus.publish("sched", {})
            await self.state.runtime.bus.publish("events", {"kind": "agent", "id": agent.id, "online": True})
            await self._receive(ws, conn)
        except WebSocketDisconnect:
            pass
        finally:
            if self.local.get(agent.id) is conn:
                del self.local[agent.id]
            await conn.close()
            await agent_ctl.agent_disconnected(db, agent.id, conn_id)
            await self.state.runtime.bus.publish("events", {"kind": "agent", "id": agent.id, "online": False})
            log.info("agent %s disconnected", agent.name)

    async def _resume(self, conn: AgentConnection, running_job: int | None, pending: set[int]) -> None:
        """Reconcile what the agent runs with what the database says it runs.

        ``pending``: jobs the agent finished but whose last messages are not acknowledged
        yet; the agent re-sends them now."""
        async with self.state.runtime.db.session(quick=True) as session:
            jobs = (
                await session.execute(
                    select(Job).where(Job.agent_id == conn.agent_id, col(Job.state) == State.RUNNING)
                )
            ).scalars().all()
            payloads = {j.id: await orchestration.job_payload(session, j) for j in jobs if j.id != running_job}
        if running_job is not None and all(j.id != running_job for j in jobs):
            conn.send({"type": "cancel", "job_id": running_job})
        for job in jobs:
            if job.id == running_job or job.id in pending:
                continue
            assert job.id is not None
            if job.started is None and job.last_seq == 0:
                conn.send({"type": "assign", "job": payloads[job.id]})  # the assignment got lost
            else:
                async with self.state.write() as (session, effects):
                    await orchestration.complete_job(
                        session, job.id, Result.ERROR, effects, "agent restarted while running the job"
                    )

    async def _receive(self, ws: WebSocket, conn: AgentConnection) -> None:
        db = self.state.runtime.db
        while True:
            raw = await ws.receive_text()
            try:
                msg = orjson.loads(raw)
                kind = msg["type"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("agent %s sent a malformed message: %.200s", conn.agent_id, raw)
                continue
            if kind == "ping":
                conn.send({"type": "pong"})
                await agent_ctl.touch_agent(db, conn.agent_id, conn.conn_id)
            elif kind == "pong":
                continue
            elif kind == "batch":
                await self._apply(conn, msg["messages"])
            else:
                log.warning("agent %s sent an unknown message %r", conn.agent_id, kind)


    async def _apply(self, conn: AgentConnection, messages: list[dict[str, Any]]) -> None:
        """Apply a batch of job messages: one transaction and one ack per job."""
        by_job: dict[int, list[dict[str, Any]]] = {}
        for m in messages:
            by_job.setdefault(int(m["job_id"]), []).append(m)
        db = self.state.runtime.db
        for job_id, msgs in by_job.items():
            effects = Effects()
            seq = await agent_ctl.apply_job_messages(db, conn.agent_id, msgs, effects)
            conn.send({"type": "ack", "job_id": job_id, "seq": seq})
            if any(m["type"] == "job_done" for m in msgs):
                # the agent is free: hand it its next job now (in a transaction of its own, so two
                # agents finishing at once never lock each other's flows in opposite order)
                async with db.transaction(quick=True) as session:
                    await assign_next(session, conn.agent_id, effects)
                effects.freed_agents.discard(conn.agent_id)
            await effects.apply(self.state.runtime.bus, self.state.runtime.queue)


@router.websocket("/agent/ws")
async def agent_ws(ws: WebSocket) -> None:
    state: ServerState = ws.app.state.kraken
    assert state.hub is not None
    await state.hub.serve(ws)
