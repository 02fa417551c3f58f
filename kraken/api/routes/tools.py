"""Custom tools (``docs/tools.md``).

Users: ``GET /api/tools`` lists every registered version.  Administrators register one:
``POST /api/tools`` ``{"source": "directory", "path"}`` (a folder on the server) or
``{"source": "git", "url", "ref"}`` (a branch or tag), or ``POST /api/tools/archive`` with a
tar.gz body.  A version, once registered, never changes (409 for the same name and version).
``DELETE /api/tools/{name}`` deletes every version, ``DELETE /api/tools/{name}/{version}`` one.

Agents (``Authorization: Bearer <job transfer token>``; the job must be running on that agent and
have a step using that tool version): ``GET /api/agent/jobs/{job_id}/tools/{name}/{version}``
returns the tool's package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import select

from kraken.api.authz import AdminOnly, LoggedInOnly
from kraken.api.deps import SessionDep, StateDep, UserDep
from kraken.api.routes.agents import require_admin
from kraken.api.routes.artifacts import running_job
from kraken.api.transfer import AgentDep
from kraken.models import Step
from kraken.models.tools import CustomTool
from kraken.schemas.ints import Id
from kraken.tools_registry import sources
from kraken.tools_registry import store as tool_store
from kraken.tools_registry.manifest import NAME_RE, VERSION_RE
from kraken.tools_registry.package import MAX_PACKAGE_SIZE, Package, PackageError

router = APIRouter(tags=["tools"])


class ToolOut(BaseModel):
    id: int
    name: str
    version: str
    description: str
    fields_schema: dict[str, Any]
    entry: str
    digest: str
    size: int
    source: str
    created: datetime


class ToolFromDirectory(BaseModel):
    model_config = {"extra": "forbid"}
    source: Literal["directory"]
    path: str = Field(min_length=1, max_length=1000)


class ToolFromGit(BaseModel):
    model_config = {"extra": "forbid"}
    source: Literal["git"]
    url: str = Field(min_length=1, max_length=1000)
    ref: str | None = Field(default=None, min_length=1, max_length=200)


ToolIn = Annotated[ToolFromDirectory | ToolFromGit, Field(discriminator="source")]


async def _register(state: Any, package: Package, source: str) -> CustomTool:
    async with state.runtime.db.transaction() as session:
        try:
            tool = await tool_store.add_tool(session, package, source)
        except tool_store.ToolConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return tool


@router.get("/tools", response_model=list[ToolOut], dependencies=[LoggedInOnly])
async def list_tools(session: SessionDep, _: UserDep) -> list[CustomTool]:
    return await tool_store.list_tools(session)


@router.post("/tools", response_model=ToolOut, status_code=status.HTTP_201_CREATED, dependencies=[AdminOnly])
async def register_tool(body: ToolIn, state: StateDep, user: UserDep) -> CustomTool:
    require_admin(user, "register tools")
    try:
        if isinstance(body, ToolFromDirectory):
            package, source = await sources.from_directory(body.path), f"directory {body.path}"
        else:
            package = await sources.from_git(body.url, body.ref)
            source = f"git {body.url}" + (f" {body.ref}" if body.ref else "")
    except PackageError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    return await _register(state, package, source)


@router.post("/tools/archive", response_model=ToolOut, status_code=status.HTTP_201_CREATED, dependencies=[AdminOnly])
async def register_tool_archive(request: Request, state: StateDep, user: UserDep) -> CustomTool:
    """The body is the tool's folder as a tar.gz (``Content-Type: application/gzip``)."""
    require_admin(user, "register tools")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PACKAGE_SIZE:
            raise HTTPException(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"the archive has more than {MAX_PACKAGE_SIZE} bytes"
            )
    try:
        package = await sources.from_archive(bytes(data))
    except PackageError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    return await _register(state, package, "archive")


ToolName = Annotated[str, Path(pattern=NAME_RE.pattern)]
ToolVersion = Annotated[str, Path(pattern=VERSION_RE.pattern)]


async def _delete(state: Any, name: str, version: str | None) -> Response:
    async with state.runtime.db.transaction() as session:
        deleted = await tool_store.delete_tool(session, name, version)
    if not deleted:
        what = f"{name}@{version}" if version is not None else name
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the tool {what} is not registered")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/tools/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AdminOnly])
async def delete_tool(name: ToolName, state: StateDep, user: UserDep) -> Response:
    """Delete every version of a tool; stages using it are refused at their next evaluation."""
    require_admin(user, "delete tools")
    return await _delete(state, name, None)


@router.delete("/tools/{name}/{version}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[AdminOnly])
async def delete_tool_version(name: ToolName, version: ToolVersion, state: StateDep, user: UserDep) -> Response:
    """Delete one version; a step naming the tool without a version then uses the latest left."""
    require_admin(user, "delete tools")
    return await _delete(state, name, version)


@router.get(
    "/agent/jobs/{job_id}/tools/{name}/{version}",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}},
)
async def agent_tool_package(
    job_id: Id, name: ToolName, version: ToolVersion, state: StateDep, agent: AgentDep
) -> Response:
    await running_job(state, job_id, agent)
    key = f"{name}@{version}"
    async with state.runtime.db.session() as session:
        used = (await session.execute(select(Step.id).where(Step.job_id == job_id, Step.tool == key))).first()
        if used is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"job {job_id} has no step that uses the tool {key}")
        tool = await tool_store.package_of(session, name, version)
    if tool is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the tool {key} is not registered")
    return Response(tool.package, media_type="application/gzip", headers={"X-Kraken-Tool-Digest": tool.digest})
