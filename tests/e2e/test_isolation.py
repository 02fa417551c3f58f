"""A job cannot reach Kraken's own secrets: a real `kraken serve` with its local agent runs a stage
whose step tries to read them all (the server's environment, the data dir's secret files, the
database, the agent's credential file, /proc/<pid>/environ) and reports what it could read.

SQLite only: the files of a SQLite data dir are what is under test.
"""

from __future__ import annotations

import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server, base_env, free_port, kraken

pytestmark = pytest.mark.e2e

ROOT = os.geteuid() == 0
SIGNING_KEY = "signing-key-marker-7f3c1d"  # the server's KRAKEN_SECRET_KEY
SMTP_PASSWORD = "smtp-password-marker-91ab"  # another secret the server has in its environment
CREDENTIAL = "agent-credential-marker-5e2f"  # a credential file the agent keeps (0600) in its data dir

PROBE = r"""
set +e
probe() { if cat "$2" > /dev/null 2>&1; then echo "READ-OK $1"; else echo "DENIED $1"; fi; }
listing() { if ls "$2" > /dev/null 2>&1; then echo "READ-OK $1"; else echo "DENIED $1"; fi; }
echo "STEP-UID $(id -u)"
probe server-environ /proc/SERVER_PID/environ
probe server-memory /proc/SERVER_PID/mem
probe agent-environ /proc/AGENT_PID/environ
probe agent-token DATA/agent-token
probe admin-password DATA/admin-password
probe secrets-key DATA/secrets.key
probe database DATA/kraken.db
probe database-wal DATA/kraken.db-wal
probe agent-credential AGENT/credential
listing data-dir DATA
listing agent-dir AGENT
if env | grep -q -e '^KRAKEN_' -e SIGNING -e SMTP; then echo "READ-OK environment"; else echo "DENIED environment"; fi
echo "STEP-ENV $(env | cut -d= -f1 | sort | tr '\n' ' ')"
"""

# what an unprivileged job user can never read; as the server's own user only the /proc files and
# the environment are out of reach (docs/security.md: run kraken serve as root, or use containers)
ALL = [
    "server-environ",
    "server-memory",
    "agent-environ",
    "agent-token",
    "admin-password",
    "secrets-key",
    "database",
    "database-wal",
    "agent-credential",
    "data-dir",
    "agent-dir",
    "environment",
]
SAME_USER = ["server-environ", "server-memory", "environment"]


@dataclass
class Serve:
    server: Server
    base: Path
    data: Path
    agent_dir: Path
    agent_pid: int


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    # a directory every user may enter (pytest's own tmp dirs are 0700, closed to the job user)
    base = Path(tempfile.mkdtemp(prefix="kraken-isolation-"))
    base.chmod(0o755)
    env = {
        "KRAKEN_ADMIN_PASSWORD": "",  # generated: written to admin-password
        "KRAKEN_AGENT_TOKEN": "",  # generated: written to agent-token
        "KRAKEN_SECRET_KEY": SIGNING_KEY,
        "KRAKEN_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    srv = Server(base, local_agent=True, name="data", **env)
    try:
        line = srv.proc.wait_line(lambda text: "local agent started (pid" in text, timeout=30)
        match = re.search(r"pid (\d+)", line)
        assert match is not None
        srv.proc.wait_line(lambda text: "connected to" in text and "agent local" in text, timeout=60)
        yield Serve(srv, base, base / "data", base / "data-agent", int(match.group(1)))
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def api(serve: Serve) -> AsyncIterator[Api]:
    client = Api(serve.server.url)
    await client.login(password=(serve.data / "admin-password").read_text().strip())
    yield client
    await client.close()


async def test_a_step_reads_none_of_krakens_secrets(serve: Serve, api: Api) -> None:
    project_id, branch_id = await api.project_with_branch("isolation")
    await api.post(f"/projects/{project_id}/secrets", {"name": "s", "value": "project-secret"}, expect=201)
    (serve.agent_dir / "credential").write_text(CREDENTIAL)
    (serve.agent_dir / "credential").chmod(0o600)
    targets = ["agent-token", "admin-password", "secrets.key", "kraken.db", "kraken.db-wal"]
    for name in targets:  # the step's failures mean something only if the files are there
        assert (serve.data / name).is_file(), name
    script = (
        PROBE.replace("SERVER_PID", str(serve.server.proc.proc.pid))
        .replace("AGENT_PID", str(serve.agent_pid))
        .replace("DATA", str(serve.data))
        .replace("AGENT", str(serve.agent_dir))
    )
    schema = {
        "jobs": [{"name": "probe", "steps": [{"tool": "shell", "script": script}], "environments": [{"system": "any"}]}]
    }
    code = f"def stage(ctx):\n    return {schema!r}\n"
    await api.stage(branch_id, "probe", code)
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=90)
    job = (await api.jobs(flow["runs"][0]["id"]))[0]
    log = await api.log(job["id"])
    assert job["result"] == "passed", log

    uid = int(re.search(r"STEP-UID (\d+)", log).group(1))  # type: ignore[union-attr]
    if ROOT:
        assert uid == pwd.getpwnam("kraken-job").pw_uid != 0, log  # an unprivileged user runs the step
    else:
        assert uid == os.geteuid()
    read = re.findall(r"READ-OK (\S+)", log)
    denied = re.findall(r"DENIED (\S+)", log)
    expected = ALL if ROOT else SAME_USER
    assert not set(expected) & set(read), f"the step read {read}:\n{log}"
    assert set(expected) <= set(denied), log
    for secret in (SIGNING_KEY, SMTP_PASSWORD, CREDENTIAL, (serve.data / "agent-token").read_text().strip()):
        assert secret not in log
    names = set(re.search(r"STEP-ENV (.*)", log).group(1).split())  # type: ignore[union-attr]
    assert {"PATH", "HOME", "KK_JOB_ID"} <= names and not any(n.startswith("KRAKEN_") for n in names), names


