"""The tool interface: one step of a job is one tool call.

A tool declares the JSON Schema of its step fields (used by the server to
validate stage schemas) and implements ``run``, which drives the job's
environment only through the executor in ``ToolContext`` (commands, file
copies), so the same tool works on the host, in Docker and in LXD.

Adding a tool: subclass ``Tool`` in a module under ``kraken/agent/tools/`` and
decorate it with ``@register``; import its module in ``registry._load``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kraken.agent.executors.base import Executor
from kraken.protocol import AnyJobMessage, StepInfo

StepResultName = Literal["passed", "failed", "error", "timeout", "cancelled"]

# Sends one job message (a model of kraken.protocol) about the running step to the server;
# delivery is reliable (buffered, acknowledged, re-sent after a reconnect).
SendMessage = Callable[[AnyJobMessage], Awaitable[None]]


@dataclass
class StepOutcome:
    result: StepResultName
    message: str | None = None
    exit_code: int | None = None


@dataclass
class ToolContext:
    executor: Executor
    job_id: int
    step_index: int
    log: Callable[[str], Awaitable[None]]  # append one line to the step's log
    send: SendMessage  # extra typed messages (test results, issues, ...)
    timeout: float | None = None  # the step's timeout in seconds
    extra: dict[str, Any] = field(default_factory=dict)

    async def info(self, data: dict[str, Any]) -> None:
        """Facts shown with the step (commit checked out, cache hit, ...): a ``step_info`` message."""
        await self.send(StepInfo(step_index=self.step_index, data=data))


class ToolError(Exception):
    """The tool could not do its job (bad field, missing executable, no result file)."""


class Tool(abc.ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    # JSON Schema for the step's fields except "tool" (and the common "name", "timeout", "when").
    fields_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @abc.abstractmethod
    async def run(self, ctx: ToolContext, fields: dict[str, Any]) -> StepOutcome:
        """Execute the step; test failures are not step failures (return passed)."""
