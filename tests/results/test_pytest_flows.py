"""The issue's scenario end to end: a small project in a real git repository, real git and pytest
runs through the direct executor, results ingested and analysed on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kraken.agent.executors.base import JobEnvironment
from kraken.agent.executors.direct import DirectExecutor
from kraken.agent.tools.base import ToolContext
from kraken.agent.tools.registry import get_tool
from kraken.protocol import AnyJobMessage
from tests.results.conftest import World
from tests.support.gitrepo import commit, make_repo

GOOD = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
BROKEN = GOOD.replace("return a + b", "return a - b")
TESTS = """
import os
from calc import add, mul

def test_add_small():
    assert add(1, 2) == 3

def test_add_negative():
    assert add(-1, -1) == -2

def test_mul():
    assert mul(2, 3) == 6

def test_add_zero():
    assert add(0, 0) == 0

def test_alternating():
    assert os.environ.get("FLIP") != "1"
"""


async def run_job(tmp: Path, job_id: int, repo: Path, sha: str, flip: bool) -> list[list[Any]]:
    executor = DirectExecutor(JobEnvironment(job_id=job_id, agent_name="t", system="any", data_dir=str(tmp)))
    await executor.start()
    sent: list[dict[str, Any]] = []

    async def send(msg: AnyJobMessage) -> None:
        sent.append(msg.model_dump(exclude={"job_id", "seq"}))

    async def log(line: str) -> None:
        return None

    try:
        ctx = ToolContext(executor=executor, job_id=job_id, step_index=0, log=log, send=send, timeout=120)
        out = await get_tool("git")().run(ctx, {"checkout": str(repo), "destination": "src", "commit": sha})
        assert out.result == "passed", out
        ctx.step_index = 1
        fields = {
            "cwd": "src",
            "params": "-p no:cacheprovider tests",
            "pythonpath": ".",
            "pytest_exe": f"{sys.executable} -m pytest",
            "env": {"FLIP": "1" if flip else "0"},
        }
        out = await get_tool("pytest")().run(ctx, fields)
        assert out.result == "passed", out
    finally:
        await executor.stop()
    return [r for m in sent if m["type"] == "test_results" for r in m["results"]]


async def flow(world: World, tmp: Path, repo: Path, sha: str, flip: bool, kind: str = "ci") -> dict[str, Any]:
    flow_id = await world.flow(kind)
    job = await world.job(flow_id)
    results = await run_job(tmp, job, repo, sha, flip)
    await world.send(job, results)
    await world.finish_job(job)
    await world.finish_flow(flow_id)
    return await world.results(job)


def short(name: str) -> str:
    return name.rsplit("::", 1)[1]


def where(results: dict[str, Any], **match: Any) -> set[str]:
    return {short(n) for n, r in results.items() if all(r[k] == v for k, v in match.items())}


async def test_regressions_fixes_flaky_and_dev_flow_with_real_pytest(world: World, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    good = make_repo(repo, {"calc.py": GOOD, "tests/test_calc.py": TESTS})
    broken = commit(repo, {"calc.py": BROKEN}, "break add")
    fixed = commit(repo, {"calc.py": GOOD}, "fix add")
    work = tmp_path / "agent"

    r1 = await flow(world, work, repo, good, flip=False)
    assert len(r1) == 5 and where(r1, status="passed") == {short(n) for n in r1}
    assert where(r1, change="new") == {short(n) for n in r1}

    r2 = await flow(world, work, repo, broken, flip=True)
    failing = where(r2, status="failed")
    assert failing == {"test_add_small", "test_add_negative", "test_alternating"}
    assert where(r2, change="regression") == failing  # exactly the tests that fail
    assert where(r2, change="none") == {"test_mul", "test_add_zero"}

    r3 = await flow(world, work, repo, fixed, flip=False)
    assert where(r3, change="fix") == failing
    assert not where(r3, flaky=True)

    rd = await flow(world, work, repo, broken, flip=False, kind="dev")
    assert where(rd, change="regression") == {"test_add_small", "test_add_negative"}

    r4 = await flow(world, work, repo, fixed, flip=True)
    # the dev flow's failures are not CI history: the add tests just go on passing
    assert where(r4, change="none") >= {"test_add_small", "test_add_negative", "test_mul"}
    assert {short(n): r["age"] for n, r in r4.items()}["test_add_small"] == 1
    # passed, failed, passed, failed: three flips in the window
    assert where(r4, flaky=True) == {"test_alternating"}
    alt = next(r for n, r in r4.items() if n.endswith("test_alternating"))
    assert alt["flaky_rules"] == ["flip_rate"] and alt["instability"] == 3 and alt["change"] == "regression"
