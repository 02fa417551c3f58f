"""Retention against real databases and the local store: old flows lose artifacts and logs,
the rest stays; unused blobs and expired cache entries go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from kraken.artifacts import service
from kraken.artifacts.retention import apply_retention
from kraken.artifacts.store import blob_store
from kraken.control import orchestration
from kraken.control.effects import Effects
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Flow, Job, LogChunk, Project, Run, Stage
from kraken.models.artifacts import Artifact, Blob, BranchRetention, CacheEntry
from kraken.models.base import utcnow
from kraken.models.enums import FlowKind, Result
from kraken.stage import check_stage_code

CODE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def branches_with_flows(
    db: Database, settings: Settings, rules: list[BranchRetention | None], flows_each: int = 3
) -> dict[int, list[int]]:
    """One branch per rule (None: no rule of its own), each with ``flows_each`` completed flows
    that have a log line and an artifact; the flow ids by branch id, in branch order."""
    store = blob_store(settings)
    schema = await check_stage_code(CODE)
    async with db.transaction() as s:
        p = Project(name="p")
        s.add(p)
        await s.flush()
        branches: list[int] = []
        for i, rule in enumerate(rules):
            b = Branch(project_id=p.id, name=f"b{i}", branch_name=f"b{i}")  # type: ignore[arg-type]
            s.add(b)
            await s.flush()
            s.add(Stage(branch_id=b.id, name="s", schema_code=CODE, schema_=schema))  # type: ignore[arg-type]
            assert b.id is not None
            branches.append(b.id)
            if rule is not None:
                rule.branch_id = b.id
                s.add(rule)
    flows: dict[int, list[int]] = {b: [] for b in branches}
    for branch_id in branches:
        for i in range(flows_each):
            effects = Effects()
            async with db.transaction() as s:
                branch = await s.get(Branch, branch_id)
                assert branch is not None
                flow = await orchestration.create_flow(s, branch, FlowKind.CI, {}, effects)
            await orchestration.evaluate_pending(db, effects)
            async with db.transaction() as s:
                job, run = (await s.execute(select(Job, Run).join(Run).where(Run.flow_id == flow.id))).one()
                s.add(LogChunk(job_id=job.id, seq=1, first_line=0, line_count=1, text="line"))  # type: ignore[arg-type]
            sha, size = await store.put(once(f"{branch_id}-{i}".encode()))
            async with db.transaction() as s:
                await service.record_artifact(s, job, run, flow, "out.bin", sha, size, False)
                await orchestration.complete_job(s, job.id, Result.PASSED, effects)  # type: ignore[arg-type]
            flows[branch_id].append(flow.id)  # type: ignore[arg-type]
    return flows


async def test_keep_newest_flows(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = blob_store(settings)
    flows = await branches_with_flows(db, settings, [BranchRetention(keep_flows=2), None])
    branches = list(flows)
    async with db.transaction() as s:  # an expired cache entry and a fresh one
        sha, size = await store.put(once(b"cache"))
        await service.cache_save(s, branches[0], "old", sha, size, None, 7)
        await service.cache_save(s, branches[0], "new", sha, size, None, 7)
        old = utcnow() - timedelta(days=8)
        await s.execute(sa.update(CacheEntry).where(col(CacheEntry.key) == "old").values(last_used=old))

    report = await apply_retention(db, settings, blob_grace=timedelta(0))
    assert (report.flows, report.artifacts, report.log_chunks, report.cache_entries) == (1, 1, 1, 1)
    oldest = flows[branches[0]][0]
    async with db.session() as s:
        arts = (await s.execute(select(Artifact.flow_id))).scalars().all()
        assert sorted(arts) == sorted(flows[branches[0]][1:] + flows[branches[1]])  # "other" keeps all (no rule)
        logs = (await s.execute(select(LogChunk.job_id))).scalars().all()
        assert len(logs) == 5
        assert (await s.get(Flow, oldest)) is not None  # the flow itself stays
        assert (await s.execute(select(sa.func.count()).select_from(Run))).scalar_one() == 6
        assert [e.key for e in (await s.execute(select(CacheEntry))).scalars()] == ["new"]
        blobs = (await s.execute(select(Blob.sha256))).scalars().all()
    assert len(blobs) == 6  # 5 artifacts + the cache blob; the purged artifact's blob is gone
    assert report.blobs == 1
    again = await apply_retention(db, settings, blob_grace=timedelta(0))
    assert (again.flows, again.artifacts, again.log_chunks, again.blobs) == (0, 0, 0, 0)

    # The server's defaults apply to branches without their own rule.
    report = await apply_retention(db, Settings(data_dir=tmp_path / "data", retention_flows=1), timedelta(0))
    assert (report.flows, report.artifacts) == (2, 2)  # main keeps 2 by its own rule, other keeps 1 of 3


async def test_a_bad_rule_stops_only_its_branch(db: Database, tmp_path: Path) -> None:
    """A rule stored before the API bounded it (keep_days 1e308 overflows a date) fails its own
    branch only: the janitor goes on with the others and reports the failure."""
    settings = Settings(data_dir=tmp_path / "data")
    rules = [BranchRetention(keep_days=1e308), BranchRetention(keep_flows=1)]
    flows = await branches_with_flows(db, settings, rules, 2)
    bad, good = list(flows)
    report = await apply_retention(db, settings, blob_grace=timedelta(0))
    assert report.failed_branches == [bad]
    assert (report.flows, report.artifacts, report.log_chunks) == (1, 1, 1)
    async with db.session() as s:
        arts = (await s.execute(select(Artifact.flow_id))).scalars().all()
    assert sorted(arts) == sorted(flows[bad] + flows[good][1:])
