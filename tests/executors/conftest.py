"""Fixtures for the executor tests: real engines (Docker, LXD) and the host (direct).

``scripts/engines.sh`` installs and starts the engines and builds the test images.
Under CI=true a missing engine or image makes the tests that need it FAIL (never
skip); elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from kraken.agent.executors import executor_class
from kraken.agent.executors.base import Executor, JobEnvironment

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CONTAINER_EXECUTORS = ("docker", "lxd")
ALL = ("direct", *CONTAINER_EXECUTORS)


@dataclass(frozen=True)
class Images:
    busybox: str
    python: str  # python3 + pytest + git


IMAGES = {
    "direct": Images(busybox="host", python="host"),
    "docker": Images(busybox="kraken-test/busybox:latest", python="kraken-test/debian-py:bookworm"),
    "lxd": Images(busybox="kraken-test/busybox", python="kraken-test/debian-py"),
}


def unavailable(what: str) -> NoReturn:
    """Fail under CI (the engines are part of the test setup there), else skip."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: run scripts/engines.sh; a missing engine is a failure)")
    pytest.skip(what)


_probed: dict[str, str | None] = {}


def engine_version(name: str) -> str | None:
    """The engine's version by the executor's own probe() (cached; callable inside a running loop)."""
    if name not in _probed:
        cap = _in_thread(executor_class(name).probe())
        _probed[name] = cap.version if cap is not None else None
    return _probed[name]


def require_engine(name: str) -> None:
    if engine_version(name) is None:
        unavailable(f"the {name} engine is not available on this machine")


def image_exists(executor: str, image: str) -> bool:
    if executor == "direct":
        return True
    cmd = ["docker", "image", "inspect", image] if executor == "docker" else ["lxc", "image", "info", image]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def require_image(executor: str, image: str) -> None:
    require_engine(executor)
    if not image_exists(executor, image):
        unavailable(f"the {executor} test image {image!r} is missing (built by scripts/engines.sh)")


def _in_thread(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def agent_name() -> Iterator[str]:
    """Unique per test session: remove_orphans never touches another run's containers.

    At the end of the session whatever a failed or interrupted test left is removed.
    """
    name = f"kraken-test-{uuid.uuid4().hex[:8]}"
    yield name
    for engine in CONTAINER_EXECUTORS:
        if _probed.get(engine):
            for agent in (name, f"{name}-orphans"):
                _in_thread(executor_class(engine).remove_orphans(agent))


MakeExecutor = Callable[..., Awaitable[Executor]]


@pytest.fixture
async def make_executor(agent_name: str, tmp_path: Path) -> AsyncIterator[MakeExecutor]:
    """make_executor(name, image="busybox"|"python"|<image>, limits=..., labels=..., variables=...) -> started executor.

    Every executor made is stopped at teardown.
    """
    made: list[Executor] = []
    counter = iter(range(1, 1_000_000))

    async def make(
        name: str,
        image: str = "busybox",
        *,
        limits: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        start: bool = True,
        agent: str | None = None,
        data_dir: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Executor:
        system = getattr(IMAGES[name], image) if image in ("busybox", "python") else image
        if start:
            require_image(name, system)
        else:
            require_engine(name)
        env = JobEnvironment(
            job_id=next(counter),
            agent_name=agent or agent_name,
            system=system,
            data_dir=data_dir or str(tmp_path / "agent"),
            limits=limits or {},
            labels=labels or {},
            variables=variables or {},
        )
        ex = executor_class(name)(env)
        made.append(ex)
        if start:
            await ex.start()
        return ex

    yield make
    for ex in made:
        await ex.stop()


class Lines:
    """An on_line callback that keeps the lines and can wait for one (an event, not a sleep)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._waiters: list[tuple[Callable[[str], bool], asyncio.Event]] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)
        for pred, event in self._waiters:
            if pred(line):
                event.set()

    async def wait_for(self, text: str, timeout: float = 30) -> None:
        event = asyncio.Event()
        if any(text in line for line in self.lines):
            return
        self._waiters.append((lambda line: text in line, event))
        await asyncio.wait_for(event.wait(), timeout)


PS_SCRIPT = 'for p in /proc/[0-9]*; do tr "\\0" " " <"$p/cmdline" 2>/dev/null; echo; done'


def engine_processes(ex: Executor) -> str:
    """The command lines of the processes in the job's environment, read through the engine's CLI."""
    from kraken.agent.executors.docker import DockerExecutor
    from kraken.agent.executors.lxd import LxdExecutor

    if isinstance(ex, DockerExecutor):
        cmd = ["docker", "exec", ex.container_name, "sh", "-c", PS_SCRIPT]
    elif isinstance(ex, LxdExecutor):
        cmd = ["lxc", "exec", ex.container_name, "--", "sh", "-c", PS_SCRIPT]
    else:
        cmd = ["sh", "-c", PS_SCRIPT]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def engine_has_container(ex: Executor) -> bool:
    """Whether the engine still knows the job's container (asked through its CLI)."""
    from kraken.agent.executors.docker import DockerExecutor
    from kraken.agent.executors.lxd import LxdExecutor

    if isinstance(ex, DockerExecutor):
        cmd = ["docker", "container", "inspect", ex.container_name]
    elif isinstance(ex, LxdExecutor):
        cmd = ["lxc", "info", ex.container_name]
    else:
        raise TypeError(ex)
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def engine_inspect(ex: Executor) -> dict[str, Any]:
    """The engine's own description of the container (docker inspect / lxc config)."""
    import json

    from kraken.agent.executors.docker import DockerExecutor

    if isinstance(ex, DockerExecutor):
        out = subprocess.run(
            ["docker", "container", "inspect", ex.container_name], capture_output=True, text=True, check=True
        ).stdout
        data: dict[str, Any] = json.loads(out)[0]
        return data
    name = getattr(ex, "container_name", "")
    out = subprocess.run(["lxc", "query", f"/1.0/instances/{name}"], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return data
