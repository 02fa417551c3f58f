"""What a state change asks for once its transaction has committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kraken.protocol import AGENT_CHANNELS, EVENTS_CHANNEL, SCHED_CHANNEL, ServerFrame, agent_channel

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
    # runs a job ended in without their lock (``orchestration.lock_job_shared``): whoever ran the
    # transaction settles them after the commit (``orchestration.settle_runs``)
    settle_runs: set[int] = field(default_factory=set)

    def merge(self, other: Effects) -> None:
        """Add what another (committed) transaction asked for."""
        self.publish.extend(other.publish)
        self.tasks.extend(other.tasks)
        self.wake_scheduler = self.wake_scheduler or other.wake_scheduler
        self.freed_agents |= other.freed_agents
        self.settle_runs |= other.settle_runs

    def enqueue(self, name: str, key: str | None = None, **kwargs: Any) -> None:
        self.tasks.append((name, key, kwargs))

    def event(self, kind: str, **data: Any) -> None:
        """A change the web UI and API streams show live."""
        self.publish.append((EVENTS_CHANNEL, {"kind": kind, **data}))

    def to_agent(self, agent_id: int, message: ServerFrame) -> None:
        """A frame for the agent, sent by the server replica that holds its websocket."""
        self.publish.append((agent_channel(agent_id), message.model_dump(mode="json")))

    async def send_to_agents(self, bus: Bus) -> None:
        """Publish the frames for agents now, inside the transaction (before the rest is applied
        after its commit): they reach the agents before anything a later transaction on the rows
        this one locks sends them.  Never raises (a frame not published is tried again)."""
        frames = [(c, m) for c, m in self.publish if c.startswith(_AGENT_PREFIX)]
        self.publish = [(c, m) for c, m in self.publish if not c.startswith(_AGENT_PREFIX)]
        failed: list[str] = []
        for channel, message in frames:
            await _attempt(failed, f"publish on {channel}", _publisher(bus, channel, message), True)
        if failed:
            log.warning("frames for agents not delivered (%d): %s", len(failed), "; ".join(failed[:5]))

    async def apply(self, bus: Bus, queue: TaskQueue) -> None:
        """Publish and enqueue what the committed transaction asked for.  The change is committed
        already, so a failure here (Redis away) is logged and never raised: the caller must not
        report a committed change as failed.  Frames for agents (but assignments) and background
        tasks are tried again in the background for ``RETRY_FOR`` seconds; live events and
        scheduler wake-ups are not (clients re-read on ``resync``, the scheduler sweeps every few seconds), and the
        watchdog re-sends assignments that did not start and starts runs whose evaluation was lost."""
        failed: list[str] = []
        for channel, message in self.publish:
            # an assignment is re-sent from the database by the watchdog while it is still due
            assignment = isinstance(message, dict) and message.get("type") == "assign"
            keep = channel not in (EVENTS_CHANNEL, SCHED_CHANNEL) and not assignment
            await _attempt(failed, f"publish on {channel}", _publisher(bus, channel, message), keep)
        if self.wake_scheduler or self.freed_agents:
            await _attempt(failed, "wake the scheduler", _publisher(bus, SCHED_CHANNEL, {}), False)
        for name, key, kwargs in self.tasks:
            await _attempt(failed, f"enqueue task {name}", _enqueuer(queue, name, key, kwargs), True)
        if failed:
            log.warning("after-commit effects not delivered (%d): %s", len(failed), "; ".join(failed[:5]))
        self.publish.clear()
        self.tasks.clear()
        self.wake_scheduler = False
        self.freed_agents.clear()


_AGENT_PREFIX = AGENT_CHANNELS.removesuffix("*")  # "agent:"
RETRY_FOR = 300.0  # seconds a frame for an agent or a background task is tried again
_retrying: set[asyncio.Task[None]] = set()

Action = Callable[[], Awaitable[None]]


def _publisher(bus: Bus, channel: str, message: Any) -> Action:
    return lambda: bus.publish(channel, message)


def _enqueuer(queue: TaskQueue, name: str, key: str | None, kwargs: dict[str, Any]) -> Action:
    return lambda: queue.enqueue(name, key=key, **kwargs)


async def _attempt(failed: list[str], what: str, action: Action, keep: bool) -> None:
    try:
        await action()
    except Exception as exc:  # the bus or the queue is away; the change itself is committed
        failed.append(f"{what}: {type(exc).__name__}: {exc}" + (" (retrying)" if keep else ""))
        if keep:
            task = asyncio.create_task(_retry(what, action))
            _retrying.add(task)
            task.add_done_callback(_retrying.discard)


async def _retry(what: str, action: Action) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_FOR
    delay = 0.5
    while True:
        await asyncio.sleep(delay)
        try:
            await action()
        except Exception as exc:
            if loop.time() + delay > deadline:
                log.error("after-commit effect lost after %g s: %s: %s", RETRY_FOR, what, exc)
                return
            delay = min(delay * 2, 5.0)
            continue
        log.info("after-commit effect delivered late: %s", what)
        return
