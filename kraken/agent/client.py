"""``kraken agent``: one long-lived websocket to the server; runs the jobs it is given.

The agent reconnects with exponential backoff when the connection drops (jittered, capped at
``BACKOFF_MAX``, and back to ``BACKOFF_MIN`` once a server has welcomed it), keeps running its
job meanwhile, and re-sends what the server has not acknowledged (see ``Outbox``).

Heartbeats go both ways: the agent pings every ``heartbeat_interval`` seconds and the server
pings too, so a healthy link is never silent for longer than an interval.  After
``SILENT_INTERVALS`` silent intervals the agent gives up on the link (a half-open connection:
the server is unreachable but the TCP connection was never closed) and reconnects, spending at
most ``CLOSE_TIMEOUT`` on the closing handshake.  With the defaults (5 s heartbeats) that is
10 s of silence + 2 s, well within the server's ``agent_timeout`` (20 s) after which a running
job is declared lost.

Every frame is a model of ``kraken.protocol``, the only server-side module the agent imports.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import websockets
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect

from kraken.agent import credentials
from kraken.agent.cleanup import clean_up_after_earlier_run
from kraken.agent.logship import LogShipper
from kraken.agent.outbox import Outbox
from kraken.agent.probe import probe_in_child
from kraken.agent.runner import JobRunner
from kraken.observability.servicelog import log_context, start_buffer
from kraken.protocol import (
    Ack,
    Assign,
    Cancel,
    Hello,
    JobAccepted,
    JobDone,
    JobSpec,
    Ping,
    Pong,
    Result,
    Welcome,
    describe,
    server_frame,
)

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0  # the longest wait between two attempts (jitter included)
TAKEN_REMEMBERED = 256  # job ids remembered to recognise a re-sent assignment
SILENT_INTERVALS = 2  # heartbeat intervals without a word from the server before giving up on the link
CLOSE_TIMEOUT = 2.0  # at most this long for the closing handshake of a link given up
STOP_WAIT = 5.0  # a stopping agent waits at most this long for its job's end to be acknowledged
STOPPED = "the agent was stopped ({why}) while the job ran"


@dataclass(frozen=True)
class ShipLogs:
    """``KRAKEN_SERVICE_LOGS_STORE=true``: the agent ships its records at ``level`` and above,
    ``buffer`` of them waiting at most."""

    level: str = "info"
    buffer: int = 10_000


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
        keep_credential: bool = True,
        ship_logs: ShipLogs | None = None,
    ) -> None:
        self.url = ws_url(server)
        self.token = token  # the shared enrollment token (used until the agent has its own credential)
        self.name = name or socket.gethostname()
        self.data_dir = data_dir.resolve()
        # kraken serve's own agent keeps its credential in memory: the server vouches for it anew at each start
        self.credential_file = credentials.credential_path(self.data_dir) if keep_credential else None
        self.credential: str | None = None
        self.groups = groups or []
        self.labels = labels or []
        self.executors = executors
        self.limits = limits or {}
        self.heartbeat_interval = heartbeat_interval
        self.outbox = Outbox()
        self.runner: JobRunner | None = None
        self.agent_id: int | None = None
        self.connected = asyncio.Event()
        self._offline = asyncio.Event()  # the opposite of ``connected``
        self._offline.set()
        self._stopping = False
        self._caps: dict[str, Any] | None = None
        self._welcomed = False  # the current connection got its welcome
        self._next: JobSpec | None = None  # assigned while the previous job was still ending
        self._accepting: int | None = None  # the job whose ``job_accepted`` waits for its acknowledgement
        # jobs this agent took, newest last: an assignment re-sent for one of them is a no-op
        self._taken: collections.deque[int] = collections.deque(maxlen=TAKEN_REMEMBERED)
        # KRAKEN_SERVICE_LOGS_STORE: this agent's own log records go to the server
        self.shipper: LogShipper | None = None
        if ship_logs is not None:
            self.shipper = LogShipper(start_buffer(ship_logs.buffer, ship_logs.level), self._log_secrets)

    def _log_secrets(self) -> list[str]:
        """What the shipped log records must not show: this agent's token and credential (the
        server masks a job's secrets in the records that name it)."""
        return [v for v in (self.token, self.credential) if v]

    async def run_forever(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.credential_file is not None:
            self.credential = credentials.load(self.credential_file)
        await asyncio.to_thread(clean_up_after_earlier_run, self.data_dir)
        # the child also removes the containers this agent's earlier run left
        self._caps = await probe_in_child(self.name, str(self.data_dir), self.labels, self.executors)
        backoff = BACKOFF_MIN
        while not self._stopping:
            self._welcomed = False
            try:
                await self._session()
            except PermissionError as exc:
                log.error("%s", exc)
                if self.runner is not None:  # refused or revoked: nothing it runs may go on
                    await self.runner.cancel()
                raise
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                log.warning("connection to %s lost: %s; reconnecting in %.1f s", self.url, exc, backoff)
            finally:
                self.connected.clear()
                self._offline.set()
                self.outbox.disconnected()
            if self._stopping:
                break
            if self._welcomed:  # the server was there: the next failure starts from scratch
                backoff = BACKOFF_MIN
            await asyncio.sleep(reconnect_delay(backoff))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def stop(self, why: str = "SIGTERM", wait: float = STOP_WAIT) -> None:
        """Stop taking jobs and end the running one: its processes are stopped and it ends
        ``cancelled`` with the reason ``STOPPED`` (``why`` the stop came), told to the server like
        any job's end; returns once the server has acknowledged it, the link is down (no new
        connection is tried: the server's watchdog then ends the job) or ``wait`` seconds have
        passed.  The caller then cancels ``run_forever``."""
        self._stopping = True
        runner = self.runner
        if runner is None:
            return
        log.warning("stopping (%s): ending job %s", why, runner.job_id)
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        # bounded, never raising: however the step's stop and the job's end go, the agent exits
        cancelling = asyncio.ensure_future(runner.cancel(STOPPED.format(why=why)))
        await asyncio.wait({cancelling}, timeout=wait)
        if runner.task is not None:
            await asyncio.wait({runner.task}, timeout=max(0.0, until - loop.time()))
        drained = asyncio.ensure_future(self.outbox.drained())
        offline = asyncio.ensure_future(self._offline.wait())
        try:
            await asyncio.wait({drained, offline}, timeout=max(0.0, until - loop.time()), return_when="FIRST_COMPLETED")
        finally:
            drained.cancel()
            offline.cancel()
        if self.outbox.pending:
            log.warning("job %s: its end was not acknowledged by the server before the exit", runner.job_id)

    def _refused(self, reason: str) -> PermissionError:
        if self.credential is None:
            return PermissionError(f"the server at {self.url} refused the agent token: {reason}")
        where = f" (delete {self.credential_file} to enroll again)" if self.credential_file else ""
        return PermissionError(f"the server at {self.url} refused this agent's credential: {reason}{where}")

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.credential or self.token}"}
        try:
            ws = await connect(
                self.url,
                additional_headers=headers,
                max_size=None,
                ping_interval=None,  # the protocol has its own heartbeats
                open_timeout=10,
                close_timeout=CLOSE_TIMEOUT,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise self._refused("wrong token or unknown credential") from exc
            raise
        async with ws:
            await self._send(
                ws,
                Hello(
                    name=self.name,
                    groups=self.groups,
                    capabilities=self._caps or {},
                    running_job=self.runner.job_id if self.runner else None,
                    pending_jobs=self.outbox.pending_jobs(),
                ),
            )
            try:
                first = server_frame.validate_json(await asyncio.wait_for(ws.recv(), 30))
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1008 and exc.rcvd.reason:
                    raise self._refused(exc.rcvd.reason) from exc
                raise
            except ValidationError as exc:
                raise websockets.WebSocketException(f"unexpected first message: {describe(exc)}") from exc
            if not isinstance(first, Welcome):
                raise websockets.WebSocketException(f"unexpected first message {first.type!r}")
            if first.credential:  # just enrolled: this agent's own credential from now on
                if self.credential_file is not None:
                    try:
                        credentials.save(self.credential_file, first.credential)
                    except FileExistsError as exc:
                        raise PermissionError(
                            f"{self.credential_file} appeared meanwhile: does another agent use this data dir?"
                        ) from exc
                self.credential = first.credential
            self.agent_id = first.agent_id
            self.heartbeat_interval = first.heartbeat_interval
            self._welcomed = True
            pending = "" if first.approved else ", waiting for an administrator's approval"
            log.info("connected to %s as agent %s (%s)%s", self.url, self.name, self.agent_id, pending)
            await self.outbox.connected(lambda m: self._send(ws, m))
            self.connected.set()
            self._offline.clear()
            tasks = [asyncio.create_task(self._ping(ws))]
            if self.shipper is not None:
                tasks.append(asyncio.create_task(self.shipper.run(lambda m: self._send(ws, m))))
            try:
                await self._receive(ws)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, OSError, websockets.WebSocketException):
                        await task

    async def _send(self, ws: ClientConnection, msg: BaseModel) -> None:
        await ws.send(msg.model_dump_json())

    async def _ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._send(ws, Ping())

    async def _receive(self, ws: ClientConnection) -> None:
        silence = self.heartbeat_interval * SILENT_INTERVALS
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), silence)
            except TimeoutError as exc:
                raise TimeoutError(f"no word from the server for {silence:g} s") from exc
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == 1008 and exc.rcvd.reason:
                    raise self._refused(exc.rcvd.reason) from exc  # e.g. revoked by an administrator
                raise
            try:
                msg = server_frame.validate_json(raw)
            except ValidationError as exc:
                await self._malformed(raw, describe(exc))
                continue
            if isinstance(msg, Ack):
                self.outbox.ack(msg.job_id, msg.seq)
            elif isinstance(msg, Assign):
                await self._assigned(msg.job)
            elif isinstance(msg, Cancel):
                if self._accepting == msg.job_id:
                    # taken back before it started: forgotten at once, so that an assignment of
                    # it here again, which may follow this cancel in the same read, is taken anew
                    with contextlib.suppress(ValueError):
                        self._taken.remove(msg.job_id)
                if self.runner is not None and self.runner.job_id == msg.job_id:
                    log.info("job %s cancelled by the server", msg.job_id)
                    await self.runner.cancel()
            elif isinstance(msg, Ping):
                await self._send(ws, Pong())

    async def _malformed(self, raw: str | bytes, error: str) -> None:
        """A frame from the server that does not validate: logged; an assignment ends with ``error``."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        kind = data.get("type") if isinstance(data, dict) else None
        log.error("the server sent a malformed %s frame, ignored: %s", kind or "", error)
        job = data.get("job") if isinstance(data, dict) and kind == "assign" else None
        if not isinstance(job, dict):
            return
        job_id, last_seq = job.get("id"), job.get("last_seq")
        if isinstance(job_id, int) and not isinstance(job_id, bool) and job_id > 0 and self.runner is None:
            # tell the server, or the job would wait for its timeout
            self.outbox.start_job(job_id, last_seq if isinstance(last_seq, int) else 0)
            reason = f"the agent could not read the assignment: {error}"
            await self.outbox.put(job_id, JobDone(result=Result.ERROR, reason=reason))

    async def _assigned(self, spec: JobSpec) -> None:
        if self._stopping:  # not accepted: the server's watchdog gives it to another agent
            log.info("job %s assigned while stopping: not taken", spec.id)
            return
        if spec.id in self._taken or (self._next is not None and self._next.id == spec.id):
            # the same assignment again (the server re-sends one that has not started yet)
            log.debug("job %s: assignment received again; already taken", spec.id)
            return
        if self.runner is None:
            self._start_job(spec)
        elif self.runner.job_id == spec.id:
            # taken back before it started (``cancel``, not a re-sent assignment: that one was
            # still remembered as taken), and assigned here again: accepted anew once the first
            # acceptance is over (its messages numbered after the first one's)
            log.info("job %s assigned again after it was taken back: taking it anew", spec.id)
            self._next = spec
        else:
            # The server gives this agent a job only when it considers the agent's job over
            # (cancelled, ended for a malformed message, declared lost): stop what is left of
            # it, then run the new one.
            log.info("job %s assigned while job %s ends: stopping that one first", spec.id, self.runner.job_id)
            self._next = spec
            await self.runner.cancel()

    def _start_job(self, spec: JobSpec) -> None:
        self._taken.append(spec.id)
        self._accepting = spec.id
        job = spec.model_dump(mode="json")
        self.outbox.start_job(spec.id, spec.last_seq)
        server = {"url": http_url(self.url), "token": spec.transfer_token}
        runner = JobRunner(job, self.outbox, self.name, str(self.data_dir), server=server, default_limits=self.limits)
        self.runner = runner
        with log_context(job_id=spec.id):  # the runner's task inherits it: its lines name the job
            log.info("job %s (%s) assigned: accepting it", job["id"], job.get("name"))
            runner.task = asyncio.create_task(self._run_job(runner))

    async def _run_job(self, runner: JobRunner) -> None:
        try:
            if await self._accept(runner):
                log.info("running job %s (%s)", runner.job_id, runner.job.get("name"))
                await runner.run()
        except Exception:
            log.exception("job %s crashed the runner", runner.job_id)
            await runner.send(JobDone(result=Result.ERROR, reason="agent-side crash"))
        finally:
            self.runner = None
            if self._next is not None and not self._stopping:
                spec, self._next = self._next, None
                self._start_job(spec)

    async def _accept(self, runner: JobRunner) -> bool:
        """Tell the server that this agent takes the job and wait for its acknowledgement, which
        says the job is still this agent's: the server answers ``cancel`` first when it took the
        assignment back (not accepted in time, see the watchdog), and the job then never runs here
        (nor is it remembered as taken: the server may assign it here again)."""
        seq = await self.outbox.put(runner.job_id, JobAccepted())
        acked = asyncio.ensure_future(self.outbox.acked(runner.job_id, seq))
        cancelled = asyncio.ensure_future(runner.cancelled_event.wait())
        try:
            await asyncio.wait({acked, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            acked.cancel()
            cancelled.cancel()
            if self._accepting == runner.job_id:
                self._accepting = None
        if runner.cancelled:
            log.info("job %s: taken back by the server before it started; not run", runner.job_id)
            with contextlib.suppress(ValueError):
                self._taken.remove(runner.job_id)
            return False
        return True


def reconnect_delay(backoff: float) -> float:
    """Between half and all of ``backoff`` (never more than ``BACKOFF_MAX``), so that agents
    cut off together do not all come back at the same instant."""
    return min(backoff, BACKOFF_MAX) * (0.5 + random.random() / 2)
