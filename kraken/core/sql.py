"""SQL helpers that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel


async def insert_ignore(session: AsyncSession, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]
