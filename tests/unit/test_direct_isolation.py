"""The direct executor keeps the agent's own environment and files away from a job's steps."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kraken.agent.executors.base import ExecutorError, JobEnvironment
from kraken.agent.executors.direct import DirectExecutor
from kraken.agent.executors.job_user import resolve_job_user, set_job_user
from kraken.core.files import private_dir, private_file, write_new_secret_file

ROOT = os.geteuid() == 0


async def run(executor: DirectExecutor, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line)

    res = await executor.exec(argv, env=env, timeout=30, on_line=keep)
    assert res.exit_code is not None
    return lines


def job_env(data_dir: Path, job_id: int = 7) -> JobEnvironment:
    return JobEnvironment(job_id=job_id, agent_name="a1", system="any", data_dir=str(data_dir))


async def test_a_step_gets_the_allow_list_kk_variables_and_its_own_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRAKEN_AGENT_TOKEN", "agent-token-value")
    monkeypatch.setenv("KRAKEN_ADMIN_PASSWORD", "admin-password-value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-value")
    monkeypatch.setenv("LC_TIME", "C")
    executor = DirectExecutor(job_env(tmp_path))
    await executor.start()
    try:
        lines = await run(executor, ["env"], env={"MINE": "1"})
    finally:
        await executor.stop()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["MINE"] == "1" and env["KK_JOB_ID"] == "7" and env["KK_AGENT_NAME"] == "a1"
    assert env["KK_WORKDIR"] == executor.workdir and env["LC_TIME"] == "C" and env["PATH"]
    assert not any(k.startswith("KRAKEN_") for k in env), env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert "agent-token-value" not in "\n".join(lines) and "admin-password-value" not in "\n".join(lines)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own tmp dirs are 0700, closed to the job user)."""
    path = Path(tempfile.mkdtemp(prefix="kraken-direct-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def job_user() -> Iterator[int]:
    if not ROOT:
        pytest.skip("running steps as another user needs root")
    user = set_job_user("kraken-job")
    assert user is not None
    yield user.uid
    set_job_user(None)


async def test_as_root_steps_run_as_the_job_user_in_their_own_directory(open_dir: Path, job_user: int) -> None:
    executor = DirectExecutor(job_env(open_dir / "agent"))
    await executor.start()
    try:
        assert os.stat(executor.workdir).st_uid == job_user
        assert stat.S_IMODE(os.stat(executor.workdir).st_mode) == 0o700
        assert await run(executor, ["id", "-u"]) == [str(job_user)]
        await executor.write_file("sub/script.sh", b"echo hi\n", 0o755)
        assert (Path(executor.workdir) / "sub/script.sh").stat().st_uid == job_user
    finally:
        await executor.stop()


async def test_links_planted_by_a_job_reach_nothing_of_the_agent(open_dir: Path, job_user: int) -> None:
    secret = open_dir / "secret"
    secret.write_text("agent secret")
    secret.chmod(0o600)
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    executor = DirectExecutor(job_env(open_dir / "agent"))
    await executor.start()
    try:
        await run(executor, ["ln", "-s", str(secret), "link"])
        await run(executor, ["ln", "-s", str(closed), "dir"])
        with pytest.raises(ExecutorError, match="not a file of the job's user"):
            async for _ in executor.read_file("link"):
                pass
        await executor.write_file("link", b"overwritten")  # replaces the link, not its target
        assert secret.read_text() == "agent secret"
        with pytest.raises(ExecutorError, match="cannot write"):
            await executor.write_file("dir/planted", b"x")
        assert not (closed / "planted").exists()
        chunks = [c async for c in executor.read_file("link")]  # now the job's own file
        assert b"".join(chunks) == b"overwritten"
    finally:
        await executor.stop()


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """True when ``pid`` ended within ``timeout`` (a pidfd becomes readable when it exits)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(fd)


async def test_what_a_job_leaves_running_ends_with_it(open_dir: Path, job_user: int) -> None:
    executor = DirectExecutor(job_env(open_dir / "agent"))
    await executor.start()
    try:
        # setsid: its own session, out of reach of the step's process-group kill
        # (the pid file is written after setsid: then the daemon has left the step's group)
        script = (
            "setsid sh -c 'echo $$ > pid; exec sleep 300' > /dev/null 2>&1 &\n"
            "while [ ! -s pid ]; do sleep 0.01; done; cat pid"
        )
        lines = await run(executor, ["/bin/sh", "-c", script])
        pid = int(lines[-1])
        assert pid_alive(pid)  # it outlived its step
    finally:
        await executor.stop()
    assert await asyncio.to_thread(wait_gone, pid)


async def test_a_job_directory_the_job_user_cannot_reach_is_an_error(tmp_path: Path, job_user: int) -> None:
    os.chmod(tmp_path, 0o700)
    executor = DirectExecutor(job_env(tmp_path / "agent"))
    with pytest.raises(ExecutorError, match="cannot reach"):
        await executor.start()


def test_root_is_no_job_user() -> None:
    with pytest.raises(ValueError, match="is root"):
        resolve_job_user("root")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_job_user("no-such-user-kraken")


def test_private_files_are_0600_from_the_start(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        data = tmp_path / "data"
        private_dir(data)
        write_new_secret_file(data / "token", "t\n")
        private_file(data / "db")
        (data / "wide").touch(0o644)
        private_file(data / "wide")
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("token", "db", "wide"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert (data / "token").read_text() == "t\n"
    data.chmod(0o755)
    private_dir(data)  # an existing data dir open to others is closed
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
