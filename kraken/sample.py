"""The sample project of ``kraken serve --sample-project``: a small git repository with a real test
suite (``kraken.sample_repo``), a build stage and a test stage; culprit finding starts by itself.

Its first flow shows test results; ``python -m kraken.sample_repo next`` adds the next commits
(two tests broken a commit inside a range of three, their fix, a flaky test)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Project, Stage
from kraken.models.culprits import CulpritSetting
from kraken.sample_repo import make_sample_repo
from kraken.stage import StageContext, check_stage_code

BUILD = """def stage(ctx):
    return {
        "parent": "root",
        "parameters": [{"name": "greeting", "type": "string", "default": "hello"}],
        "jobs": [{
            "name": "build",
            "steps": [
                {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "sample"},
                {"tool": "shell", "cmd": "echo '#{greeting} from Kraken' && ls -l", "cwd": "sample"},
                {"tool": "shell", "cmd": "sh ./build.sh", "cwd": "sample"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
"""

# pytest when the job's python3 has it, else the repository's stdlib runner: both write JUnit XML
TEST_CMD = (
    "rm -f report.xml; python3 -m pytest -q -p no:cacheprovider --junitxml=report.xml tests"
    " || test -f report.xml || python3 run_tests.py report.xml"
)

TEST = """def stage(ctx):
    return {
        "parent": "build",
        "configs": [{"name": "fast", "level": "1"}, {"name": "full", "level": "2"}],
        "jobs": [{
            "name": "test",
            "steps": [
                {"tool": "git", "checkout": "REPO", "destination": "sample"},
                {"tool": "shell", "cmd": TEST_CMD, "cwd": "sample"},
                {"tool": "junit_collect", "file_glob": "report.xml", "cwd": "sample"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
""".replace("TEST_CMD", repr(TEST_CMD))


async def ensure_sample_project(db: Database, settings: Settings) -> None:
    repo = settings.sample_repo_dir
    await asyncio.to_thread(make_sample_repo, repo)
    async with db.transaction() as session:
        if (await session.execute(select(Project.id).where(Project.name == "demo"))).first():
            return
        project = Project(name="demo", description="Sample project: a git checkout, a build and two test configs")
        session.add(project)
        await session.flush()
        assert project.id is not None
        branch = Branch(project_id=project.id, name="main", branch_name="main", repo_url=str(repo))
        session.add(branch)
        await session.flush()
        assert branch.id is not None
        session.add(CulpritSetting(branch_id=branch.id, auto=True))  # a regression names its commit by itself
        for name, code in (("build", BUILD), ("test", TEST)):
            code = code.replace("REPO", str(repo))
            schema = await check_stage_code(code, StageContext(branch_name="main", project_name="demo"))
            session.add(
                Stage(
                    branch_id=branch.id,
                    name=name,
                    schema_code=code,
                    schema_=schema,
                    parent=schema.get("parent", "root"),
                    triggers=schema.get("triggers", {}),
                )
            )
    print(f"kraken: created the sample project 'demo' (repository {repo})", flush=True)
