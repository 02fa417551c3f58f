"""Benchmark: a fleet of simulated agents against real scale-out roles (issue #14, "Scale, measured").

Starts a real ``kraken server`` (one replica, later two), ``kraken controller`` and ``kraken worker``
on a fresh PostgreSQL database (``kraken_fleet_<random>``, dropped at the end) and a private
``redis-server``, then connects N simulated agents: asyncio websocket clients in this process that
speak the real agent protocol (``kraken.protocol``): ``hello`` with the shared token (the server
runs with ``auto_approve``), then their own credential on every reconnect; heartbeats both ways;
an assignment is answered with ``job_accepted`` and, once that is acknowledged, with
``step_started``/``step_done`` for each step and ``job_done`` (passed) at once: a job costs the
control plane what a real one does, minus its log lines. They reconnect like ``kraken agent``
(``kraken.agent.client.reconnect_delay``: 0.2 s doubling to 5 s, jittered, reset after a welcome).

Parts (JSON on stdout):

- ``connect``: N agents connecting to one replica (at most ``--connect-concurrency`` at a time).
- ``idle``: with N idle agents, a trickle of one-job flows: queued -> assigned (p50/p99/max), from
  the database (``job.assigned - job.created``) and to the agent's receipt of the assignment.
- ``queue``: M jobs (flows of up to ``--flow-size`` jobs, triggered together) run by the N agents:
  queued -> assigned, jobs/s (first job created to last job finished), CPU and peak RSS of the
  replica and of the controller.
- ``restart``: ``kill -9`` of the replica and a restart on the same port: when it listens again,
  when all N agents are back (welcomed), and when a new job is assigned (full service).
- ``replicas``: a second replica; the agents reconnect N/2 to each, and M jobs again: jobs/s and
  the ratio to the one-replica figure.

File descriptors: every agent is one socket here and one in the replica (plus the replica's
database and Redis connections): the bench raises its soft ``RLIMIT_NOFILE`` to the hard limit
before it starts anything, and the roles it starts inherit it.

    PYTHONPATH=$PWD .venv/bin/python bench/fleet.py [--agents 1000] [--jobs 10000] \\
        [--parts idle,queue,restart,replicas]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import websockets
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kraken.agent.client import BACKOFF_MAX, BACKOFF_MIN, reconnect_delay
from kraken.protocol import (
    Ack,
    Assign,
    Batch,
    Cancel,
    Hello,
    JobAccepted,
    JobDone,
    JobMessageBase,
    Ping,
    Pong,
    Result,
    StepDone,
    StepResult,
    StepStarted,
    Welcome,
    server_frame,
)
from tests.conftest import PG_ADMIN_DSN
from tests.support.procs import ADMIN_PASSWORD, AGENT_TOKEN, Proc, free_port, kraken
from tests.support.redis_server import RedisServer

CAPABILITIES = {"executors": {"direct": {}}, "systems": ["fleet"], "os": "simulated", "cpus": 1}
ROLE_ENV = {
    "KRAKEN_AUTO_APPROVE": "true",
    "KRAKEN_HEARTBEAT_INTERVAL": "5",
    "KRAKEN_AGENT_TIMEOUT": "20",
    "KRAKEN_WATCHDOG_INTERVAL": "2",
    "KRAKEN_LOG_LEVEL": "warning",
}
FAN_OUT = """
def stage(ctx):
    return {"jobs": [{"name": "f%d" % i, "steps": [{"tool": "shell", "cmd": "true"}],
                      "environments": [{"system": "any"}]} for i in range(N)]}
