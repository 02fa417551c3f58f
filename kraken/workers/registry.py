"""The task registry: ``@task`` registers an async function as a background task.

A task receives a ``TaskContext`` and keyword arguments (JSON-able values) and
must be idempotent: arq may run it again after a worker crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kraken.core.bus import Bus
    from kraken.core.config import Settings
    from kraken.core.db import Database
    from kraken.workers.queue import TaskQueue


@dataclass
class TaskContext:
    db: Database
    bus: Bus
    queue: TaskQueue
    settings: Settings


TaskFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=TaskFn)

_TASKS: dict[str, TaskFn] = {}
_loaded = False


def task(fn: F) -> F:
    _TASKS[fn.__name__] = fn
    return fn


def tasks() -> dict[str, TaskFn]:
    global _loaded
    if not _loaded:
        _loaded = True
        # Importing a module registers its tasks (``@task``); imported here because they import this
        # module. A new module of tasks is added to this import.
        import kraken.culprits.tasks
        import kraken.logs.tasks
        import kraken.notify.tasks
        import kraken.results.analysis
        import kraken.results.reanalysis
        import kraken.workers.tasks  # noqa: F401
    return dict(_TASKS)
