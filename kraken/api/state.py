"""Per-process state of a server: runtime, secrets, the agents connected here."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.runtime import Runtime

log = logging.getLogger(__name__)


class AgentEndpoint(Protocol):
    """What the app needs of the agents' hub (``kraken.api.agent_hub.AgentHub``, which imports this module)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def serve(self, ws: WebSocket) -> None: ...


@dataclass
class ServerState:
    runtime: Runtime
    secret_key: str = ""
    agent_token: str = ""  # the shared enrollment token
    local_agent_token: str = ""  # kraken serve: enrolls the server's own agent, approved (in memory only)
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    hub: AgentEndpoint | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[tuple[AsyncSession, Effects]]:
        """A write transaction; its effects are applied after the commit.  Runs it created have
        their stage code evaluated right after the commit, outside the transaction.

        Nothing after the commit turns the committed change into an error: a failed evaluation
        (the database gone a moment) is logged and left to the watchdog, which starts runs whose
        evaluation was lost; ``Effects.apply`` never raises."""
        effects = Effects()
        async with self.runtime.db.transaction(quick=True) as session:
            yield session, effects
        try:
            await orchestration.evaluate_pending(self.runtime.db, effects)
        except Exception:
            log.exception("after the commit: starting the new runs failed; the watchdog starts them later")
        await effects.apply(self.runtime.bus, self.runtime.queue)
