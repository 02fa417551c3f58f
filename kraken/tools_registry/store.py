"""The ``custom_tool`` table: registering a version, listing, the stage checker's snapshot and
the digests that go with a job's steps."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlmodel import col, select

from kraken.agent.tools.registry import tool_names
from kraken.core.db import Database
from kraken.models.tools import CustomTool
from kraken.stage.tools import CustomToolVersion, set_custom_tools
from kraken.tools_registry.package import Package


class ToolConflict(ValueError):
    """The name is a built-in tool's, or that version is registered already."""


async def add_tool(session: AsyncSession, package: Package, source: str) -> CustomTool:
    m = package.manifest
    if m.name in tool_names():
        raise ToolConflict(f"'{m.name}' is a built-in tool; give the custom tool another name")
    existing = (
        await session.execute(select(CustomTool.id).where(CustomTool.name == m.name, CustomTool.version == m.version))
    ).first()
    if existing is not None:
        raise ToolConflict(f"the tool '{m.name}' has a version '{m.version}' already; versions never change")
    tool = CustomTool(
        name=m.name,
        version=m.version,
        description=m.description,
        fields_schema=m.fields_schema,
        entry=m.entry,
        digest=package.digest,
        size=len(package.data),
        source=source[:2000],
        package=package.data,
    )
    session.add(tool)
    try:
        await session.flush()
    except IntegrityError:
        raise ToolConflict(f"the tool '{m.name}' has a version '{m.version}' already") from None
    return tool


async def list_tools(session: AsyncSession) -> list[CustomTool]:
    """Every version, without the packages' bytes (deferred), by name then registration."""
    query = select(CustomTool).options(defer(CustomTool.package)).order_by(col(CustomTool.name), col(CustomTool.id))  # type: ignore[arg-type]
    rows = (await session.execute(query)).scalars()
    return list(rows)


async def delete_tool(session: AsyncSession, name: str, version: str | None) -> list[str]:
    """Delete one version of a tool (``version``) or all of them (None); the versions deleted,
    empty when there was none.  Stages that use a deleted version are refused at their next
    check or evaluation (``kraken.stage.tools.check_tool_name``); a queued job's step that uses
    it fails with a message saying the tool is no longer registered."""
    query = select(CustomTool).options(defer(CustomTool.package)).where(CustomTool.name == name)  # type: ignore[arg-type]
    if version is not None:
        query = query.where(CustomTool.version == version)
    rows = list((await session.execute(query)).scalars())
    for row in rows:
        await session.delete(row)
    await session.flush()
    return [row.version for row in rows]


async def refresh_snapshot(db: Database) -> None:
    """Load what the stage checker validates steps against (``kraken.stage.tools``); called before
    stage code is checked or evaluated, so every process sees the tools registered so far."""
    async with db.session() as session:
        await refresh_snapshot_in(session)


async def refresh_snapshot_in(session: AsyncSession) -> None:
    rows = (
        await session.execute(
            select(CustomTool.name, CustomTool.version, CustomTool.fields_schema).order_by(col(CustomTool.id))
        )
    ).all()
    set_custom_tools([CustomToolVersion(name, version, schema) for name, version, schema in rows])


async def step_digests(session: AsyncSession, tools: Collection[str]) -> dict[str, str]:
    """``{"name@version": digest}`` for the custom tools of a job's steps."""
    wanted = [t.partition("@") for t in tools if "@" in t]
    if not wanted:
        return {}
    names = {name for name, _, _ in wanted}
    rows = (
        await session.execute(
            select(CustomTool.name, CustomTool.version, CustomTool.digest).where(col(CustomTool.name).in_(names))
        )
    ).all()
    return {f"{n}@{v}": d for n, v, d in rows if f"{n}@{v}" in tools}


async def package_of(session: AsyncSession, name: str, version: str) -> CustomTool | None:
    return (
        await session.execute(select(CustomTool).where(CustomTool.name == name, CustomTool.version == version))
    ).scalar_one_or_none()
