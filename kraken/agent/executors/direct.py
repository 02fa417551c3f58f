"""Direct executor: steps run as subprocesses on the agent's host.

Each job gets its own working directory under ``<data_dir>/jobs/<job_id>``; each
command runs in a new session (process group) so that a timeout or a cancel
kills the whole tree.

A step gets a minimal environment (``step_environment``: an allow-list of the agent's
variables, the ``KK_*`` variables and the step's own), never the agent's whole environment.
An agent running as root runs its steps as an unprivileged *job user* (``set_job_user``;
``kraken serve``'s local agent does so by default): the job's directory belongs to that
user, and files are read out of it only when that user owns them (a symlink or a hard link
to the agent's own files is refused).  The direct executor trusts the code it runs
otherwise: untrusted code belongs in the container executors (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kraken.agent.executors.base import (
    ExecResult,
    Executor,
    ExecutorCapability,
    ExecutorError,
    JobEnvironment,
    LineCallback,
    step_environment,
)

log = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 2.0


# ---------------------------------------------------------------- the user that runs the steps

DEFAULT_JOB_USER = "kraken-job"
FALLBACK_JOB_USER = "nobody"


@dataclass(frozen=True)
class JobUser:
    name: str
    uid: int
    gid: int


_job_user: JobUser | None = None


def _create_user(name: str) -> bool:
    """``useradd`` a system user without a home or a login shell; True when it worked."""
    argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", "/usr/sbin/nologin", "--comment", "Kraken CI jobs", name]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot create the job user %r: %s", name, exc)
        return False
    if done.returncode != 0 and done.returncode != 9:  # 9: it exists (made meanwhile)
        log.warning("cannot create the job user %r: %s", name, done.stderr.strip())
        return False
    return True


def resolve_job_user(name: str) -> JobUser:
    """The user ``name``; ``kraken-job`` is created when missing (falling back to ``nobody``
    when it cannot be).  Root is refused: the point is to run steps without privileges."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_JOB_USER:
            raise ValueError(f"the job user {name!r} does not exist") from None
        if _create_user(name):
            entry = pwd.getpwnam(name)
        else:
            log.warning("running jobs as %r instead of %r", FALLBACK_JOB_USER, name)
            entry = pwd.getpwnam(FALLBACK_JOB_USER)
    if entry.pw_uid == 0:
        raise ValueError(f"the job user {name!r} is root; give an unprivileged user")
    return JobUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def set_job_user(name: str | None) -> JobUser | None:
    """Run the steps of every direct job of this process as ``name`` (None: as the agent's user).
    Switching users needs root."""
    global _job_user
    if not name:
        _job_user = None
        return None
    if os.geteuid() != 0:
        raise PermissionError(f"only an agent running as root can run jobs as another user ({name!r})")
    _job_user = resolve_job_user(name)
    return _job_user


def job_user() -> JobUser | None:
    return _job_user


def _spawn_options(user: JobUser | None) -> dict[str, Any]:
    """Popen's options to start a step as the job user (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


# The job user's git trusts repositories of other owners (a repository on the agent's host
# belongs to the agent's user; git refuses it as of "dubious ownership" otherwise).  It must be
# the global config: git drops command-line config (GIT_CONFIG_COUNT) for a local clone.
JOB_GITCONFIG = "[safe]\n\tdirectory = *\n"


def _user_variables(user: JobUser | None, home: Path) -> dict[str, str]:
    """What a step of the job user gets instead of the agent's: its name and its own ``HOME``."""
    if user is None:
        return {}
    return {"HOME": str(home), "USER": user.name, "LOGNAME": user.name}


