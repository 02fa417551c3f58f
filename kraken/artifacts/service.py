"""Artifacts, cache entries and blobs in the database; garbage collection of unused blobs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from kraken.artifacts.store import BlobStore
from kraken.core.db import Database
from kraken.core.sql import insert_ignore
from kraken.models import Flow, Job, Run
from kraken.models.artifacts import Artifact, Blob, CacheEntry
from kraken.models.base import utcnow

log = logging.getLogger(__name__)

BLOB_GRACE = timedelta(hours=1)  # an unreferenced blob this young may be in the middle of an upload


async def job_context(session: AsyncSession, job_id: int) -> tuple[Job, Run, Flow] | None:
    row = (
        await session.execute(
            select(Job, Run, Flow)
            .join(Run, col(Run.id) == Job.run_id)
            .join(Flow, col(Flow.id) == Run.flow_id)
            .where(col(Job.id) == job_id)
        )
    ).first()
    return (row[0], row[1], row[2]) if row else None


async def record_blob(session: AsyncSession, sha256: str, size: int) -> None:
    now = utcnow()
    inserted = await insert_ignore(session, Blob, {"sha256": sha256, "size": size, "created": now, "last_used": now})
    if not inserted:
        await session.execute(sa.update(Blob).where(col(Blob.sha256) == sha256).values(last_used=now))


async def record_artifact(
    session: AsyncSession,
    job: Job,
    run: Run,
    flow: Flow,
    path: str,
    sha256: str,
    size: int,
    public: bool,
    report_entry: bool = False,
) -> Artifact:
    """The job's artifact at ``path`` (a second upload of the same path replaces the first)."""
    await record_blob(session, sha256, size)
    art = (
        await session.execute(select(Artifact).where(Artifact.job_id == job.id, Artifact.path == path))
    ).scalar_one_or_none()
    if art is None:
        art = Artifact(
            branch_id=flow.branch_id,
            flow_id=flow.id,  # type: ignore[arg-type]
            run_id=run.id,  # type: ignore[arg-type]
            job_id=job.id,  # type: ignore[arg-type]
            stage_name=run.stage_name,
            path=path,
            size=size,
            sha256=sha256,
            public=public,
            report_entry=report_entry,
        )
        session.add(art)
    else:
        art.size, art.sha256, art.public, art.created = size, sha256, public, utcnow()
        art.report_entry = report_entry
    await session.flush()
    return art


async def flow_artifacts(session: AsyncSession, flow_id: int) -> list[Artifact]:
    """The flow's artifacts, one per path: the newest upload of each path."""
    rows = (
        await session.execute(select(Artifact).where(Artifact.flow_id == flow_id).order_by(col(Artifact.id)))
    ).scalars()
    newest: dict[str, Artifact] = {}
    for art in rows:
        newest[art.path] = art
    return sorted(newest.values(), key=lambda a: a.path)


# ---------------------------------------------------------------- cache


def cache_cutoff(ttl_days: float) -> object:
    return utcnow() - timedelta(days=ttl_days)


def cache_scopes(flow_id: int, kind: str) -> list[int]:
    """The ``dev_flow_id`` values a flow reads, in order of preference: a dev flow its own entries,
    then the branch's; a CI flow the branch's only."""
    return [flow_id, 0] if kind == "dev" else [0]


def cache_write_scope(flow_id: int, kind: str) -> int:
    """Where a flow's saves go: a dev flow writes only its own entries."""
    return flow_id if kind == "dev" else 0


