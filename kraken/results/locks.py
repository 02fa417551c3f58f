"""The lock that serializes whatever changes a branch's analysed results."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kraken.results.ingest import is_postgres

LOCK_NAMESPACE = 0x4B52  # pg_advisory_xact_lock(namespace, branch_id)


async def lock_branch(session: AsyncSession, branch_id: int) -> None:
    """Serialize result analysis of one branch, and comment changes that adjust its results, until
    the transaction ends (SQLite: write transactions already are serialized)."""
    if is_postgres(session):
        await session.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, :b)"), {"ns": LOCK_NAMESPACE, "b": branch_id})
