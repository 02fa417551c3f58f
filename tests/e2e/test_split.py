"""A suite split by timing with a real server, two real agent processes and real pytest: the
first flow spreads the tests by count, the next balances them by the first flow's durations;
the run's results are one suite (each test once), the jobs say which part they are."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Proc, Server, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

# test_a_slow take 0.6 s, the others nothing
SUITE = """
import time
import pytest

@pytest.mark.parametrize("n", range(2))
def test_a_slow(n):
    time.sleep(0.6)

@pytest.mark.parametrize("n", range(6))
def test_b_quick(n):
    pass
"""

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "suite", "parallel": 2, "steps": [
        {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
        {"tool": "pytest", "cwd": "src", "params": "tests -p no:cacheprovider", "pytest_exe": "PYTEST"},
    ], "environments": [{"system": "any", "agents_group": "all"}]}]}
"""


@pytest.fixture
def agents(tmp_path: Path, server: Server) -> Iterator[list[Proc]]:
    procs = [start_agent(tmp_path, server.url, f"split-{i}-{uuid.uuid4().hex[:6]}") for i in (1, 2)]
    try:
        for p in procs:
            wait_agent_connected(p)
        yield procs
    finally:
        for p in procs:
            p.stop()


async def flow_parts(api: Api, branch_id: int) -> tuple[list[dict[str, Any]], list[str]]:
    """A CI flow's jobs (parts), and its results' test names once analysed."""
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=120)
    assert flow["result"] == "passed", flow
    run_id = flow["runs"][0]["id"]

    async def analysed() -> bool:
        s = await api.get(f"/runs/{run_id}/summary")
        return bool(s["analysis"] == "done" and s["total"])

    await api.wait_until(analysed, 60, f"results of run {run_id}")
    page = await api.get(f"/runs/{run_id}/results", params={"limit": 100})
    return await api.jobs(run_id), [r["test"] for r in page["items"]]


def part_tests(job: dict[str, Any]) -> dict[str, Any]:
    step = next(s for s in job["steps"] if s["tool"] == "pytest")
    return step["info"]["split"]  # type: ignore[no-any-return]


async def test_parts_by_count_then_by_timing(tmp_path: Path, server: Server, api: Api, agents: list[Proc]) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"tests/test_suite.py": SUITE})
    _, branch_id = await api.project_with_branch(f"split-{uuid.uuid4().hex[:6]}")
    code = STAGE.replace("REPO", str(repo)).replace("PYTEST", f"{sys.executable} -m pytest")
    await api.stage(branch_id, "suite", code)

    jobs, names = await flow_parts(api, branch_id)
    assert sorted(j["name"] for j in jobs) == ["suite [1/2]", "suite [2/2]"]
    assert sorted((j["split"]["part"], j["split"]["parts"], j["split"]["group"]) for j in jobs) == [
        (1, 2, "suite"),
        (2, 2, "suite"),
    ]
    assert len(names) == 8 and len(set(names)) == 8  # one suite: every test once
    first = {part_tests(j)["part"]: part_tests(j) for j in jobs}
    assert first[1]["tests"] == first[2]["tests"] == 4 and first[1]["expected_seconds"] == 0  # no history yet

    jobs, names = await flow_parts(api, branch_id)
    assert len(names) == 8 and len(set(names)) == 8
    second = {part_tests(j)["part"]: part_tests(j) for j in jobs}
    # with the durations of flow 1: one slow test in each part
    assert 0.5 < second[1]["expected_seconds"] < 1.5 and 0.5 < second[2]["expected_seconds"] < 1.5, second
    logs = [await api.log(j["id"]) for j in jobs]
    assert all("with a history" in log for log in logs)
    # each part starts pytest once: the share is picked inside that process, no collection run
    for log in logs:
        commands = [ln for ln in log.splitlines() if ln.startswith("$ ") and "-m pytest" in ln]
        assert len(commands) == 1 and "-p kraken_share" in commands[0] and "--collect-only" not in log, log
