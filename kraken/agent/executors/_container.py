"""Helpers shared by the container executors (Docker, LXD).

Both run every step through the engine's *exec* with the same small POSIX-sh
wrapper, so that an image needs no more than ``sh``, ``grep`` and ``kill``
(busybox is enough):

* The wrapper changes to the step's directory (a missing one gives exit code 127
  and a message, like the direct executor), merges stderr into stdout (one
  ordered stream of lines, as the direct executor's ``stderr=STDOUT``), runs the
  command with stdin from /dev/null, and when the command has ended kills what it
  left running, so that the exec's output stream ends with the step.
* Every exec carries a unique marker in its environment (``KRAKEN_EXEC_ID``),
  which every descendant inherits: the kill script (a second exec, as root)
  finds the whole process tree by that marker in ``/proc/*/environ`` - also
  processes that started a new session or were re-parented to the container's
  init, which neither process groups (LXD's exec is not a group leader inside
  the container) nor a parent walk would catch.  It stops them all first
  (SIGSTOP, so nothing forks behind the scan), then kills them (SIGKILL).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import os
import posixpath
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kraken.agent.executors.base import ExecutorError, JobEnvironment, LineCallback

if TYPE_CHECKING:
    import tarfile

# The job's working directory inside a container (kept inside the container: no bind mount).
CONTAINER_WORKDIR = "/kraken/job"
# Where copy_in puts sources it brings from the agent's host, relative to the workdir.
SOURCES_DIR = ".kraken/sources"

MARKER_VAR = "KRAKEN_EXEC_ID"

# sh -c WRAPPER kraken-exec CWD ARGV...
# The clean-up scans until a pass finds no process of the exec: a process in the middle of its
# execve has an unreadable environ for a moment and is caught by the next pass (killed ones are
# zombies, whose environ is empty, until the container's init reaps them).
EXEC_WRAPPER = r"""exec </dev/null 2>&1
m=$KRAKEN_EXEC_ID
cd "$1" 2>/dev/null || { echo "kraken: cannot start '$2': no directory $1"; exit 127; }
shift
"$@"
rc=$?
unset KRAKEN_EXEC_ID
n=0
while [ $n -lt 20 ]; do
  n=$((n+1)); hit=
  for f in $(grep -l -z -x -F "KRAKEN_EXEC_ID=$m" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    [ "$p" = "$$" ] || { kill -9 "$p" 2>/dev/null; hit=1; }
  done
  [ -n "$hit" ] || break
done
exit $rc
"""

# sh -c KILL_SCRIPT kraken-kill MARKER...: stop every process of those execs, then kill them.
KILL_SCRIPT = r"""all=
while :; do
  new=
  for m in "$@"; do
    for f in $(grep -l -z -x -F "KRAKEN_EXEC_ID=$m" /proc/[0-9]*/environ 2>/dev/null); do
      p=${f#/proc/}; p=${p%/environ}
      case " $all $new " in *" $p "*) ;; *) new="$new $p" ;; esac
    done
  done
  [ -n "$new" ] || break
  kill -STOP $new 2>/dev/null
  all="$all $new"
done
[ -z "$all" ] || kill -KILL $all 2>/dev/null
exit 0
"""

# The container's PID 1 (docker): stays alive, reaps orphans, exits at once on TERM.
KEEPALIVE_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"

KILL_GRACE_SECONDS = 2.0


def new_marker() -> str:
    return uuid.uuid4().hex


def wrap_command(command: Sequence[str], cwd: str) -> list[str]:
    if not command:
        raise ValueError("empty command")
    return ["/bin/sh", "-c", EXEC_WRAPPER, "kraken-exec", cwd, *command]


def kill_command(markers: Iterable[str]) -> list[str]:
    return ["/bin/sh", "-c", KILL_SCRIPT, "kraken-kill", *markers]


def exec_environment(job: JobEnvironment, env: Mapping[str, str] | None, marker: str) -> dict[str, str]:
    """An exec's variables: the branch's (``job.variables``), the exec's own, the kill marker."""
    full = dict(job.variables)
    full.update({str(k): str(v) for k, v in (env or {}).items()})
    full[MARKER_VAR] = marker
    return full


