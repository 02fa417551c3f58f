"""Real Kraken processes for end-to-end tests: servers, controllers, workers, agents."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ADMIN_PASSWORD = "test-admin-pw"
AGENT_TOKEN = "test-agent-token-0123456789"
SECRET_KEY = "test-signing-key-0123456789"  # pass as KRAKEN_SECRET_KEY to mint job transfer tokens in a test


def transfer_token(job_id: int, agent_id: int, secret_key: str = SECRET_KEY, ttl: float = 600.0) -> str:
    """A job transfer token as the server issues it with an assignment (for probing the endpoints)."""
    from kraken.artifacts.tokens import issue

    return issue(secret_key, job_id, agent_id, ttl)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A subprocess whose combined output is kept and can be waited on, line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self.lines: list[str] = []
        self.approver: threading.Thread | None = None  # agents: approves the enrolled agent (start_agent)
        self.approve_error: BaseException | None = None
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pred: Callable[[str], bool], timeout: float = 30.0, start: int = 0) -> str:
        """Block until an output line (from index ``start`` on) satisfies pred."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"{self.argv[2:4]} exited ({self.proc.returncode}):\n" + self.output[-4000:])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching line within {timeout}s; output:\n" + self.output[-4000:])
                self._cond.wait(left)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKEN_")}
    env.update(
        KRAKEN_ADMIN_PASSWORD=ADMIN_PASSWORD,
        KRAKEN_AGENT_TOKEN=AGENT_TOKEN,
        KRAKEN_HEARTBEAT_INTERVAL="1",
        KRAKEN_AGENT_TIMEOUT="4",
        KRAKEN_WATCHDOG_INTERVAL="0.5",
        KRAKEN_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def kraken(args: list[str], workdir: Path, name: str, **env: str) -> Proc:
    return Proc([sys.executable, "-m", "kraken", *args], base_env(**env), workdir / f"{name}.log")


class Server:
    def __init__(
        self,
        workdir: Path,
        *,
        role: str = "serve",
        database_url: str | None = None,
        redis_url: str | None = None,
        local_agent: bool = False,
        name: str = "server",
        port: int | None = None,
        **env: str,
    ) -> None:
        # A free port found here can be taken before the server binds it (another test's outgoing
        # connection gets it as its ephemeral port): a port we chose is chosen again then.
        for attempt in range(1, 4):
            self.port = port or free_port()  # given: the caller needs the URL before the start (KRAKEN_PUBLIC_URL)
            self.url = f"http://127.0.0.1:{self.port}"
            args = [role, "--port", str(self.port), "--data-dir", str(workdir / name)]
            if database_url:
                args += ["--database-url", database_url]
            if redis_url:
                args += ["--redis-url", redis_url]
            if role == "serve" and not local_agent:
                args.append("--no-local-agent")
            self.proc = kraken(args, workdir, name, **env)
            try:
                self.proc.wait_line(lambda line: "listening on" in line, timeout=60)
                return
            except RuntimeError:
                if port is not None or attempt == 3 or "address already in use" not in self.proc.output:
                    raise

    def stop(self) -> None:
        self.proc.stop()


PENDING = re.compile(r"as agent .* \((\d+)\), waiting for an administrator's approval")


def start_agent(
    workdir: Path,
    server_url: str,
    name: str,
    *extra: str,
    token: str = AGENT_TOKEN,
    approve: bool = True,
    api_url: str | None = None,
    **env: str,
) -> Proc:
    """``kraken agent`` that enrolls with ``token``; with ``approve``, a thread approves it through the
    API (at ``api_url``, default ``server_url``) as an administrator would, once it has connected
    (``wait_agent_connected`` waits for that)."""
    args = ["agent", "--server", server_url, "--token", token, "--name", name, "--data-dir", str(workdir / name)]
    proc = kraken([*args, *extra], workdir, f"agent-{name}", **env)
    if approve:
        proc.approver = threading.Thread(target=_approve_when_enrolled, args=(proc, api_url or server_url), daemon=True)
        proc.approver.start()
    return proc


def approve_agent(server_url: str, agent_id: int) -> dict[str, object]:
    """``POST /api/agents/{id}/approve`` as the administrator."""
    with httpx.Client(base_url=server_url.rstrip("/") + "/api", timeout=30) as http:
        r = http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        r.raise_for_status()
        r = http.post(f"/agents/{agent_id}/approve", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


def _approve_when_enrolled(proc: Proc, server_url: str) -> None:
    try:
        line = proc.wait_line(lambda line: "connected to" in line, timeout=120)
    except (TimeoutError, RuntimeError):
        return  # never connected: the test's own wait says so
    try:
        m = PENDING.search(line)
        if m is not None:  # enrolled just now (else it came back with its credential, approved)
            approve_agent(server_url, int(m.group(1)))
    except BaseException as exc:
        proc.approve_error = exc


def wait_agent_connected(proc: Proc, timeout: float = 30.0, start: int = 0) -> None:
    """The agent connected (and, when start_agent approves it, is approved)."""
    proc.wait_line(lambda line: "connected to" in line, timeout=timeout, start=start)
    if proc.approver is not None:
        proc.approver.join(timeout)
        if proc.approve_error is not None:
            raise proc.approve_error


async def agent_connected(proc: Proc, timeout: float = 30.0, start: int = 0) -> None:
    """Like wait_agent_connected, without blocking the event loop (for tests that serve in-loop)."""
    import asyncio

    await asyncio.to_thread(wait_agent_connected, proc, timeout, start)
