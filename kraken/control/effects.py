"""What a state change asks for once its transaction has committed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kraken.protocol import EVENTS_CHANNEL, SCHED_CHANNEL, ServerFrame, agent_channel

if TYPE_CHECKING:
    from kraken.core.bus import Bus
    from kraken.workers.queue import TaskQueue

log = logging.getLogger(__name__)


@dataclass
class Effects:
    publish: list[tuple[str, Any]] = field(default_factory=list)  # (channel, message)
    tasks: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)  # (name, key, kwargs)
    wake_scheduler: bool = False
    # agents a completed job freed: the scheduler looks for work for them, unless the caller
    # already did (the agent hub gives an agent its next job in the same round trip)
    freed_agents: set[int] = field(default_factory=set)

    def enqueue(self, name: str, key: str | None = None, **kwargs: Any) -> None:
        self.tasks.append((name, key, kwargs))

    def event(self, kind: str, **data: Any) -> None:
        """A change the web UI and API streams show live."""
        self.publish.append((EVENTS_CHANNEL, {"kind": kind, **data}))

    def to_agent(self, agent_id: int, message: ServerFrame) -> None:
        """A frame for the agent, sent by the server replica that holds its websocket."""
        self.publish.append((agent_channel(agent_id), message.model_dump(mode="json")))

    async def apply(self, bus: Bus, queue: TaskQueue) -> None:
        """Publish and enqueue what the committed transaction asked for.  The change is committed
        already, so a failure here (Redis away) is logged and never raised: the caller must not
        report a committed change as failed.  What must not be lost is recovered by the sweeps:
        the scheduler's pass every few seconds, the watchdog re-sending assignments that did not
        start and starting runs whose evaluation was lost, clients re-reading on ``resync``."""
        failed: list[str] = []
        for channel, message in self.publish:
            await _attempt(failed, f"publish on {channel}", bus.publish(channel, message))
        if self.wake_scheduler or self.freed_agents:
            await _attempt(failed, "wake the scheduler", bus.publish(SCHED_CHANNEL, {}))
        for name, key, kwargs in self.tasks:
            await _attempt(failed, f"enqueue task {name}", queue.enqueue(name, key=key, **kwargs))
        if failed:
            log.warning("after-commit effects not delivered (%d): %s", len(failed), "; ".join(failed[:5]))
        self.publish.clear()
        self.tasks.clear()
        self.wake_scheduler = False
        self.freed_agents.clear()


async def _attempt(failed: list[str], what: str, action: Awaitable[Any]) -> None:
    try:
        await action
    except Exception as exc:  # the bus or the queue is away; the change itself is committed
        failed.append(f"{what}: {type(exc).__name__}: {exc}")