def _prepare_workdir(data_dir: Path, workdir: Path, home: Path, user: JobUser | None) -> None:
    """Create the job's directory; for a job user: it and a home directory for the job (with
    ``JOB_GITCONFIG``), both owned by that user (0700), the way to them traversable but not
    listable (``<data_dir>`` and ``<data_dir>/jobs`` get o+x, nothing else)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if user is None:
        return
    for d in (data_dir, workdir.parent):
        mode = stat.S_IMODE(d.stat().st_mode)
        if mode & 0o011 != 0o011:
            d.chmod(mode | 0o011)
    home.mkdir(mode=0o700, exist_ok=True)
    (home / ".gitconfig").write_text(JOB_GITCONFIG)
    for path in (workdir, home, home / ".gitconfig"):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    workdir.chmod(0o700)
    blocked = blocked_on_the_way(workdir.parent, user)
    if blocked is not None:
        raise ExecutorError(
            f"the job's user {user.name!r} cannot reach {workdir}: {blocked} is closed to it "
            f"(mode {stat.S_IMODE(blocked.stat().st_mode):o}); give the agent a data dir that user can reach"
        )


def blocked_on_the_way(path: Path, user: JobUser) -> Path | None:
    """The first directory on the way to ``path`` (included) that ``user`` may not enter, or None."""
    for d in [*reversed(path.parents), path]:
        st = d.stat()
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return d
    return None


# Writes into the job's directory run as the step's user, so that a symlink the job planted
# cannot make the agent (root) write elsewhere; an existing file or link is replaced.
WRITE_SCRIPT = 'mkdir -p -- "$(dirname -- "$1")" && rm -f -- "$1" && cat > "$1" && chmod "$2" "$1"'


async def _write_as(user: JobUser | None, workdir: Path, path: Path, chunks: AsyncIterator[bytes], mode: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", WRITE_SCRIPT, "kraken-write", str(path), format(mode, "o"),
        cwd=str(workdir),
        env={"PATH": os.environ.get("PATH") or "/usr/bin:/bin", "LC_ALL": "C"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        **_spawn_options(user),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        async for chunk in chunks:
            proc.stdin.write(chunk)
            await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the script ended early: its output says why
    output = (await proc.stdout.read()).decode("utf-8", "replace").strip()
    if await proc.wait() != 0:
        raise ExecutorError(f"cannot write {path}: {output or 'exit code ' + str(proc.returncode)}")


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _open_own_file(path: Path, user: JobUser | None) -> int:
    """Open a file to read it out of the job; with a job user, only a regular file that user
    owns (never what a link planted by the job points to, nor a FIFO or a device)."""
    if user is None:
        return os.open(path, os.O_RDONLY)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    st = os.fstat(fd)
    if st.st_uid != user.uid or not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ExecutorError(f"{path} is not a file of the job's user {user.name!r}; it is not read")
    os.set_blocking(fd, True)
    return fd


async def stream_lines(stream: asyncio.StreamReader, on_line: LineCallback | None) -> None:
    """Read a byte stream to its end, passing each decoded line (without newline) to on_line."""
    buf = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        if on_line is not None:
            for raw in lines:
                await on_line(raw.decode("utf-8", "replace").rstrip("\r"))
    if buf and on_line is not None:
        await on_line(buf.decode("utf-8", "replace").rstrip("\r"))


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Tells when the process itself exited, even while its children keep the output pipe open
    (``Process.wait()`` also waits for the pipes on Python 3.11)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        self.exited.set()
        super().process_exited()


def kill_process_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class DirectExecutor(Executor):
    name = "direct"

    def __init__(self, env: JobEnvironment) -> None:
        super().__init__(env)
        self._dir = Path(env.data_dir) / "jobs" / str(env.job_id)
        self._home = self._dir.with_name(f"{env.job_id}-home")  # the job user's HOME
        self._procs: set[asyncio.subprocess.Process] = set()
        self._cancelled = False

    @property
    def workdir(self) -> str:
        return str(self._dir)

    def _path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self._dir / p

    async def start(self) -> None:
        if self._dir.exists():
            await asyncio.to_thread(shutil.rmtree, self._dir, True)
        await asyncio.to_thread(shutil.rmtree, self._home, True)
        _prepare_workdir(Path(self.env.data_dir), self._dir, self._home, job_user())

    async def exec(
        self,
        command: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
    ) -> ExecResult:
        if self._cancelled:
            return ExecResult(exit_code=None, cancelled=True)
        user = job_user()
        full_env = step_environment(self.env, self.workdir, env, _user_variables(user, self._home))
        workdir = self._path(cwd) if cwd else self._dir
        loop = asyncio.get_running_loop()
        protocol = _ExitProtocol(loop)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: protocol,
                *command,
                cwd=str(workdir),
                env=full_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                **_spawn_options(user),
            )
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            if on_line is not None:
                await on_line(f"cannot start {command[0]!r} in {workdir}: {exc.strerror or exc}")
            return ExecResult(exit_code=127)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        self._procs.add(proc)
        assert proc.stdout is not None
        reader = asyncio.ensure_future(stream_lines(proc.stdout, on_line))
        timed_out = False
        try:
            await asyncio.wait_for(protocol.exited.wait(), timeout)
        except TimeoutError:
            timed_out = True
        finally:
            self._procs.discard(proc)
        # The command is gone (or out of time): what it left running in its group goes with it,
        # so a background child cannot hold the step (or the output pipe) open.
        kill_process_group(proc.pid)
        await proc.wait()
        try:
            await asyncio.wait_for(reader, KILL_GRACE_SECONDS)
        except TimeoutError:
            reader.cancel()
        return ExecResult(exit_code=proc.returncode, timed_out=timed_out, cancelled=self._cancelled)

    async def read_file(self, path: str) -> AsyncIterator[bytes]:
        fd = _open_own_file(self._path(path), job_user())
        with os.fdopen(fd, "rb") as fh:
            while True:
                chunk = await asyncio.to_thread(fh.read, 1 << 20)
                if not chunk:
                    break
                yield chunk

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        user = job_user()
        if user is not None:
            await _write_as(user, self._dir, self._path(path), _one_chunk(data), mode)
            return
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    async def write_stream(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o644) -> None:
        """Stream a file into the job's directory, written by the step's user (``tools/transfer.py``)."""
        await _write_as(job_user(), self._dir, self._path(path), chunks, mode)

    async def cancel(self) -> None:
        self._cancelled = True
        for proc in list(self._procs):
            kill_process_group(proc.pid)

    async def stop(self) -> None:
        await self.cancel()
        await asyncio.to_thread(shutil.rmtree, self._dir, True)
        await asyncio.to_thread(shutil.rmtree, self._home, True)

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        return ExecutorCapability(name="direct", version=platform.python_version())
