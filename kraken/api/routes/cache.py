"""The build cache: agents look entries up, save and fetch them (per branch); users list and
delete them.  A dev flow reads the branch's entries but writes only its own (``dev_flow_id``),
which only it reads: pull-request code cannot plant an entry that a CI flow restores.

Agent side (``Authorization: Bearer <job transfer token>``, see ``kraken.artifacts.tokens``;
the job must be running on the token's agent):
- ``GET /api/agent/jobs/{job_id}/cache?key=K&keys=P1&keys=P2``: ``{"hit": false}`` or the entry
  for ``K``, else the newest whose key starts with ``P1``, then ``P2``...;
- ``GET /api/agent/jobs/{job_id}/cache/{id}``: its bytes;
- ``PUT /api/agent/jobs/{job_id}/cache?key=K``: save (201), or 200 ``{"saved": false}`` when
  the key exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from kraken.api.authz import maintainer, viewer
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.routes.artifacts import check_length, running_job
from kraken.api.transfer import AgentDep, blob_response
from kraken.artifacts import service
from kraken.artifacts.store import TooLarge, blob_store
from kraken.models import Branch
from kraken.models.artifacts import CacheEntry
from kraken.models.base import utcnow
from kraken.schemas.ints import Id
from kraken.schemas.responses import CacheLookupOut, CacheSaveOut

router = APIRouter(tags=["cache"])

MAX_KEY = 500


class CacheEntryOut(BaseModel):
    id: int
    branch_id: int
    dev_flow_id: int = Field(description="0: the branch's entry (written by CI flows); else the dev flow that owns it")
    key: str
    size: int
    sha256: str
    created: datetime
    last_used: datetime


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"a cache key has 1 to {MAX_KEY} characters")


@router.get("/agent/jobs/{job_id}/cache", response_model=CacheLookupOut, response_model_exclude_none=True)
async def agent_lookup(
    job_id: Id, state: StateDep, agent: AgentDep, key: str = "", keys: list[str] = Query(default=[])
) -> dict[str, Any]:
    _, _, flow = await running_job(state, job_id, agent)
    ttl = state.runtime.settings.cache_ttl_days
    async with state.runtime.db.session() as session:
        scopes = service.cache_scopes(flow.id, flow.kind)  # type: ignore[arg-type]
        found = await service.cache_lookup(session, flow.branch_id, key, keys, ttl, scopes)
    if found is None:
        return {"hit": False}
    entry, exact = found
    return {"hit": True, "exact": exact, "id": entry.id, "key": entry.key, "size": entry.size, "sha256": entry.sha256}


@router.get("/agent/jobs/{job_id}/cache/{entry_id}")
async def agent_fetch(
    job_id: Id, entry_id: Id, request: Request, state: StateDep, agent: AgentDep
) -> StreamingResponse:
    _, _, flow = await running_job(state, job_id, agent)
    async with state.runtime.db.transaction() as session:
        entry = await session.get(CacheEntry, entry_id)
        scopes = service.cache_scopes(flow.id, flow.kind)  # type: ignore[arg-type]
        if entry is None or entry.branch_id != flow.branch_id or entry.dev_flow_id not in scopes:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"the branch has no cache entry {entry_id}")
        entry.last_used = utcnow()
    store = blob_store(state.runtime.settings)
    return blob_response(store, entry.sha256, entry.size, "cache.tar.gz", request.headers.get("range"))


@router.put("/agent/jobs/{job_id}/cache", response_model=CacheSaveOut, responses={201: {"model": CacheSaveOut}})
async def agent_save(job_id: Id, key: str, request: Request, state: StateDep, agent: AgentDep) -> JSONResponse:
    _check_key(key)
    settings = state.runtime.settings
    limit = settings.cache_max_size
    check_length(request, limit, f"cache entry {key!r}")
    job, _, flow = await running_job(state, job_id, agent)
    scope = service.cache_write_scope(flow.id, flow.kind)  # type: ignore[arg-type]
    async with state.runtime.db.session() as session:
        exists = await service.cache_lookup(session, flow.branch_id, key, [], settings.cache_ttl_days, [scope])
    if exists is not None:
        return JSONResponse({"saved": False, "reason": f"the branch has a cache entry for key {key!r}"})
    try:
        sha, size = await blob_store(settings).put(request.stream(), limit)
    except TooLarge as exc:
        raise HTTPException(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"cache entry {key!r} is {exc} (cache_max_size)"
        ) from exc
    async with state.runtime.db.transaction() as session:
        saved = await service.cache_save(
            session, flow.branch_id, key, sha, size, job.id, settings.cache_ttl_days, scope
        )
        evicted = await service.enforce_cache_cap(session, flow.branch_id, settings.cache_branch_max_total)
    if not saved:
        return JSONResponse({"saved": False, "reason": f"the branch has a cache entry for key {key!r}"})
    return JSONResponse(
        {"saved": True, "key": key, "size": size, "sha256": sha, "evicted": evicted}, status.HTTP_201_CREATED
    )


@router.get("/branches/{branch_id}/cache", response_model=list[CacheEntryOut], dependencies=[viewer("branch_id")])
async def list_cache(branch_id: Id, session: SessionDep, _: UserDep) -> list[CacheEntry]:
    if await session.get(Branch, branch_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"branch {branch_id} not found")
    rows = await session.execute(
        select(CacheEntry).where(CacheEntry.branch_id == branch_id).order_by(col(CacheEntry.last_used).desc())
    )
    return list(rows.scalars())


@router.delete("/cache/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[maintainer("entry_id")])
async def delete_cache_entry(entry_id: Id, state: StateDep, _: UserDep) -> Response:
    async with state.write() as (session, _effects):
        entry = await session.get(CacheEntry, entry_id)
        if entry is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"cache entry {entry_id} not found")
        await session.delete(entry)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
