"""Benchmark: culprit finding, flows used and wall time.

A real `kraken serve` (SQLite by default, or --database-url), real agent processes, a real git
repository of --commits commits after a passing one, in which commit k/3 breaks two `add` tests
and commit 2k/3 breaks a `mul` test; CI flows on the first and the last commit, then
`POST /api/runs/{id}/culprits` until every search is over. Prints JSON.

    .venv/bin/python bench/culprits.py [--commits 32] [--agents 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.test_culprits import CALC, STAGE, TESTS, ci_flow, searches
from tests.support.api import Api
from tests.support.gitrepo import commit, git, make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected


async def bench(work: Path, commits: int, agents: int, database_url: str | None) -> dict[str, Any]:
    repo = work / "repo"
    tests = TESTS.replace("MARKER", repr(str(work / "never")))
    shas = [make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": tests, "notes.txt": "0"})]
    breaks = {
        commits // 3: ("return a + b", "return a + b + 1"),
        2 * commits // 3: ("return a * b", "return a * b * 2"),
    }
    for i in range(1, commits + 1):
        files = {"notes.txt": str(i)}
        if i in breaks:
            files["calc.py"] = (repo / "calc.py").read_text().replace(*breaks[i])
        shas.append(commit(repo, files, f"change {i}"))
    server = Server(work, database_url=database_url)
    procs = [start_agent(work, server.url, f"bench-culprit-{i}") for i in range(agents)]
    try:
        for p in procs:
            wait_agent_connected(p)
        api = Api(server.url)
        await api.login()
        try:
            _project, branch_id = await api.project_with_branch("bench")
            code = STAGE.replace("REPO", repr(str(repo))).replace("PYTEST", repr(f"{sys.executable} -m pytest"))
            await api.stage(branch_id, "tests", code)
            git(repo, "reset", "-q", "--hard", shas[0])
            await ci_flow(api, branch_id)
            git(repo, "reset", "-q", "--hard", shas[-1])
            run_id = (await ci_flow(api, branch_id))["runs"][0]["id"]
            t0 = time.perf_counter()
            await api.post(f"/runs/{run_id}/culprits", expect=200)
            done = await searches(api, run_id, 900)
            wall = time.perf_counter() - t0
        finally:
            await api.close()
    finally:
        for p in procs:
            p.stop()
        server.stop()
    want = {shas[i] for i in breaks}
    return {
        "commits_in_range": commits,
        "agents": agents,
        "database": "postgresql" if database_url else "sqlite",
        "culprits_right": sorted(s["culprit"] for s in done) == sorted(want),
        "searches": [{"tests": len(s["tests"]), "state": s["state"], "flows": len(s["flows"])} for s in done],
        "bisection_flows": len({f for s in done for f in s["flows"]}),
        "bound_per_search": math.ceil(math.log2(commits)) + 1,
        "wall_seconds": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=32)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kraken-bench-culprits-") as tmp:
        out = asyncio.run(bench(Path(tmp), args.commits, args.agents, args.database_url))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
