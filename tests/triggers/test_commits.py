"""A repository poll records the flow's commits (with the new commits' authors and messages), on
SQLite and PostgreSQL with a real git repository; an archived branch or project fires nothing."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from kraken.core.db import Database
from kraken.models import Branch, Project
from kraken.triggers.commits import from_trigger
from tests.support.gitrepo import commit, make_repo
from tests.triggers.test_planner import flows, make_due, make_stage, planner, states


async def test_repository_poll_records_the_commits(db: Database, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"a.txt": "1"})
    await make_stage(db, '{"repository": True}', repo_url=str(repo))
    p = planner(db, tmp_path)
    await p.sync()
    assert await p.fire_due() == 0  # the baseline
    c1 = commit(repo, {"a.txt": "2"}, "second")
    c2 = commit(repo, {"b.txt": "3"}, "third")
    await make_due(db, "repository")
    assert await p.fire_due() == 1
    [flow] = await flows(db)
    [entry] = flow.commits
    assert flow.commit == c2
    assert (entry["repo_url"], entry["branch"], entry["source"]) == (str(repo), "main", "repository")
    assert entry["commit"] == c2
    assert [(c["id"], c["author"], c["email"], c["message"]) for c in entry["new_commits"]] == [
        (c2, "Test", "test@localhost", "third"),
        (c1, "Test", "test@localhost", "second"),
    ]


async def test_archived_branches_and_projects_fire_no_triggers(db: Database, tmp_path: Path) -> None:
    await make_stage(db, '{"interval": "1h"}')
    p = planner(db, tmp_path)
    for table in (Branch, Project):
        async with db.transaction() as s:
            await s.execute(sa.update(table).values(archived=True))
        await p.sync()
        assert await states(db) == {}  # its trigger rows are gone: nothing fires
        async with db.transaction() as s:
            await s.execute(sa.update(table).values(archived=False))
        await p.sync()
        assert sorted(await states(db)) == ["interval"]
    # archived between the claim and the fire: no flow either
    await make_due(db, "interval")
    async with db.transaction() as s:
        await s.execute(sa.update(Branch).where(col(Branch.id) > 0).values(archived=True))
    assert await p.fire_due() == 0 and await flows(db) == []


def test_trigger_shapes() -> None:
    push = {
        "reason": "webhook",
        "branch": "main",
        "commit": "a" * 40,
        "repo": {"url": "https://x/r.git"},
        "commits": [{"id": "a" * 40, "author": "Al", "message": "m", "extra": 1}, {"message": "no id"}],
    }
    assert from_trigger(push) == [
        {
            "repo_url": "https://x/r.git",
            "branch": "main",
            "commit": "a" * 40,
            "source": "webhook",
            "new_commits": [
                {"id": "a" * 40, "author": "Al", "email": None, "message": "m", "timestamp": None, "url": None}
            ],
        }
    ]
    pr = {
        "reason": "webhook",
        "commit": "d" * 40,
        "branch": "main",
        "repo": {"url": "u"},
        "pull_request": {"source_branch": "feat", "source_repo_url": "fork"},
    }
    assert from_trigger(pr) == [
        {"repo_url": "fork", "branch": "feat", "commit": "d" * 40, "source": "webhook", "new_commits": []}
    ]
    assert from_trigger({"reason": "manual"}) == [] and from_trigger(None) == []
    assert from_trigger({"reason": "webhook", "repo": {}}) == []  # no commit: nothing recorded
