"""The executor interface: where a job's steps run (the host, a container, ...).

A job gets one executor instance for its whole life:  ``start()`` prepares the
environment (a working directory, a container), ``exec()`` runs one command in it
with live output, ``read_file``/``write_file`` move files in and out, ``stop()``
removes everything.  Tools (``kraken.agent.tools``) keep their logic on the agent
and drive the environment only through this interface, so an image needs no
more than a POSIX shell.
"""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

LineCallback = Callable[[str], Awaitable[None]]


class ExecutorError(Exception):
    """The environment could not be prepared or used (missing image, engine down...).

    The message is shown to users as the job's reason, so it must say what failed and why.
    """


@dataclass
class ExecResult:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


@dataclass
class ExecutorCapability:
    """What an agent reports for one executor it can use."""

    name: str
    version: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobEnvironment:
    """What the executor needs to know about the job it hosts."""

    job_id: int
    agent_name: str
    system: str
    data_dir: str  # the agent's data dir (host path)
    limits: dict[str, Any] = field(default_factory=dict)  # cpus, memory, pids, network
    labels: dict[str, str] = field(default_factory=dict)
    # the branch's environment variables: every exec gets them, under its own ``env``
    variables: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- a step's environment variables

# What a step of the direct executor inherits from the agent's own environment: nothing else
# (the agent's environment may hold Kraken's credentials: KRAKEN_AGENT_TOKEN, passwords, keys).
INHERITED_VARIABLES = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR"})
INHERITED_PREFIXES = ("LC_",)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def inherited_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables of the agent's environment (``PATH``, ``HOME``, ``LANG``,
    ``LC_*``, ``TERM``, ``TZ``, ...); ``PATH`` has a default when the agent has none."""
    source = os.environ if environ is None else environ
    out = {k: v for k, v in source.items() if k in INHERITED_VARIABLES or k.startswith(INHERITED_PREFIXES)}
    out.setdefault("PATH", DEFAULT_PATH)
    return out


def job_variables(env: JobEnvironment, workdir: str) -> dict[str, str]:
    """The ``KK_*`` variables every step of a job gets."""
    return {"KK_JOB_ID": str(env.job_id), "KK_AGENT_NAME": env.agent_name, "KK_WORKDIR": workdir}


def step_environment(
    env: JobEnvironment, workdir: str, step_env: Mapping[str, str] | None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A step's whole environment: the allow-list, the branch's variables, the ``KK_*``
    variables, ``overrides`` (the executor's, e.g. ``HOME`` of the job's user), then the step's
    own variables."""
    full = inherited_variables()
    full.update(env.variables)
    full.update(job_variables(env, workdir))
    full.update(overrides or {})
    full.update({str(k): str(v) for k, v in (step_env or {}).items()})
    return full


class Executor(abc.ABC):
    name: ClassVar[str]

    def __init__(self, env: JobEnvironment) -> None:
        self.env = env

    @property
    @abc.abstractmethod
    def workdir(self) -> str:
        """The job's working directory, as a path inside the environment."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Prepare the environment; raise ExecutorError with a clear message on failure."""

    @abc.abstractmethod
    async def exec(
        self,
        command: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: LineCallback | None = None,
    ) -> ExecResult:
        """Run a command (argv) inside the environment, streaming merged stdout/stderr lines.

        ``cwd`` relative paths are relative to ``workdir``.  On timeout the whole process
        tree is killed and ``timed_out`` is set.
        """

    @abc.abstractmethod
    async def read_file(self, path: str) -> AsyncIterator[bytes]:
        """Stream a file's bytes out of the environment (relative paths: to workdir)."""
        yield b""  # pragma: no cover

    @abc.abstractmethod
    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Create a file inside the environment (parent dirs are created)."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Kill whatever runs in the environment now (the running exec returns cancelled)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Remove the environment (container, ...).  Must be safe to call twice."""

    @classmethod
    async def probe(cls) -> ExecutorCapability | None:
        """Return the capability when this executor can work on this machine, else None."""
        return None

    @classmethod
    async def remove_orphans(cls, agent_name: str, home: str | None = None) -> int:
        """Remove environments an earlier run of this agent left behind; return how many.

        ``home`` is the agent's data dir: only what an agent of that name *and* data dir made is
        removed (None: whatever any agent of that name made)."""
        return 0