async def cache_lookup(
    session: AsyncSession,
    branch_id: int,
    key: str,
    prefixes: Sequence[str],
    ttl_days: float,
    scopes: Sequence[int] = (0,),
) -> tuple[CacheEntry, bool] | None:
    """The entry for ``key``, else the newest whose key starts with one of ``prefixes`` (in
    order); with whether it was an exact hit; each looked for in ``scopes`` in order (see
    ``cache_scopes``).  Expired entries do not count."""
    fresh = col(CacheEntry.last_used) >= cache_cutoff(ttl_days)
    base = select(CacheEntry).where(CacheEntry.branch_id == branch_id, fresh)
    if key:
        for scope in scopes:
            exact = (
                await session.execute(base.where(CacheEntry.dev_flow_id == scope, CacheEntry.key == key))
            ).scalar_one_or_none()
            if exact is not None:
                return exact, True
    for prefix in prefixes:
        if not prefix:
            continue
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        for scope in scopes:
            entry = (
                await session.execute(
                    base.where(CacheEntry.dev_flow_id == scope, col(CacheEntry.key).like(escaped + "%", escape="\\"))
                    .order_by(col(CacheEntry.created).desc(), col(CacheEntry.id).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if entry is not None:
                return entry, False
    return None


async def cache_save(
    session: AsyncSession,
    branch_id: int,
    key: str,
    sha256: str,
    size: int,
    job_id: int | None,
    ttl_days: float,
    scope: int = 0,
) -> bool:
    """Store an entry in ``scope`` (``cache_write_scope``); False when the key exists there
    (entries are immutable, like their key says)."""
    await record_blob(session, sha256, size)
    now = utcnow()
    # An expired entry of the same key makes room for the new one.
    await session.execute(
        sa.delete(CacheEntry).where(
            col(CacheEntry.branch_id) == branch_id,
            col(CacheEntry.dev_flow_id) == scope,
            col(CacheEntry.key) == key,
            col(CacheEntry.last_used) < cache_cutoff(ttl_days),
        )
    )
    return await insert_ignore(
        session,
        CacheEntry,
        {
            "branch_id": branch_id,
            "dev_flow_id": scope,
            "key": key,
            "sha256": sha256,
            "size": size,
            "job_id": job_id,
            "created": now,
            "last_used": now,
        },
    )


async def enforce_cache_cap(session: AsyncSession, branch_id: int, max_total: int) -> int:
    """Drop the branch's least recently used entries until they fit in ``max_total`` bytes."""
    entries = (
        await session.execute(
            select(CacheEntry.id, CacheEntry.size)
            .where(CacheEntry.branch_id == branch_id)
            .order_by(col(CacheEntry.last_used).desc(), col(CacheEntry.id).desc())
        )
    ).all()
    total, drop = 0, []
    for entry_id, size in entries:
        total += size
        if total > max_total:
            drop.append(entry_id)
    if drop:
        await session.execute(sa.delete(CacheEntry).where(col(CacheEntry.id).in_(drop)))
    return len(drop)


async def expire_cache(session: AsyncSession, ttl_days: float) -> int:
    res = await session.execute(sa.delete(CacheEntry).where(col(CacheEntry.last_used) < cache_cutoff(ttl_days)))
    return int(res.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- garbage


async def collect_garbage(db: Database, store: BlobStore, grace: timedelta = BLOB_GRACE) -> int:
    """Delete blobs no artifact or cache entry refers to (older than ``grace``); returns how many."""
    cutoff = utcnow() - grace
    used = sa.union(sa.select(col(Artifact.sha256)), sa.select(col(CacheEntry.sha256)))
    async with db.session() as session:
        candidates = (
            (
                await session.execute(
                    select(Blob.sha256).where(col(Blob.last_used) < cutoff, col(Blob.sha256).not_in(used)).limit(10000)
                )
            )
            .scalars()
            .all()
        )
    removed = 0
    for sha in candidates:
        async with db.transaction() as session:
            # Still unused and not touched meanwhile: delete the row, then the bytes.
            res = await session.execute(
                sa.delete(Blob).where(
                    col(Blob.sha256) == sha, col(Blob.last_used) < cutoff, col(Blob.sha256).not_in(used)
                )
            )
            if not res.rowcount:  # type: ignore[attr-defined]
                continue
        try:
            await store.delete(sha)
            removed += 1
        except Exception:
            log.exception("could not delete blob %s from the store", sha)
    return removed
