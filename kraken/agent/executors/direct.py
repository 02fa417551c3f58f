"""Direct executor: steps run as subprocesses on the agent's host.

Each job gets its own working directory under ``<data_dir>/jobs/<job_id>``; each
command runs in a new session (process group) so that a timeout or a cancel
kills the whole tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from kraken.agent.executors.base import (
    ExecResult,
    Executor,
    ExecutorCapability,
    JobEnvironment,
    LineCallback,
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
        self._dir.mkdir(parents=True, exist_ok=True)

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
        full_env = dict(os.environ)
        full_env.update(env or {})
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
        with self._path(path).open("rb") as fh:
            while True:
                chunk = await asyncio.to_thread(fh.read, 1 << 20)
                if not chunk:
                    break
                yield chunk

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    async def cancel(self) -> None:
        self._cancelled = True
        for proc in list(self._procs):
            kill_process_group(proc.pid)

    async def stop(self) -> None:
        await self.cancel()
        await asyncio.to_thread(shutil.rmtree, self._dir, True)

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        return ExecutorCapability(name="direct", version=platform.python_version())
