"""Direct executor: steps run as subprocesses on the agent's host.

Each job gets its own working directory under ``<data_dir>/jobs/<job_id>``; each
command runs in a new session (process group) so that a timeout or a cancel
kills the whole tree.

A step gets a minimal environment (``step_environment``: an allow-list of the agent's
variables, the ``KK_*`` variables and the step's own), never the agent's whole environment.
An agent running as root runs its steps as an unprivileged *job user* (``job_user.py``;
``kraken serve``'s local agent does so by default): the job's directory belongs to that
user, and files are read out of it only when that user owns them (a symlink or a hard link
to the agent's own files is refused).  The direct executor trusts the code it runs
otherwise: untrusted code belongs in the container executors (docs/security.md).

While a job runs, ``<data_dir>/job-records/<job_id>`` holds its marker and process groups, so
that an agent killed mid-job has them killed by its next start (``kraken/agent/cleanup.py``);
when the job ends its directory is removed unless ``--keep-workdirs`` keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from kraken.agent import cleanup
from kraken.agent.executors.base import (
    ExecResult,
    Executor,
    ExecutorCapability,
    JobEnvironment,
    LineCallback,
    step_environment,
)
from kraken.agent.executors.job_user import (
    MARKER_VAR,
    as_user,
    job_user,
    kill_marked,
    one_chunk,
    open_own_file,
    prepare_workdir,
    user_variables,
    write_as,
)

KILL_GRACE_SECONDS = 2.0


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
        self._marker = uuid.uuid4().hex  # in every step's environment (found by kill_marked / cleanup)
        self._procs: set[asyncio.subprocess.Process] = set()
        self._cancelled = False

    @property
    def workdir(self) -> str:
        return str(self._dir)

    def _path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self._dir / p

    async def start(self) -> None:
        if self._dir.exists() or self._home.exists():
            await asyncio.to_thread(cleanup.remove_job_dirs, Path(self.env.data_dir), self.env.job_id)
        cleanup.record_job(Path(self.env.data_dir), self.env.job_id, self._marker)
        prepare_workdir(Path(self.env.data_dir), self._dir, self._home, job_user())

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
        overrides = {MARKER_VAR: self._marker, **user_variables(user, self._home, self._marker)}
        full_env = step_environment(self.env, self.workdir, env, overrides)
        workdir = self._path(cwd) if cwd else self._dir
        argv, options = as_user(command, user)
        loop = asyncio.get_running_loop()
        protocol = _ExitProtocol(loop)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: protocol,
                *argv,
                cwd=str(workdir),
                env=full_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                **options,
            )
        except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
            if on_line is not None:
                await on_line(f"cannot start {command[0]!r} in {workdir}: {exc.strerror or exc}")
            return ExecResult(exit_code=127)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        self._procs.add(proc)
        cleanup.record_group(Path(self.env.data_dir), self.env.job_id, proc.pid)
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
        fd = open_own_file(self._path(path), job_user())
        with os.fdopen(fd, "rb") as fh:
            while True:
                chunk = await asyncio.to_thread(fh.read, 1 << 20)
                if not chunk:
                    break
                yield chunk

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        user = job_user()
        if user is not None:
            await write_as(user, self._dir, self._path(path), one_chunk(data), mode)
            return
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    async def write_stream(self, path: str, chunks: AsyncIterator[bytes], mode: int = 0o644) -> None:
        """Stream a file into the job's directory, written by the step's user (``tools/transfer.py``)."""
        await write_as(job_user(), self._dir, self._path(path), chunks, mode)

    async def cancel(self) -> None:
        self._cancelled = True
        for proc in list(self._procs):
            kill_process_group(proc.pid)

    async def stop(self) -> None:
        await self.cancel()
        await asyncio.to_thread(self._end)

    def _end(self) -> None:
        """Kill what the job left running (``setsid``, ``nohup``: what escaped its process
        groups), then keep or remove its directories (retention, ``cleanup.job_ended``)."""
        user = job_user()
        kill_marked(self._marker, user.uid if user is not None else os.geteuid())
        cleanup.job_ended(Path(self.env.data_dir), self.env.job_id)

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        return ExecutorCapability(name="direct", version=platform.python_version())
