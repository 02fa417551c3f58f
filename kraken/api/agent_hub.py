"""The agents' websocket endpoint and the hub of agents connected to this server replica.

The frames are the models of ``kraken.protocol``.  Every frame an agent sends is validated
here, once; what does not validate is logged (with the agent's name) and never drops the
connection.  Each job's messages are acknowledged with ``ack`` {job_id, seq} (highest
applied, or refused for good: a malformed job message ends its job with ``error``).

Authentication (``Authorization: Bearer``): the shared token enrolls an agent (pending until an
administrator approves it, see ``kraken.control.agents``); an enrolled agent shows its own credential.

Assignments reach the replica that holds the agent's socket through the bus channel
``agent:<id>``, so any replica may schedule for any agent; they are validated as server
frames before they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from pydantic import ValidationError
from sqlmodel import col, select

from kraken.api.state import ServerState
from kraken.artifacts import tokens as transfer_tokens
from kraken.control import agents as agent_ctl
from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.control.job_message_dispatch import Applied, IncomingMessage, apply_job_messages
from kraken.control.scheduler import assign_next
from kraken.core.security import tokens_equal
from kraken.core.transient import retry_dropped
from kraken.models import Job
from kraken.protocol import (
    AGENT_CHANNELS,
    EVENTS_CHANNEL,
    JOB_ENDING_TYPES,
    SCHED_CHANNEL,
    Ack,
    Assign,
    Batch,
    Cancel,
    Hello,
    JobSpec,
    MalformedJobMessage,
    Ping,
    Pong,
    Result,
    ServerFrame,
    ServiceLogs,
    State,
    Welcome,
    agent_channel,
    agent_frame,
    describe,
    server_frame,
)

log = logging.getLogger(__name__)
router = APIRouter()

REPLACED = "_replaced"
HEARTBEAT_FLUSH = 0.2  # heartbeats are stored every this much of a heartbeat interval


class AgentConnection:
    def __init__(self, ws: WebSocket, agent_id: int, conn_id: str, name: str = "") -> None:
        self.ws = ws
        self.agent_id = agent_id
        self.conn_id = conn_id
        self.name = name or str(agent_id)
        self.told_logs_dropped = False
        self.outbox: asyncio.Queue[ServerFrame | None] = asyncio.Queue()
        self.sender = asyncio.create_task(self._send_loop())

    async def _send_loop(self) -> None:
        while True:
            msg = await self.outbox.get()
            if msg is None:
                return
            try:
                await self.ws.send_text(msg.model_dump_json())
            except Exception:
                return

    def send(self, msg: ServerFrame) -> None:
        self.outbox.put_nowait(msg)

    async def close(self, code: int = status.WS_1000_NORMAL_CLOSURE, reason: str | None = None) -> None:
        self.outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)


class AgentHub:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.local: dict[int, AgentConnection] = {}
        self._forwarder: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._seen: dict[int, str] = {}  # agents that pinged since the last flush: id -> connection id

    async def start(self) -> None:
        sub = await self.state.runtime.bus.subscribe(AGENT_CHANNELS)
        self._forwarder = asyncio.create_task(self._forward(sub))
        self._pinger = asyncio.create_task(self._ping())
        self._heartbeats = asyncio.create_task(self._flush_heartbeats())

    async def stop(self) -> None:
        for task in (self._forwarder, self._pinger, self._heartbeats):
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
            if msg.get("type") == agent_ctl.REVOKED:
                self.local.pop(agent_id, None)
                await conn.close(status.WS_1008_POLICY_VIOLATION, "agent revoked by an administrator")
                continue
            if msg.get("type") == REPLACED:
                if msg.get("conn_id") != conn.conn_id:
                    self.local.pop(agent_id, None)
                    await conn.close(status.WS_1008_POLICY_VIOLATION)
                continue
            try:
                frame = server_frame.validate_python(msg)
            except ValidationError as exc:
                log.error("not sent to agent %s: invalid %s frame: %s", conn.name, msg.get("type"), describe(exc))
                continue
            self._deliver(conn, frame)

    def _deliver(self, conn: AgentConnection, frame: ServerFrame) -> None:
        if isinstance(frame, Assign):  # the job's artifact and cache transfers need its token
            token = transfer_tokens.issue(self.state.secret_key, frame.job.id, conn.agent_id, frame.job.timeout)
            frame = Assign(job=frame.job.model_copy(update={"transfer_token": token}))
        conn.send(frame)

    async def _flush_heartbeats(self) -> None:
        """Store the agents' heartbeats (``last_seen``) in one statement every ``HEARTBEAT_FLUSH``
        of a heartbeat interval, instead of a transaction per ping: a thousand agents pinging every
        5 s were 200 transactions a second, which took the database pool from everything else.
        ``last_seen`` is then at most that much late, far within ``agent_timeout`` (an agent busy
        in a transaction at the flush is stored at the next one: ``touch_agents``)."""
        runtime = self.state.runtime
        while True:
            await asyncio.sleep(runtime.settings.heartbeat_interval * HEARTBEAT_FLUSH)
            # only agents still here on the connection they pinged on (a heartbeat may bring an agent
            # marked offline back online: not one that has gone)
            seen = {a: c for a, c in self._seen.items() if self._connected_here(a, c)}
            self._seen = {}
            try:
                stored = await retry_dropped(
                    functools.partial(agent_ctl.touch_agents, runtime.db, seen), "agents' heartbeats"
                )
            except Exception:
                log.exception("agents' heartbeats not stored (%d agents); kept for the next flush", len(seen))
                stored = set()
            # the others (busy in a transaction at that moment, or gone) at the next flush, while
            # they are still connected here on the same connection
            left = {a: c for a, c in seen.items() if a not in stored and self._connected_here(a, c)}
            self._seen = {**left, **self._seen}

    def _connected_here(self, agent_id: int, conn_id: str) -> bool:
        conn = self.local.get(agent_id)
        return conn is not None and conn.conn_id == conn_id

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.state.runtime.settings.heartbeat_interval)
            for conn in list(self.local.values()):
                conn.send(Ping())

    # ------------------------------------------------------------ one connection

    async def serve(self, ws: WebSocket) -> None:
        settings = self.state.runtime.settings
        db = self.state.runtime.db
        address = f"{ws.client.host}:{ws.client.port}" if ws.client else None
        auth = ws.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        enroll = bool(token) and tokens_equal(token, self.state.agent_token)
        own = bool(token and self.state.local_agent_token) and tokens_equal(token, self.state.local_agent_token)
        if not (enroll or own or (token and await agent_ctl.credential_known(db, token))):
            log.warning("agent connection from %s refused: wrong or missing agent token or credential", address)
            await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="wrong agent token")
            return
        await ws.accept()
        first: Hello | Ping | Pong | Batch | ServiceLogs | None = None
        try:
            first = agent_frame.validate_json(await asyncio.wait_for(ws.receive_text(), 30))
            why = f"got {first.type}"
        except (TimeoutError, WebSocketDisconnect):
            await ws.close(code=status.WS_1002_PROTOCOL_ERROR)
            return
        except ValidationError as exc:
            why = describe(exc, limit=100)
        if not isinstance(first, Hello):
            log.warning("agent connection from %s refused: expected a valid hello: %s", address, why)
            await ws.close(code=status.WS_1002_PROTOCOL_ERROR, reason=f"expected hello: {why}"[:120])
            return
        hello = first
        conn_id = f"{self.state.instance_id}/{uuid.uuid4().hex[:8]}"
        name, caps = hello.name, hello.capabilities
        credential: str | None = None
        try:
            if enroll or own:  # hello's groups are only a request shown to administrators
                agent, credential = await agent_ctl.enroll_agent(
                    db,
                    name=name,
                    requested_groups=list(hello.groups),
                    capabilities=caps,
                    conn_id=conn_id,
                    address=address,
                    approve=settings.auto_approve,
                    server_own=own,
                )
            else:
                agent = await agent_ctl.authenticate_agent(
                    db, credential=token, name=name, capabilities=caps, conn_id=conn_id, address=address
                )
        except agent_ctl.AgentRefused as exc:
            log.warning("agent %r from %s refused: %s", name, address, exc)
            await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(exc).encode()[:120].decode(errors="ignore"))
            return
        assert agent.id is not None
        old = self.local.pop(agent.id, None)
        if old is not None:
            await old.close(status.WS_1008_POLICY_VIOLATION)
        conn = AgentConnection(ws, agent.id, conn_id, agent.name)
        # the welcome is the first frame, before the connection is listed for pings and
        # assignments (a ping sent first made the agent give up the connection and come again).
        # The credential only right after enrolling: the agent's own from now on (the server keeps its hash)
        conn.send(
            Welcome(
                agent_id=agent.id,
                heartbeat_interval=settings.heartbeat_interval,
                approved=agent.approved,
                credential=credential,
            )
        )
        self.local[agent.id] = conn
        await self.state.runtime.bus.publish(agent_channel(agent.id), {"type": REPLACED, "conn_id": conn_id})
        log.info("agent %s connected from %s%s", agent.name, address, "" if agent.approved else " (pending approval)")
        try:
            await retry_dropped(
                lambda: self._resume(conn, hello.running_job, set(hello.pending_jobs)), f"agent {agent.name}: reconnect"
            )
            await self.state.runtime.bus.publish(SCHED_CHANNEL, {})
            await self.state.runtime.bus.publish(EVENTS_CHANNEL, {"kind": "agent", "id": agent.id, "online": True})
            await self._receive(ws, conn)
        except WebSocketDisconnect:
            pass
        finally:
            if self.local.get(agent.id) is conn:
                del self.local[agent.id]
            await conn.close()
            await agent_ctl.agent_disconnected(db, agent.id, conn_id)
            await self.state.runtime.bus.publish(EVENTS_CHANNEL, {"kind": "agent", "id": agent.id, "online": False})
            log.info("agent %s disconnected", agent.name)

    async def _resume(self, conn: AgentConnection, running_job: int | None, pending: set[int]) -> None:
        """Reconcile what the agent runs with what the database says it runs.

        ``pending``: jobs the agent finished but whose last messages are not acknowledged
        yet; the agent re-sends them now."""
        async with self.state.runtime.db.session(quick=True) as session:
            jobs = (
                (
                    await session.execute(
                        select(Job).where(Job.agent_id == conn.agent_id, col(Job.state) == State.RUNNING)
                    )
                )
                .scalars()
                .all()
            )
            payloads = {j.id: await orchestration.job_payload(session, j) for j in jobs if j.id != running_job}
        if running_job is not None and all(j.id != running_job for j in jobs):
            conn.send(Cancel(job_id=running_job))
        for job in jobs:
            if job.id == running_job or job.id in pending:
                continue
            assert job.id is not None
            if job.started is None and job.last_seq == 0:
                self._deliver(conn, Assign(job=JobSpec.model_validate(payloads[job.id])))  # the assignment got lost
            else:
                async with self.state.write() as (session, effects):
                    await orchestration.complete_job(
                        session, job.id, Result.ERROR, effects, "agent restarted while running the job"
                    )

    async def _receive(self, ws: WebSocket, conn: AgentConnection) -> None:
        while True:
            raw = await ws.receive_text()
            try:
                frame = agent_frame.validate_json(raw)
            except ValidationError as exc:
                # nothing in it can be acknowledged (job messages are checked one by one in a batch)
                log.warning("agent %s sent a malformed frame, dropped: %s", conn.name, describe(exc))
                continue
            if isinstance(frame, Ping):
                conn.send(Pong())
                self._seen[conn.agent_id] = conn.conn_id  # stored with the others' (_flush_heartbeats)
            elif isinstance(frame, Batch):
                await self._apply(conn, frame)
            elif isinstance(frame, ServiceLogs):
                self._service_logs(conn, frame)
            elif isinstance(frame, Hello):
                log.warning("agent %s sent a second hello, ignored", conn.name)

    def _service_logs(self, conn: AgentConnection, frame: ServiceLogs) -> None:
        """The agent's own log records: into this process's service log buffer (stored by its
        flusher), or, when this server does not store service logs, dropped (said once)."""
        flusher = self.state.runtime.service_logs
        if flusher is not None:
            flusher.accept_agent(conn.name, frame)
        elif not conn.told_logs_dropped:
            conn.told_logs_dropped = True
            log.warning(
                "agent %s ships its log records, but this server does not store service logs"
                " (KRAKEN_SERVICE_LOGS_STORE is off): dropped",
                conn.name,
            )

    async def _apply(self, conn: AgentConnection, batch: Batch) -> None:
        """Apply a batch of job messages: one transaction and one ack per job."""
        by_job: dict[int, list[IncomingMessage]] = {}
        for m in batch.messages:
            job_id = m.job_id
            if job_id is None:  # only a malformed message can lack one
                error = m.error if isinstance(m, MalformedJobMessage) else ""
                log.warning(
                    "agent %s sent a malformed %s message without a job id, dropped: %s",
                    conn.name,
                    m.type or "job",
                    error,
                )
                continue
            by_job.setdefault(job_id, []).append(m)
        for job_id, msgs in by_job.items():
            effects, applied = await retry_dropped(
                functools.partial(self._apply_job, conn, job_id, msgs), f"agent {conn.name}: job {job_id}"
            )
            if not applied.held:
                log.warning(
                    "agent %s sent %d message(s) for job %s, which it does not hold: acknowledged, "
                    "dropped, and the agent told to cancel the job",
                    conn.name,
                    len(msgs),
                    job_id,
                )
            if applied.seq:
                conn.send(Ack(job_id=job_id, seq=applied.seq))
            if not applied.held:
                pass
            elif applied.ended_by_error:
                conn.send(Cancel(job_id=job_id))  # the job ended here: stop it on the agent
            elif any(m.type in JOB_ENDING_TYPES for m in msgs):
                # the agent is free: hand it its next job now (in a transaction of its own, so two
                # agents finishing at once never lock each other's flows in opposite order)
                next_effects, assigned = await retry_dropped(
                    lambda: self._assign_next(conn.agent_id), f"agent {conn.name}: next job"
                )
                effects.merge(next_effects)
                if assigned:  # else the scheduler is woken for it (freed_agents): another agent may
                    # have taken that job a moment before, while older jobs still wait
                    effects.freed_agents.discard(conn.agent_id)
            await effects.apply(self.state.runtime.bus, self.state.runtime.queue)

    async def _apply_job(
        self, conn: AgentConnection, job_id: int, msgs: list[IncomingMessage]
    ) -> tuple[Effects, Applied]:
        """One job's messages in one transaction, with the effects of that transaction alone (a
        transaction run again after a dropped connection starts from fresh effects)."""
        effects = Effects()
        # the job is not this agent's: ``cancel`` (sent while the job's row is locked, so before any
        # new assignment of the job to this agent, and before the acknowledgement: an agent waiting
        # for the acknowledgement of its ``job_accepted`` then never starts a job taken back from it)
        applied = await apply_job_messages(
            self.state.runtime.db,
            conn.agent_id,
            conn.name,
            job_id,
            msgs,
            effects,
            not_held=lambda: conn.send(Cancel(job_id=job_id)),
        )
        return effects, applied

    async def _assign_next(self, agent_id: int) -> tuple[Effects, bool]:
        effects = Effects()
        async with self.state.runtime.db.transaction(quick=True) as session:
            assigned = await assign_next(session, agent_id, effects)
        return effects, assigned


@router.websocket("/agent/ws")
async def agent_ws(ws: WebSocket) -> None:
    state: ServerState = ws.app.state.kraken
    assert state.hub is not None
    await state.hub.serve(ws)