"""


# ---------------------------------------------------------------- simulated agents


class Fleet:
    """The simulated agents and what they saw: when each assignment arrived, who is connected."""

    def __init__(self) -> None:
        self.agents: list[SimAgent] = []
        self.received: dict[int, float] = {}  # job id -> wall time its first assignment arrived
        self.runs: dict[int, int] = {}  # job id -> how many times an agent ran it
        self.acked: dict[tuple[int, str], float] = {}  # (job id, "accepted" | "done") -> when acknowledged
        self.idle_gaps: list[float] = []  # an agent's job_done acknowledged -> its next assignment received
        self.online = 0
        self.changed = asyncio.Condition()
        self.gate = asyncio.Semaphore(50)  # first connections at most this many at a time
        self.errors: collections.Counter[str] = collections.Counter()  # unexpected errors of the agents' sessions

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(pred)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{what}: not within {timeout:g} s (online {self.online}/{len(self.agents)})") from None


class SimAgent:
    """One agent: a websocket, the protocol, jobs that end at once."""

    def __init__(self, fleet: Fleet, name: str, url: str) -> None:
        self.fleet, self.name, self.url = fleet, name, url
        self.credential: str | None = None
        self.heartbeat = 5.0
        self.welcomes = 0
        self.first = True
        self.stopping = False
        self.seq: dict[int, int] = {}  # job id -> last sequence number used
        self.unacked: dict[int, list[JobMessageBase]] = {}
        self.accepting: dict[int, int] = {}  # job id -> seq of its job_accepted, not acknowledged yet
        self.ending: dict[int, int] = {}  # job id -> seq of its job_done, not acknowledged yet
        self.steps: dict[int, list[int]] = {}
        self.taken: set[int] = set()
        self.last_done: float | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.stopping = False
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task

    async def run(self) -> None:
        backoff = BACKOFF_MIN
        while not self.stopping:
            welcomed = self.welcomes
            try:
                await self.session()
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            except Exception as exc:  # anything else is counted (and reported), and the agent goes on
                self.fleet.errors[repr(exc)[:120]] += 1
            if self.welcomes != welcomed:
                backoff = BACKOFF_MIN
            await asyncio.sleep(reconnect_delay(backoff))
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def session(self) -> None:
        headers = {"Authorization": f"Bearer {self.credential or AGENT_TOKEN}"}
        gate = self.fleet.gate if self.first else contextlib.nullcontext()
        async with contextlib.AsyncExitStack() as stack:
            async with gate:
                ws = await stack.enter_async_context(
                    connect(
                        self.url,
                        additional_headers=headers,
                        max_size=None,
                        ping_interval=None,
                        open_timeout=30,
                        close_timeout=2,
                        compression=None,
                    )
                )
                await self.send(ws, Hello(name=self.name, capabilities=CAPABILITIES, pending_jobs=list(self.unacked)))
                welcome = server_frame.validate_json(await asyncio.wait_for(ws.recv(), 30))
            if not isinstance(welcome, Welcome):  # as kraken agent: give the connection up
                raise websockets.WebSocketException(f"unexpected first frame {welcome.type!r}")
            await self.welcomed(ws, welcome)

    async def welcomed(self, ws: ClientConnection, welcome: Welcome) -> None:
        if welcome.credential:
            self.credential = welcome.credential
        self.first = False
        self.heartbeat = welcome.heartbeat_interval
        self.welcomes += 1
        self.fleet.online += 1
        await self.fleet.notify()
        pinger = asyncio.create_task(self.ping(ws))
        try:
            pending = [m for msgs in self.unacked.values() for m in msgs]
            if pending:
                await self.send(ws, Batch(messages=pending))
            await self.receive(ws)
        finally:
            pinger.cancel()
            self.fleet.online -= 1
            await self.fleet.notify()

    async def send(self, ws: ClientConnection, msg: Any) -> None:
        await ws.send(msg.model_dump_json())

    async def ping(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            await self.send(ws, Ping())

    async def put(self, ws: ClientConnection, job_id: int, msgs: list[JobMessageBase]) -> int:
        """Number the job's messages, keep them until acknowledged, send them as one batch."""
        numbered = []
        for m in msgs:
            self.seq[job_id] += 1
            numbered.append(m.model_copy(update={"job_id": job_id, "seq": self.seq[job_id]}))
        self.unacked.setdefault(job_id, []).extend(numbered)
        await self.send(ws, Batch(messages=numbered))
        return self.seq[job_id]

    async def receive(self, ws: ClientConnection) -> None:
        while True:
            msg = server_frame.validate_json(await asyncio.wait_for(ws.recv(), self.heartbeat * 2))
            if isinstance(msg, Assign):
                job = msg.job
                if job.id in self.taken:
                    continue  # a re-sent assignment
                now = time.time()
                self.fleet.received.setdefault(job.id, now)
                if self.last_done is not None:
                    self.fleet.idle_gaps.append(now - self.last_done)
                    self.last_done = None
                self.taken.add(job.id)
                # numbered on from its earlier acceptance, if any (as kraken agent's outbox does)
                self.seq[job.id] = max(self.seq.get(job.id, 0), job.last_seq)
                self.steps[job.id] = [s.index for s in job.steps]
                self.accepting[job.id] = await self.put(ws, job.id, [JobAccepted()])
            elif isinstance(msg, Ack):
                left = [m for m in self.unacked.get(msg.job_id, []) if m.seq > msg.seq]
                if left:
                    self.unacked[msg.job_id] = left
                else:
                    self.unacked.pop(msg.job_id, None)
                accepted = self.accepting.get(msg.job_id)
                if accepted is not None and msg.seq >= accepted:
                    del self.accepting[msg.job_id]
                    self.fleet.acked[msg.job_id, "accepted"] = time.time()
                    await self.run_job(ws, msg.job_id)
                elif msg.seq >= self.ending.get(msg.job_id, 1 << 62):
                    del self.ending[msg.job_id]
                    self.fleet.acked[msg.job_id, "done"] = self.last_done = time.time()
            elif isinstance(msg, Cancel) and self.accepting.pop(msg.job_id, None) is not None:
                # taken back before it started (as kraken agent: not remembered as taken, the
                # server may assign it here again)
                self.taken.discard(msg.job_id)
                self.steps.pop(msg.job_id, None)
            elif isinstance(msg, Ping):
                await self.send(ws, Pong())

    async def run_job(self, ws: ClientConnection, job_id: int) -> None:
        """A trivial job, over at once: every step started and passed, the job passed."""
        self.fleet.runs[job_id] = self.fleet.runs.get(job_id, 0) + 1
        msgs: list[JobMessageBase] = []
        for index in self.steps.pop(job_id):
            msgs += [StepStarted(step_index=index), StepDone(step_index=index, result=StepResult.PASSED, exit_code=0)]
        msgs.append(JobDone(result=Result.PASSED))
        self.ending[job_id] = await self.put(ws, job_id, msgs)


