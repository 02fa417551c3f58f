"""``Idempotency-Key`` on the triggering routes (start a flow, start a stage, rerun a job).

A client that did not get the answer (a timeout, a dropped connection) sends the request again
with the same key: within ``TTL`` and for the same user, the answer is the resource the first
request created, re-read now, and nothing is created twice.  The key is recorded in the
transaction that creates the resource, so a failed request leaves no key behind and can be
retried.  A key sent again with another request is refused (422)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import Header, HTTPException, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.api.state import ServerState
from kraken.control.effects import Effects
from kraken.models import User
from kraken.models.base import utcnow
from kraken.models.idempotency import IdempotencyKey

TTL = timedelta(hours=24)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",  # printable ASCII, no spaces
        description="Sent again with the same key (same user, within 24 h), the request answers with "
        "what the first one created instead of creating it twice.",
    ),
]

Create = Callable[[AsyncSession, Effects], Awaitable[int]]


async def _earlier(session: AsyncSession, user_id: int, key: str, request: str) -> int | None:
    row = (
        await session.execute(
            select(IdempotencyKey).where(
                col(IdempotencyKey.user_id) == user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.created) >= utcnow() - TTL,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.request != request:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"header Idempotency-Key: {key!r} was used for another request ({row.request}) within 24 h",
        )
    return row.resource_id


async def once(state: ServerState, user: User, key: str | None, request: str, create: Create) -> int:
    """Run ``create`` in a write transaction (it returns the id of what it created) unless a
    request with the same ``key`` created it already: then that id."""
    assert user.id is not None
    try:
        async with state.write() as (session, effects):
            if key is not None:
                await session.execute(sa.delete(IdempotencyKey).where(col(IdempotencyKey.created) < utcnow() - TTL))
                earlier = await _earlier(session, user.id, key, request)
                if earlier is not None:
                    return earlier
            resource_id = await create(session, effects)
            if key is not None:
                session.add(IdempotencyKey(user_id=user.id, key=key, request=request, resource_id=resource_id))
        return resource_id
    except IntegrityError:
        if key is None:
            raise
        # the same key at the same moment: the other request committed first
        async with state.runtime.db.session() as session:
            earlier = await _earlier(session, user.id, key, request)
        if earlier is None:
            raise
        return earlier