def test_the_data_dir_and_its_secrets_are_private(serve: Serve) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(serve.data) == 0o700
    for name in ("kraken.db", "agent-token", "admin-password"):
        assert mode(serve.data / name) == 0o600, name
    assert not serve.agent_dir.is_relative_to(serve.data)  # the local agent's data dir is outside
    assert mode(serve.agent_dir) == (0o711 if ROOT else 0o700)


def serve_refusal(tmp: Path, *args: str) -> str:
    argv = [sys.executable, "-m", "kraken", "serve", "--port", str(free_port()), *args]
    done = subprocess.run(argv, env=base_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr  # refused before anything starts
    return "".join(done.stderr.replace("│", "").split())  # the message as typer boxes it, without spaces


def said(message: str, output: str) -> bool:
    return "".join(message.split()) in output


def test_serve_refuses_a_local_agent_it_cannot_isolate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = serve_refusal(tmp_path, "--data-dir", str(data), "--local-agent-dir", str(data / "agent"))
    assert said("must be outside the data dir", out)
    if not ROOT:
        out = serve_refusal(tmp_path, "--data-dir", str(data), "--job-user", "x")
        assert said("only kraken serve running as root", out)
        return
    assert said("is root", serve_refusal(tmp_path, "--data-dir", str(data), "--job-user", "root"))
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    out = serve_refusal(tmp_path, "--data-dir", str(data), "--local-agent-dir", str(closed / "agent"))
    assert said("cannot reach the local agent's data dir", out) and said("is closed to it", out)


@pytest.mark.skipif(not ROOT, reason="the job user exists for kraken serve running as root")
async def test_as_root_from_a_closed_directory_the_sample_flow_passes(tmp_path: Path) -> None:
    """A data dir under a 0700 directory (as under /root): the local agent's dir moves where the
    job user can reach it, and the sample project's flow (a git clone of a repository that
    belongs to root, a build, two test configs) passes as the job user."""
    os.chmod(tmp_path, 0o700)
    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--sample-project"]
    proc = kraken(args, tmp_path, "serve")
    agent_dir: Path | None = None
    try:
        line = proc.wait_line(lambda text: "local agent started (pid" in text, timeout=60)
        agent_dir = Path(line.split("data dir ", 1)[1].rstrip(")"))
        assert agent_dir.parent == Path("/var/lib/kraken-agents") and agent_dir.name.startswith("data-")
        api = Api(f"http://127.0.0.1:{port}")
        await api.login()
        try:
            branch_id = (await api.get("/projects"))[0]["branches"][0]["id"]
            flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=120)
            logs = [await api.log(j["id"]) for r in flow["runs"] for j in await api.jobs(r["id"])]
            assert flow["result"] == "passed", "\n".join(logs)[-3000:]
        finally:
            await api.close()
    finally:
        proc.stop()
        if agent_dir is not None:
            shutil.rmtree(agent_dir, ignore_errors=True)


def agent_pid(srv: Server, start: int = 0) -> int:
    line = srv.proc.wait_line(lambda text: "local agent started (pid" in text, timeout=60, start=start)
    match = re.search(r"pid (\d+)", line)
    assert match is not None
    return int(match.group(1))


def wait_gone(pid: int, timeout: float = 20.0) -> None:
    """Wait for another process's end (a pidfd becomes readable when it exits)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        assert poller.poll(timeout * 1000), f"process {pid} still runs after {timeout} s"
    finally:
        os.close(fd)


def test_the_local_agent_is_supervised_and_ends_with_the_server(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="kraken-supervise-"))
    base.chmod(0o755)
    try:
        srv = Server(base, local_agent=True, name="data")
        try:
            first = agent_pid(srv)
            mark = len(srv.proc.lines)
            os.kill(first, signal.SIGKILL)  # it dies: kraken serve starts another one
            second = agent_pid(srv, start=mark)
            assert second != first
            srv.proc.wait_line(lambda text: "connected to" in text and "agent local" in text, start=mark)
            srv.proc.kill()  # even a killed server takes its agent along (its stdin ends)
            wait_gone(second)
        finally:
            srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_agent_job_user_is_checked_before_it_connects(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "kraken",
        "agent",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--data-dir",
        str(tmp_path / "a"),
        "--job-user",
        "root",
    ]
    done = subprocess.run(argv, env=base_env(), capture_output=True, text=True, timeout=60, check=False)
    out = "".join(done.stderr.replace("│", "").split())
    assert done.returncode == 2
    assert said("is root; give an unprivileged user" if ROOT else "only an agent running as root", out), out
