"""``kraken serve``'s local agent: a child process that ``kraken serve`` starts, restarts when it
dies, and stops with it.

The agent runs in its own process, with its own data dir outside the server's, an environment
of its own (the allow-list of ``executors.base.inherited_variables``, never the server's
``KRAKEN_*`` variables) and, when started as root, its jobs run as an unprivileged user.  It
connects to the server like any other agent.  Its settings, token included, reach it on its
standard input (never in its arguments or environment, which other users can read); the pipe
stays open while the server lives, so that the agent also stops when the server is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kraken.agent.executors.base import inherited_variables
from kraken.core.config import Settings
from kraken.observability.servicelog import configure

log = logging.getLogger(__name__)

RESTART_MIN = 0.5
RESTART_MAX = 10.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class LocalAgentConfig:
    server: str
    token: str
    name: str
    data_dir: str
    job_user: str | None = None
    groups: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    heartbeat_interval: float = 5.0
    log_level: str = "info"
    log_format: str = "text"
    service_logs: bool = False  # KRAKEN_SERVICE_LOGS_STORE: ship its own records to the server
    service_logs_level: str = "info"
    service_logs_buffer: int = 10_000


def child_environment() -> dict[str, str]:
    """The agent process's environment: the allow-list, plus where to find Kraken's code."""
    env = inherited_variables()
    for name in ("PYTHONPATH", "PYTHONUNBUFFERED"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


SHARED_AGENT_DIRS = Path("/var/lib/kraken-agents")  # as root, when the default beside the data dir is closed


def settle_local_agent(settings: Settings) -> None:
    """Before ``kraken serve`` starts: the local agent's data dir is outside the data dir (and
    made), and as root its jobs run as an existing unprivileged user (``kraken-job`` by default,
    created when missing) who can reach that dir.  ValueError says what is wrong."""
    from kraken.agent.executors.job_user import DEFAULT_JOB_USER, blocked_on_the_way, resolve_job_user

    agent_dir = settings.effective_local_agent_dir  # raises ValueError when inside the data dir
    if os.geteuid() != 0:
        if settings.job_user:
            raise ValueError(f"only kraken serve running as root can run jobs as user {settings.job_user!r}")
    else:
        user = resolve_job_user(settings.job_user or DEFAULT_JOB_USER)
        settings.job_user = user.name
        blocked = blocked_on_the_way(agent_dir.parent, user)
        if blocked is not None and settings.local_agent_dir is None:
            # e.g. a data dir under /root: the jobs' directories go where the job user can reach them
            data = settings.data_dir.resolve()
            digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
            settings.local_agent_dir = SHARED_AGENT_DIRS / f"{data.name}-{digest}"
            SHARED_AGENT_DIRS.mkdir(mode=0o755, parents=True, exist_ok=True)
            blocked = blocked_on_the_way(SHARED_AGENT_DIRS, user)
        if blocked is not None:
            raise ValueError(
                f"the job user {user.name!r} cannot reach the local agent's data dir "
                f"{settings.effective_local_agent_dir}: {blocked} is closed to it; choose --local-agent-dir"
            )
    path = settings.effective_local_agent_dir
    try:
        prepare_agent_dir(path, settings.job_user is not None)
    except OSError as exc:
        raise ValueError(
            f"cannot create the local agent's data dir {path}: {exc.strerror}; choose --local-agent-dir"
        ) from exc


def prepare_agent_dir(path: Path, job_user: bool) -> None:
    """The agent's data dir: its own (0700), or traversable but not listable (0711) when a job
    user must reach its job directories inside."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o711 if job_user else 0o700)


class LocalAgentProcess:
    def __init__(self, config: LocalAgentConfig) -> None:
        self.config = config
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="kraken-local-agent")

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kraken",
            "local-agent",
            stdin=asyncio.subprocess.PIPE,
            env=child_environment(),
            start_new_session=True,  # the terminal's Ctrl-C reaches the server, which stops it
        )
        assert proc.stdin is not None
        proc.stdin.write(orjson.dumps(asdict(self.config)) + b"\n")
        await proc.stdin.drain()
        return proc

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_MIN
        while not self._stopping:
            began = loop.time()
            try:
                self.proc = await self._spawn()
            except OSError as exc:
                log.error("cannot start the local agent: %s", exc)
            else:
                log.info("local agent started (pid %d, data dir %s)", self.proc.pid, self.config.data_dir)
                code = await self.proc.wait()
                if self._stopping:
                    break
                log.warning("the local agent exited with code %s; restarting", code)
            if loop.time() - began > 60:
                delay = RESTART_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)

    async def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop the agent (its running job's processes go with it) and wait for it."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()  # end of input: the agent stops
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# ---------------------------------------------------------------- inside the child process


def read_config(line: bytes) -> LocalAgentConfig:
    data: dict[str, Any] = orjson.loads(line)
    return LocalAgentConfig(**data)


async def run_child() -> None:
    """``kraken local-agent``: read the settings from stdin, run the agent until stdin ends."""
    from kraken.agent.client import Agent, ShipLogs
    from kraken.agent.executors.job_user import set_job_user

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = read_config(await reader.readline())
    configure("agent", config.log_level, config.log_format)
    user = set_job_user(config.job_user)
    if user is not None:
        log.info("the local agent runs jobs as user %s (uid %d)", user.name, user.uid)
    agent = Agent(
        config.server,
        config.token,
        name=config.name,
        data_dir=Path(config.data_dir),
        groups=config.groups,
        labels=config.labels,
        executors=["direct"],
        heartbeat_interval=config.heartbeat_interval,
        keep_credential=False,  # the server vouches for it with a token of its own at each start
        ship_logs=ShipLogs(config.service_logs_level, config.service_logs_buffer) if config.service_logs else None,
    )
    task = asyncio.create_task(agent.run_forever())

    async def until_eof() -> None:
        while await reader.read(4096):
            pass
        await agent.stop("its server stops")  # kills a running job's processes, tells the server (bounded)
        task.cancel()

    watcher = asyncio.create_task(until_eof())
    with contextlib.suppress(asyncio.CancelledError):
        await task
    watcher.cancel()
