"""Live changes (flows, runs, jobs, steps, agents) as server-sent events, for the web UI."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from kraken.api.authz import EventFilter, LoggedInOnly
from kraken.api.deps import StateDep, UserDep, query_token
from kraken.api.sse import sse_event, sse_response
from kraken.protocol import EVENTS_CHANNEL

router = APIRouter(tags=["events"])

KEEPALIVE_SECONDS = 15.0


@router.get("/events", dependencies=[LoggedInOnly])
@query_token("events")
async def events(request: Request, state: StateDep, user: UserDep) -> StreamingResponse:
    """Every change the caller may see (their projects'; agents' for administrators) as an event
    named by its kind; a ``hello`` event first.  After a lost connection a client re-reads what
    it shows and subscribes again.  A ``resync`` event says that this server's bus was cut off from
    Redis and events were lost meanwhile: re-read too."""
    visible = await EventFilter.for_user(state.runtime.db, user)

    async def body() -> AsyncIterator[bytes]:
        import asyncio

        async with state.runtime.bus.listening(EVENTS_CHANNEL) as sub:
            yield sse_event("hello", {"instance": state.instance_id})
            while not await request.is_disconnected():
                try:
                    _, msg = await asyncio.wait_for(sub.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if await visible.allows(msg):
                    yield sse_event(str(msg.get("kind", "change")), msg)

    return sse_response(body())