# ---------------------------------------------------------------- roles, database, measurements


class Role:
    """A kraken role subprocess (server replicas keep their port across a restart)."""

    def __init__(self, work: Path, role: str, name: str, db: str, redis: str, port: int | None = None) -> None:
        self.work, self.role, self.name, self.db, self.redis, self.port = work, role, name, db, redis, port
        self.proc: Proc | None = None
        self.restarts = 0

    def start(self) -> float:
        """Start it; returns the seconds until it is ready."""
        t0 = time.perf_counter()
        args = [self.role, "--database-url", self.db, "--redis-url", self.redis]
        if self.port is not None:
            args += ["--port", str(self.port), "--data-dir", str(self.work / self.name)]
        self.proc = kraken(args, self.work, f"{self.name}-{self.restarts}", **ROLE_ENV)
        self.restarts += 1
        ready = "listening on" if self.port is not None else f"kraken {self.role}: running"
        self.proc.wait_line(lambda line: ready in line, timeout=120)
        print(f"fleet: {self.name} ({self.role}) pid {self.proc.proc.pid}", file=sys.stderr, flush=True)
        return time.perf_counter() - t0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.ps.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class Usage:
    """CPU seconds (and share of one core) of some roles over a part of the bench."""

    def __init__(self, roles: dict[str, Role]) -> None:
        self.roles = roles
        self.t0 = time.perf_counter()
        self.cpu0 = {k: r.cpu() for k, r in roles.items()}

    def report(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        out: dict[str, Any] = {}
        for k, r in self.roles.items():
            cpu = r.cpu() - self.cpu0[k]
            out[k] = {
                "cpu_s": round(cpu, 1),
                "cpu_pct_of_core": round(100 * cpu / wall),
                "peak_rss_mb": r.peak_rss_mb(),
            }
        return out


class PgWaits:
    """What the bench database's sessions do, sampled from ``pg_stat_activity`` every ``every`` s:
    the share of samples per (state, wait event), the busiest first (``Lock``: row or transaction
    locks; ``Client``: idle in a transaction, the role holding it is busy elsewhere)."""

    def __init__(self, dsn: str, dbname: str, every: float = 0.25) -> None:
        self.dsn, self.dbname, self.every = dsn, dbname, every
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'on CPU') AS w, count(*) AS n"
                    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
                    " AND state <> 'idle' GROUP BY 1, 2",
                    self.dbname,
                )
                self.samples += 1
                for r in rows:
                    self.counts[f"{r['state']} / {r['w']}"] += r["n"]
                await asyncio.sleep(self.every)
        finally:
            await conn.close()

    async def report(self) -> dict[str, Any]:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        n = max(1, self.samples)
        top = {k: round(v / n, 2) for k, v in self.counts.most_common(8)}
        return {"samples": self.samples, "mean_sessions_per_sample": top}


