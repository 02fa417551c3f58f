"""The sample project of ``kraken serve --sample-project``: a small git repository and two stages."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from sqlmodel import select

from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.models import Branch, Project, Stage
from kraken.stage import StageContext, check_stage_code

BUILD = '''def stage(ctx):
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
'''

TEST = '''def stage(ctx):
    return {
        "parent": "build",
        "configs": [{"name": "fast", "level": "1"}, {"name": "full", "level": "2"}],
        "jobs": [{
            "name": "test",
            "steps": [
                {"tool": "git", "checkout": "REPO", "destination": "sample"},
                {"tool": "shell", "cmd": "sh ./test.sh #{config.level}", "cwd": "sample"},
            ],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
'''

FILES = {
    "build.sh": "#!/bin/sh\nset -e\necho building...\nmkdir -p out\necho 'artifact' > out/app.txt\necho done\n",
    "test.sh": "#!/bin/sh\nset -e\necho \"running test level $1\"\nfor i in 1 2 3; do echo \"test $i ok\"; done\n",
    "README.md": "# sample\nA tiny repository for Kraken's sample project.\n",
}


def make_sample_repo(path: Path) -> None:
    if (path / ".git").exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (path / name).write_text(text)
    env = ["-c", "user.name=Kraken", "-c", "user.email=kraken@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), *env, "commit", "-q", "-m", "sample"], check=True)


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
