"""Executors: direct (host), docker, lxd."""

from __future__ import annotations

from kraken.agent.executors.base import Executor

EXECUTOR_ALIASES = {"local": "direct"}


def executor_class(name: str) -> type[Executor]:
    """Look up an executor class by name (imports lazily: engines' libraries are optional)."""
    name = EXECUTOR_ALIASES.get(name, name)
    if name == "direct":
        from kraken.agent.executors.direct import DirectExecutor

        return DirectExecutor
    if name == "docker":
        from kraken.agent.executors.docker import DockerExecutor  # type: ignore[import-not-found,unused-ignore]

        return DockerExecutor  # type: ignore[no-any-return,unused-ignore]
    if name == "lxd":
        from kraken.agent.executors.lxd import LxdExecutor  # type: ignore[import-not-found,unused-ignore]

        return LxdExecutor  # type: ignore[no-any-return,unused-ignore]
    raise KeyError(name)


ALL_EXECUTORS = ("direct", "docker", "lxd")