class PySpy:
    """``py-spy record`` of some roles over a part (``--py-spy DIR``): raw folded stacks per role."""

    def __init__(self, out: Path | None, part: str, roles: dict[str, Role]) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.out, self.part, self.roles = out, part, roles

    async def start(self) -> None:
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        for name, role in self.roles.items():
            path = self.out / f"{self.part}-{name}.txt"
            cmd = ["py-spy", "record", "--pid", str(role.ps.pid), "--rate", "50", "--format", "raw"]
            cmd += ["--nonblocking", "-o", str(path)]
            exe = Path(sys.executable).parent / "py-spy"
            if exe.exists():
                cmd[0] = str(exe)
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                )
            )

    async def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 30)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(pct(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
    }


async def create_database() -> str:
    name = f"kraken_fleet_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class Jobs:
    """Triggers flows through the API and reads the jobs' times from the database."""

    def __init__(self, api_base: str, dsn: str) -> None:
        self.api_base, self.dsn = api_base, dsn
        self.http = httpx.AsyncClient(base_url=api_base + "/api", timeout=120)
        self.branches: dict[int, int] = {}  # jobs per flow -> branch id
        self.db: asyncpg.Connection | None = None
        self.profile_dir: Path | None = None

    async def open(self) -> None:
        r = await self.http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        self.db = await asyncpg.connect(self.dsn)

    async def close(self) -> None:
        await self.http.aclose()
        if self.db is not None:
            await self.db.close()

    async def branch(self, size: int) -> int:
        if size not in self.branches:
            p = (await self.http.post("/projects", json={"name": f"fleet-{size}"})).json()
            branch = {"name": "main", "branch_name": "main"}
            b = (await self.http.post(f"/projects/{p['id']}/branches", json=branch)).json()
            r = await self.http.post(
                f"/branches/{b['id']}/stages", json={"name": "fan", "schema_code": FAN_OUT.replace("N", str(size))}
            )
            assert r.status_code == 201, r.text
            self.branches[size] = b["id"]
        return self.branches[size]

    async def trigger(self, size: int) -> int:
        r = await self.http.post(f"/branches/{await self.branch(size)}/flows", json={"kind": "ci"})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def max_id(self) -> int:
        assert self.db is not None
        return int(await self.db.fetchval("SELECT coalesce(max(id), 0) FROM job"))

    async def rows(self, after: int) -> list[asyncpg.Record]:
        assert self.db is not None
        return list(
            await self.db.fetch(
                "SELECT id, state, result, extract(epoch FROM created) AS created,"
                " extract(epoch FROM assigned) AS assigned, extract(epoch FROM finished) AS finished"
                " FROM job WHERE id > $1 ORDER BY id",
                after,
            )
        )

    async def wait_done(self, after: int, count: int, timeout: float) -> list[asyncpg.Record]:
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.rows(after)
            if len(rows) >= count and all(r["state"] == "completed" for r in rows):
                return rows
            if time.monotonic() > deadline:
                done = sum(r["state"] == "completed" for r in rows)
                raise TimeoutError(f"{done}/{count} jobs completed (of {len(rows)} created) within {timeout:g} s")
            await asyncio.sleep(0.5)


def latencies(rows: list[asyncpg.Record], fleet: Fleet) -> dict[str, Any]:
    """Queued -> assigned, and where a job's time goes once assigned (the profile of the control plane)."""
    received, acked = fleet.received, fleet.acked
    ids = [r["id"] for r in rows if r["id"] in received]
    db = [float(r["assigned"] - r["created"]) for r in rows if r["assigned"] is not None]
    agent = [received[r["id"]] - float(r["created"]) for r in rows if r["id"] in received]
    out = {"queued_to_assigned_db": summary_ms(db), "queued_to_agent_received": summary_ms(agent)}
    delivery = [received[r["id"]] - float(r["assigned"]) for r in rows if r["id"] in received]
    accept = [acked[i, "accepted"] - received[i] for i in ids if (i, "accepted") in acked]
    done = [acked[i, "done"] - acked[i, "accepted"] for i in ids if (i, "done") in acked and (i, "accepted") in acked]
    out["assigned_to_agent"] = summary_ms(delivery)
    out["job_accepted_round_trip"] = summary_ms(accept)
    out["job_done_round_trip"] = summary_ms(done)
    if fleet.idle_gaps:
        out["job_done_acked_to_next_assignment"] = summary_ms(fleet.idle_gaps)
    return out


def check(rows: list[asyncpg.Record], fleet: Fleet) -> dict[str, Any]:
    """What went wrong (reported, not raised: an overloaded control plane is a finding)."""
    bad = collections.Counter(f"{r['result']}" for r in rows if r["result"] != "passed")
    twice = [job for job, n in fleet.runs.items() if n > 1]
    return {"not_passed": dict(bad), "run_twice": len(twice)}


# ---------------------------------------------------------------- parts


async def part_connect(fleet: Fleet, n: int, urls: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    for i in range(n):
        agent = SimAgent(fleet, f"fleet-{i:05d}", urls[i % len(urls)].replace("http://", "ws://") + "/api/agent/ws")
        fleet.agents.append(agent)
        agent.start()
    await fleet.wait_for(lambda: fleet.online == n, 600, "all agents connected")
    return {"agents": n, "all_connected_s": round(time.perf_counter() - t0, 2)}


async def part_idle(fleet: Fleet, jobs: Jobs, count: int, interval: float) -> dict[str, Any]:
    after = await jobs.max_id()
    for _ in range(count):
        await jobs.trigger(1)
        await asyncio.sleep(interval)
    load0 = load_average()
    rows = await jobs.wait_done(after, count, 120)
    return {
        "jobs": count,
        "interval_s": interval,
        **latencies(rows, fleet),
        **check(rows, fleet),
        "load_average_before_after": [load0, load_average()],
    }


async def part_queue(fleet: Fleet, jobs: Jobs, total: int, flow_size: int, roles: dict[str, Role]) -> dict[str, Any]:
    after = await jobs.max_id()
    await jobs.branch(flow_size)
    for agent in fleet.agents:
        agent.last_done = None
    fleet.idle_gaps.clear()
    usage = Usage(roles)
    waits = PgWaits(jobs.dsn, jobs.dsn.rsplit("/", 1)[1])
    waits.start()
    spy = PySpy(jobs.profile_dir, f"queue-{len(roles)}", roles)
    await spy.start()
    load0 = load_average()
    sizes = [flow_size] * (total // flow_size) + ([total % flow_size] if total % flow_size else [])
    sem = asyncio.Semaphore(4)

    async def trigger(size: int) -> None:
        async with sem:
            await jobs.trigger(size)

    await asyncio.gather(*(trigger(s) for s in sizes))
    try:
        rows = await jobs.wait_done(after, total, max(600, total / 5))
    finally:
        await spy.stop()
        pg = await waits.report()
    used = usage.report()
    span = max(float(r["finished"]) for r in rows) - min(float(r["created"]) for r in rows)
    per_agent = len({a.name for a in fleet.agents if a.taken})
    return {
        "jobs": total,
        "flows": len(sizes),
        "seconds": round(span, 2),
        "jobs_per_s": round(total / span, 1),
        "agents_used": per_agent,
        **latencies(rows, fleet),
        **check(rows, fleet),
        "roles": used,
        "postgresql": pg,
        "load_average_before_after": [load0, load_average()],
    }


async def part_restart(fleet: Fleet, jobs: Jobs, replica: Role, roles: dict[str, Role]) -> dict[str, Any]:
    n = len(fleet.agents)
    assert replica.proc is not None
    t0, wall0 = time.perf_counter(), time.time()
    replica.proc.kill()
    await fleet.wait_for(lambda: fleet.online == 0, 60, "agents saw the replica die")
    lost_s = time.perf_counter() - t0
    listening = await asyncio.to_thread(replica.start)
    usage = Usage({"server": replica})
    await fleet.wait_for(lambda: fleet.online == n, 300, "all agents back after the restart")
    all_back = time.perf_counter() - t0
    after = await jobs.max_id()
    await jobs.trigger(1)
    rows = await jobs.wait_done(after, 1, 120)
    job_id = rows[0]["id"]
    full = fleet.received.get(job_id, time.time()) - wall0
    return {
        "load_average": load_average(),
        "agents": n,
        "all_agents_saw_the_loss_s": round(lost_s, 2),
        "replica_listening_s": round(listening + lost_s, 2),
        "all_agents_back_s": round(all_back, 2),
        "new_job_assigned_s": round(full, 2),
        "roles": usage.report(),
    }


async def part_replicas(
    fleet: Fleet, jobs: Jobs, total: int, flow_size: int, urls: list[str], roles: dict[str, Role]
) -> dict[str, Any]:
    n = len(fleet.agents)
    await asyncio.gather(*(agent.stop() for agent in fleet.agents))
    t0 = time.perf_counter()
    for i, agent in enumerate(fleet.agents):
        agent.url = urls[i % 2].replace("http://", "ws://") + "/api/agent/ws"
        agent.start()
    await fleet.wait_for(lambda: fleet.online == n, 300, "all agents connected to two replicas")
    connected = time.perf_counter() - t0
    result = await part_queue(fleet, jobs, total, flow_size, roles)
    return {"agents_per_replica": n // 2, "all_connected_s": round(connected, 2), **result}


# ---------------------------------------------------------------- main


def raise_nofile(agents: int) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = 2 * agents + 500  # this process: one socket per agent; the replica: the same + pools
    if hard < need:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {need} needed for {agents} agents: raise it (ulimit -Hn)")
    return {"soft": hard, "hard": hard}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)  # clean up on a timeout
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {"agents": args.agents, "cores": os.cpu_count(), "nofile": raise_nofile(args.agents)}
    dbname = await create_database()
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname
    db_url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    out["database"] = dbname
    fleet = Fleet()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = RedisServer(work)
        redis.start()
        s1 = Role(work, "server", "s1", db_url, redis.url, free_port())
        s2 = Role(work, "server", "s2", db_url, redis.url, free_port())
        ctl = Role(work, "controller", "ctl", db_url, redis.url)
        wrk = Role(work, "worker", "wrk", db_url, redis.url)
        started: list[Role] = []
        jobs = Jobs(s1.url, dsn)
        jobs.profile_dir = args.py_spy
        try:
            for role in (s1, ctl, wrk):
                role.start()
                started.append(role)
            await jobs.open()
            out["connect"] = await part_connect(fleet, args.agents, [s1.url])
            roles = {"server": s1, "controller": ctl}
            if "idle" in parts:
                out["idle"] = await part_idle(fleet, jobs, args.trickle, args.trickle_interval)
            if "queue" in parts:
                out["queue"] = await part_queue(fleet, jobs, args.jobs, args.flow_size, roles)
            if "restart" in parts:
                out["restart"] = await part_restart(fleet, jobs, s1, roles)
            if "replicas" in parts:
                s2.start()
                started.append(s2)
                rep = await part_replicas(
                    fleet,
                    jobs,
                    args.jobs,
                    args.flow_size,
                    [s1.url, s2.url],
                    {"server1": s1, "server2": s2, "controller": ctl},
                )
                out["two_replicas"] = rep
                if "queue" in out:
                    out["two_replicas"]["throughput_ratio"] = round(rep["jobs_per_s"] / out["queue"]["jobs_per_s"], 2)
        except Exception as exc:  # what was measured so far is still printed, with what went wrong
            out["failed"] = f"{type(exc).__name__}: {exc}"
        finally:
            out["agent_errors"] = dict(fleet.errors)
            await asyncio.gather(*(agent.stop() for agent in fleet.agents))
            await jobs.close()
            for role in reversed(started):
                role.stop()
            redis.stop()
            if not args.keep_db:
                await drop_database(dbname)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=10_000, help="jobs queued at once in 'queue' and 'replicas'")
    ap.add_argument("--flow-size", type=int, default=500, help="jobs per flow in 'queue' and 'replicas'")
    ap.add_argument("--trickle", type=int, default=100, help="one-job flows in 'idle'")
    ap.add_argument("--trickle-interval", type=float, default=0.2)
    ap.add_argument("--parts", default="idle,queue,restart,replicas")
    ap.add_argument("--keep-db", action="store_true", help="leave the database for a look afterwards")
    ap.add_argument("--py-spy", metavar="DIR", help="record py-spy profiles of the roles in the queue parts here")
    args = ap.parse_args()
    args.py_spy = Path(args.py_spy).resolve() if args.py_spy else None
    out = asyncio.run(run(args))
    print(json.dumps(out, indent=2))
    if "failed" in out:
        raise SystemExit(f"fleet: failed: {out['failed']}")


if __name__ == "__main__":
    main()
