"""The job user: an agent running as root runs the direct executor's steps as an unprivileged user.

``set_job_user`` chooses it for the agent process (``kraken agent --job-user``; ``kraken serve``'s
local agent: ``kraken-job``, created when missing).  Each job then has a directory and a ``HOME``
that belong to that user; what the agent writes into the job it writes through a process of that
user (a link planted by the job cannot redirect it), and what it reads out of the job must be a
regular file that user owns (a link to the agent's own files is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kraken.agent.executors.base import ExecutorError

log = logging.getLogger(__name__)

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
    argv = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Kraken CI jobs",
        name,
    ]
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


SETPRIV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv", path=SETPRIV_PATH)


def as_user(argv: Sequence[str], user: JobUser | None) -> tuple[list[str], dict[str, Any]]:
    """The argv and Popen options that start ``argv`` as the job user, without supplementary
    groups.  Through util-linux's ``setpriv`` when it is there: Python can then start the
    process with ``vfork``; with ``Popen(user=...)`` it must ``fork`` the whole agent, which
    cost 10-20 ms per step.  (Root's capabilities go with the change of user either way.)"""
    if user is None:
        return list(argv), {}
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "--", *argv], {}
    return list(argv), {"user": user.uid, "group": user.gid, "extra_groups": []}


# The job user's git trusts repositories of other owners (a repository on the agent's host
# belongs to the agent's user; git refuses it as of "dubious ownership" otherwise).  It must be
# the global config: git drops command-line config (GIT_CONFIG_COUNT) for a local clone.
JOB_GITCONFIG = "[safe]\n\tdirectory = *\n"


MARKER_VAR = "KK_JOB_MARKER"


def user_variables(user: JobUser | None, home: Path, marker: str) -> dict[str, str]:
    """What a step of the job user gets instead of the agent's: its name, its own ``HOME``, and
    the job's marker, by which ``kill_marked`` finds what the job leaves running."""
    if user is None:
        return {}
    return {"HOME": str(home), "USER": user.name, "LOGNAME": user.name, MARKER_VAR: marker}


def kill_marked(marker: str, uid: int | None = None) -> int:
    """Kill every process (of ``uid`` when given) whose environment holds ``KK_JOB_MARKER=marker``
    (how many): what a job left running (``setsid``, ``nohup``, a daemon) must not outlive it and
    watch the next jobs.  A process that cleared its environment escapes this (docs/security.md)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    killed = 0
    for _ in range(5):  # what forks during a pass is found by the next
        found = 0
        with os.scandir("/proc") as entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                try:
                    if uid is not None and entry.stat().st_uid != uid:
                        continue
                    with open(f"/proc/{entry.name}/environ", "rb") as fh:
                        variables = fh.read().split(b"\0")
                except OSError:
                    continue
                if needle in variables:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(entry.name), signal.SIGKILL)
                        found += 1
        killed += found
        if not found:
            break
    return killed


def prepare_workdir(data_dir: Path, workdir: Path, home: Path, user: JobUser | None) -> None:
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


async def write_as(user: JobUser | None, workdir: Path, path: Path, chunks: AsyncIterator[bytes], mode: int) -> None:
    argv, options = as_user(["/bin/sh", "-c", WRITE_SCRIPT, "kraken-write", str(path), format(mode, "o")], user)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(workdir),
        env={"PATH": os.environ.get("PATH") or "/usr/bin:/bin", "LC_ALL": "C"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        **options,
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


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def open_own_file(path: Path, user: JobUser | None) -> int:
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
