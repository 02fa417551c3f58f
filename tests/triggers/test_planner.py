"""The planner against real SQLite and PostgreSQL databases and real git repositories:
fire times kept in the database, one fire across restarts and two planners, leases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from kraken.control.planner import Planner
from kraken.core.bus import MemoryBus
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Flow, Project, Stage
from kraken.models.base import utcnow
from kraken.models.triggers import TriggerState
from kraken.stage import check_stage_code
from kraken.workers.queue import InProcessQueue
from kraken.workers.registry import TaskContext
from tests.support.gitrepo import commit, make_repo

CODE = """
def stage(ctx):
    return {"triggers": TRIGGERS, "jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}],
            "environments": [{"system": "any"}]}]}
"""


async def make_stage(db: Database, triggers: str, repo_url: str | None = None, name: str = "s") -> int:
    code = CODE.replace("TRIGGERS", triggers)
    schema = await check_stage_code(code)
    async with db.transaction() as s:
        project = (await s.execute(select(Project))).scalars().first()
        if project is None:
            project = Project(name="p")
            s.add(project)
            await s.flush()
        branch = (await s.execute(select(Branch))).scalars().first()
        if branch is None:
            branch = Branch(project_id=project.id, name="main", branch_name="main", repo_url=repo_url)  # type: ignore[arg-type]
            s.add(branch)
            await s.flush()
        stage = Stage(
            branch_id=branch.id,  # type: ignore[arg-type]
            name=name,
            schema_code=code,
            schema_=schema,
            parent=schema["parent"],
            triggers=schema["triggers"],
        )
        s.add(stage)
        await s.flush()
    assert stage.id is not None
    return stage.id


def planner(db: Database, tmp_path: Path, **settings: Any) -> Planner:
    cfg = Settings(data_dir=tmp_path / "data", **settings)
    queue = InProcessQueue()
    bus = MemoryBus()
    queue.bind(TaskContext(db=db, bus=bus, queue=queue, settings=cfg))
    return Planner(db, bus, queue, cfg)


async def flows(db: Database) -> list[Flow]:
    async with db.session() as s:
        return list((await s.execute(select(Flow).order_by(col(Flow.id)))).scalars())


async def states(db: Database) -> dict[str, TriggerState]:
    async with db.session() as s:
        return {r.kind: r for r in (await s.execute(select(TriggerState))).scalars()}


async def make_due(db: Database, kind: str) -> None:
    async with db.transaction() as s:
        past = utcnow() - timedelta(seconds=1)
        await s.execute(sa.update(TriggerState).where(col(TriggerState.kind) == kind).values(next_at=past))


async def test_sync_computes_first_fire_times(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"cron": "*/5 * * * *", "interval": "90s", "date": "2999-01-01T10:00:00"}')
    p = planner(db, tmp_path)
    before = utcnow()
    await p.sync()
    rows = await states(db)
    assert sorted(rows) == ["cron", "date", "interval"]
    assert rows["cron"].next_at is not None and rows["cron"].next_at.minute % 5 == 0
    assert before < rows["cron"].next_at <= before + timedelta(minutes=5)
    assert rows["interval"].next_at is not None
    assert timedelta(seconds=89) < rows["interval"].next_at - before < timedelta(seconds=91)
    assert rows["date"].next_at is not None and rows["date"].next_at.year == 2999
    assert await p.fire_due() == 0 and await flows(db) == []
    assert 0 < await p.sleep_time() <= p.settings.planner_sync_interval
    # A stage that loses a trigger loses its row; a changed trigger gets a new time.
    async with db.transaction() as s:
        stage = (await s.execute(select(Stage))).scalar_one()
        stage.triggers = {"interval": "10m"}
    await p.sync()
    rows = await states(db)
    assert sorted(rows) == ["interval"] and rows["interval"].next_at is not None
    assert rows["interval"].next_at - utcnow() > timedelta(minutes=9)


async def test_interval_fires_once_across_restart_and_two_planners(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"interval": "1h"}')
    first = planner(db, tmp_path)
    await first.sync()
    await make_due(db, "interval")
    assert await first.fire_due() == 1
    [flow] = await flows(db)
    assert flow.trigger["reason"] == "interval" and flow.trigger["stage"] == "s" and flow.kind == "ci"
    row = (await states(db))["interval"]
    assert row.fired == 1 and row.lease_owner is None and row.next_at is not None and row.next_at > utcnow()

    # "Restart": a new planner with no memory finds nothing due, then fires the next time once.
    restarted = planner(db, tmp_path)
    await restarted.sync()
    assert await restarted.fire_due() == 0
    await make_due(db, "interval")
    # Two controllers (each its own engine) race for the due trigger: one flow.
    other_db = Database(db.url)
    try:
        second = planner(other_db, tmp_path)
        got = await asyncio.gather(restarted.fire_due(), second.fire_due())
    finally:
        await other_db.dispose()
    assert sorted(got) == [0, 1]
    assert len(await flows(db)) == 2
    assert (await states(db))["interval"].fired == 2


async def test_lease_of_a_crashed_planner_expires(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"interval": "1h"}')
    p = planner(db, tmp_path)
    await p.sync()
    async with db.transaction() as s:  # a planner claimed it and died before firing
        await s.execute(
            sa.update(TriggerState).values(
                next_at=utcnow() - timedelta(seconds=5), lease_owner="dead", lease_until=utcnow() + timedelta(hours=1)
            )
        )
    assert await p.fire_due() == 0
    assert await p.sleep_time() == p.settings.planner_sync_interval  # no busy loop on a held lease
    async with db.transaction() as s:
        await s.execute(sa.update(TriggerState).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await p.fire_due() == 1
    assert len(await flows(db)) == 1


async def test_date_fires_once(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"date": "2999-01-01T00:00:00+00:00"}')
    p = planner(db, tmp_path)
    await p.sync()
    await make_due(db, "date")
    assert await p.fire_due() == 1
    row = (await states(db))["date"]
    assert row.next_at is None and row.fired == 1
    assert await p.fire_due() == 0
    await p.sync()  # unchanged spec: not re-armed
    assert (await states(db))["date"].next_at is None


async def test_running_planner_fires_a_short_interval(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"interval": "1s"}')
    p = planner(db, tmp_path, planner_sync_interval=0.5)
    async with p.bus.listening("events") as sub:
        p.start()
        try:
            created = 0
            while created < 2:
                _, msg = await asyncio.wait_for(sub.get(), 20)
                if msg.get("kind") == "flow" and msg.get("created"):
                    created += 1
        finally:
            await p.stop()
    fired = await flows(db)
    assert len(fired) >= 2 and all(f.trigger["reason"] == "interval" for f in fired)
    # one interval apart by their schedule (the flows' own creation times depend on the load)
    scheduled = [datetime.fromisoformat(f.trigger["scheduled"]) for f in fired[:2]]
    assert scheduled[1] - scheduled[0] >= timedelta(seconds=0.99), scheduled


async def test_repository_trigger_polls_for_new_commits(db: Database, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = make_repo(repo, {"a.txt": "1"})
    await make_stage(db, '{"repository": True}', repo_url=str(repo))
    p = planner(db, tmp_path)
    await p.sync()
    assert await p.fire_due() == 0  # the first poll takes the baseline
    row = (await states(db))["repository"]
    assert row.data["heads"] == {f"{repo}#main": base}
    assert row.next_at is not None and row.next_at > utcnow() + timedelta(seconds=50)
    await make_due(db, "repository")
    assert await p.fire_due() == 0  # no new commit, no flow
    c1 = commit(repo, {"a.txt": "2"}, "second")
    c2 = commit(repo, {"b.txt": "3"}, "third")
    await make_due(db, "repository")
    assert await p.fire_due() == 1
    [flow] = await flows(db)
    t = flow.trigger
    assert t["reason"] == "repository" and t["commit"] == c2
    assert t["repository"]["before"] == base and t["repository"]["after"] == c2
    assert [c["id"] for c in t["commits"]] == [c2, c1]
    assert [c["message"] for c in t["commits"]] == ["third", "second"]
    await make_due(db, "repository")
    assert await p.fire_due() == 0
    assert len(await flows(db)) == 1