def resolve(workdir: str, path: str | None) -> str:
    """A path inside the container: relative ones are relative to the workdir."""
    if not path:
        return workdir
    return posixpath.normpath(posixpath.join(workdir, path))


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(value: Any) -> int:
    """Memory limit -> bytes: "512m", "1g", "1.5G", "64MiB" (binary units, like docker) or an int."""
    if isinstance(value, bool):
        raise ExecutorError(f"invalid memory limit {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ExecutorError(f"invalid memory limit {value!r} (expected e.g. 512m, 2g or a number of bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def agent_home(data_dir: str) -> str:
    """The agent's data dir as one canonical path: with its name, it tells this agent's containers
    from those of another agent of the same name on the same engine (another server, another test)."""
    return os.path.realpath(data_dir)


def job_labels(env: JobEnvironment) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in env.labels.items()}
    labels["kraken.agent"] = env.agent_name
    labels["kraken.agent.home"] = agent_home(env.data_dir)
    labels["kraken.job"] = str(env.job_id)
    return labels


def is_orphan(labels: Mapping[str, str], agent_name: str, home: str | None) -> bool:
    """Whether a container with these labels was left by this agent (``home`` None: by any agent
    of that name)."""
    if labels.get("kraken.agent") != agent_name:
        return False
    return home is None or labels.get("kraken.agent.home") == agent_home(home)


def container_name(env: JobEnvironment, max_len: int = 63) -> str:
    """A name valid for both engines (and as a hostname): kraken-<agent>-<job>-<random>."""
    agent = re.sub(r"[^a-z0-9-]+", "-", env.agent_name.lower()).strip("-") or "agent"
    suffix = f"-{env.job_id}-{uuid.uuid4().hex[:6]}"
    return ("kraken-" + agent)[: max_len - len(suffix)].rstrip("-") + suffix


class LineSplitter:
    """Turns a byte stream into lines for on_line (same rules as the direct executor)."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self._on_line = on_line
        self._buf = b""

    async def feed(self, chunk: bytes) -> None:
        if self._on_line is None:
            return
        self._buf += chunk
        if b"\n" not in chunk:
            return
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            await self._on_line(raw.decode("utf-8", "replace").rstrip("\r"))

    async def close(self) -> None:
        if self._buf and self._on_line is not None:
            await self._on_line(self._buf.decode("utf-8", "replace").rstrip("\r"))
        self._buf = b""


class Utf8Tail:
    """Keeps the last bytes of a stream as text (for error messages)."""

    def __init__(self, limit: int = 4096) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self._limit = limit

    def feed(self, data: bytes) -> None:
        self.text = (self.text + self._dec.decode(data))[-self._limit :]


# ---------------------------------------------------------------- host -> container (tar stream)


class _QueueWriter(io.RawIOBase):
    """A file object for tarfile (in a thread) that hands 1 MiB chunks to an asyncio queue."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None], stop: threading.Event
    ) -> None:
        self._loop = loop
        self._queue = queue
        self._stop = stop
        self._buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._buf += bytes(b)
        if len(self._buf) >= 1 << 20:
            self._flush()
        return len(b)

    def _flush(self) -> None:
        if self._stop.is_set():
            raise OSError("tar stream abandoned by its reader")
        if self._buf:
            chunk, self._buf = bytes(self._buf), bytearray()
            asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()

    def close(self) -> None:
        if not self.closed:
            try:
                self._flush()
            finally:
                super().close()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Files in the container belong to root (git refuses repositories of other owners).
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


async def tar_stream(host_path: str, arcname: str) -> AsyncIterator[bytes]:
    """Stream a tar of host_path (file or directory tree) named arcname, in 1 MiB chunks.

    Built in a worker thread with a bounded queue, so a big tree is never held in memory.
    """
    if not await asyncio.to_thread(os.path.exists, host_path):
        raise FileNotFoundError(host_path)
    import tarfile  # here: the server imports this module (through kraken.agent.tools.git), it never tars

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
    error: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            with _QueueWriter(loop, queue, stop) as raw, tarfile.open(fileobj=raw, mode="w|") as tar:
                tar.add(host_path, arcname=arcname, filter=_root_owned)
        except BaseException as exc:  # handed to the reader
            error.append(exc)
        finally:
            if not stop.is_set():
                asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    worker = asyncio.ensure_future(asyncio.to_thread(produce))
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await worker
        if error:
            raise error[0]
    finally:
        if not worker.done():
            # The reader gave up: make the producer fail at its next write, unblocking its put.
            stop.set()
            while not worker.done():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                await asyncio.wait({worker}, timeout=0.01)


def local_repo_path(url: str) -> str | None:
    """The host path of a local git URL (a path or file://), else None."""
    if url.startswith("file://"):
        path = url[len("file://") :]
    elif "://" in url or (":" in url.split("/", 1)[0] and not url.startswith("/")):
        return None  # a remote (https://, ssh://, user@host:path)
    else:
        path = url
    path = os.path.abspath(os.path.expanduser(path))
    return path if os.path.isdir(path) else None
