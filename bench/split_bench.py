"""Benchmark: a suite split by timing over 4 agents (issue #15, part 1 of the issue: ``"parallel": N``).

A generated pytest suite with skewed durations (a few long tests, many short ones, each a
``time.sleep``) runs on a real ``kraken serve`` with 4 real agent processes, as:

- *no split*: one job;
- *split by count*: ``"parallel": 4`` on a branch without history (tests spread by count);
- *split by timing*: the next flow of that branch (the first flow's durations as history).

For each: the wall time (the POST that triggers the flow to its ``completed``, as the API's
flow timestamps say), the slowest part's test time (sum of its results' durations), and their
ratio to the ideal: the suite's total test time / 4. The long tests are placed (every 16th by
name) where a split by count puts them all in one part. Prints JSON.

    .venv/bin/python bench/split_bench.py [--long 4 --long-s 20 --short 64 --short-s 1.25] [--parts 4] [--no-plain]
        [--time-pytest] [--no-plugin-autoload]

Each flow also says where its parts' time went (``phases_s``, one value per part, the slowest part
first: see ``PHASES``) and the load average after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.api import Api
from tests.support.gitrepo import make_repo
from tests.support.procs import Server, start_agent, wait_agent_connected

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "suite", PARALLEL "steps": [
        {"tool": "git", "checkout": "REPO", "branch": "main", "destination": "src"},
        {"tool": "pytest", "cwd": "src", "params": "tests -q -p no:cacheprovider", "pytest_exe": "PYTEST"STEP_ENV},
    ], "environments": [{"system": "any", "agents_group": "all"}]}]}
"""


def suite(n_long: int, long_s: float, n_short: int, short_s: float) -> tuple[str, float]:
    """The test module and its total sleep time: test_000 ... in name order, a long one every 16th."""
    n = n_long + n_short
    stride = max(4, (n // max(1, n_long)) // 4 * 4)  # a multiple of 4: split by count, all in one part
    longs = {i * stride for i in range(n_long)}
    lines = ["import time", ""]
    total = 0.0
    for i in range(n):
        d = long_s if i in longs else short_s
        total += d
        lines += [f"def test_{i:03}():", f"    time.sleep({d})", ""]
    return "\n".join(lines), total


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


PHASES = (
    ("queued", "flow's created -> job's created"),
    ("assign", "job's created -> assigned to an agent"),
    ("start", "assigned -> started on the agent"),
    ("git", "the git step"),
    ("between", "git step's end -> pytest step's start"),
    ("pytest_overhead", "the pytest step less its tests' durations (interpreter, plugins, collection, report)"),
    ("tests", "the sum of the part's test durations"),
    ("finish", "pytest step's end -> job's finished"),
    ("flow_end", "the last job's finished -> the flow's finished"),
)


def phases(flow: dict[str, Any], jobs: list[dict[str, Any]], tests: dict[int, float]) -> dict[str, list[float]]:
    """Where each part's time went (``PHASES``), one value per part, the slowest part first."""
    out: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    last = max(_ts(j["finished"]) for j in jobs)
    for job in sorted(jobs, key=lambda j: -(_ts(j["finished"]) - _ts(flow["created"]))):
        git = next(s for s in job["steps"] if s["tool"] == "git")
        py = next(s for s in job["steps"] if s["tool"] == "pytest")
        spans = {
            "queued": (flow["created"], job["created"]),
            "assign": (job["created"], job["assigned"]),
            "start": (job["assigned"], job["started"]),
            "git": (git["started"], git["finished"]),
            "between": (git["finished"], py["started"]),
            "finish": (py["finished"], job["finished"]),
        }
        for name, (a, b) in spans.items():
            out[name].append(round(_ts(b) - _ts(a), 2))
        out["tests"].append(round(tests[job["id"]], 2))
        out["pytest_overhead"].append(round(_ts(py["finished"]) - _ts(py["started"]) - tests[job["id"]], 2))
        out["flow_end"].append(round(_ts(flow["finished"]) - last, 2))
    return out


async def one_flow(api: Api, branch_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    flow = await api.wait_flow((await api.flow(branch_id))["id"], timeout=1800)
    wall_client = time.perf_counter() - started
    assert flow["result"] == "passed", flow
    run_id = flow["runs"][0]["id"]

    async def analysed() -> bool:
        s = await api.get(f"/runs/{run_id}/summary")
        return bool(s["analysis"] == "done" and s["total"])

    await api.wait_until(analysed, 120, "analysis")
    jobs = await api.jobs(run_id)
    parts: dict[int, float] = {j["id"]: 0.0 for j in jobs}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "sort": "id"}
        if cursor:
            params["cursor"] = cursor
        page = await api.get(f"/runs/{run_id}/results", params=params)
        for r in page["items"]:
            parts[r["job_id"]] += r["duration"] or 0.0
        cursor = page["next_cursor"]
        if not cursor:
            break
    wall = _ts(flow["finished"]) - _ts(flow["created"])
    return {
        "phases_s": phases(flow, jobs, parts),
        "wall_s": round(wall, 2),
        "wall_client_s": round(wall_client, 2),
        "parts_test_s": sorted((round(v, 2) for v in parts.values()), reverse=True),
        "part_wall_s": sorted((round(_ts(j["finished"]) - _ts(j["started"]), 2) for j in jobs), reverse=True),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=int, default=4)
    ap.add_argument("--long-s", type=float, default=20.0)
    ap.add_argument("--short", type=int, default=64)
    ap.add_argument("--short-s", type=float, default=1.25)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--database-url", default=None)
    ap.add_argument(
        "--time-pytest",
        action="store_true",
        help="run pytest through a shell wrapper that records each pytest process's start and end (diagnosis)",
    )
    ap.add_argument(
        "--no-plugin-autoload",
        action="store_true",
        help="the suite's pytest loads no installed plugins (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1): a cheaper pytest start",
    )
    ap.add_argument("--no-plain", action="store_true", help="skip the run without a split (the longest)")
    args = ap.parse_args()
    code, total = suite(args.long, args.long_s, args.short, args.short_s)
    ideal = total / args.parts
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = work / "repo"
        make_repo(repo, {"tests/test_gen.py": code})
        srv = Server(work, database_url=args.database_url, name="split")
        agents = [start_agent(work, srv.url, f"bench-{i}-{uuid.uuid4().hex[:6]}") for i in range(args.parts)]
        api = Api(srv.url)
        try:
            for a in agents:
                wait_agent_connected(a, timeout=60)
            await api.login()
            pytest_exe = f"{sys.executable} -m pytest"
            trace = work / "pytest-times.txt"
            if args.time_pytest:
                wrapper = work / "pytest-timed.sh"
                wrapper.write_text(
                    "#!/bin/sh\n"
                    f'a=$(date +%s.%N); {sys.executable} -m pytest "$@"; rc=$?\n'
                    f'echo "$a $(date +%s.%N) $rc $*" >> {trace}\n'
                    "exit $rc\n"
                )
                wrapper.chmod(0o755)
                pytest_exe = str(wrapper)
            pytest_env = ', "env": {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}' if args.no_plugin_autoload else ""
            stage = STAGE.replace("REPO", str(repo)).replace("PYTEST", pytest_exe).replace("STEP_ENV", pytest_env)
            _, split_branch = await api.project_with_branch("split")
            await api.stage(split_branch, "suite", stage.replace("PARALLEL", f'"parallel": {args.parts},'))
            _, plain_branch = await api.project_with_branch("plain")
            await api.stage(plain_branch, "suite", stage.replace("PARALLEL", ""))
            out: dict[str, Any] = {
                "suite": {
                    "tests": args.long + args.short,
                    "long": [args.long, args.long_s],
                    "short": [args.short, args.short_s],
                    "total_s": round(total, 2),
                },
                "parts": args.parts,
                "ideal_s": round(ideal, 2),
            }
            out["load_before"] = os.getloadavg()
            runs: dict[str, dict[str, Any]] = {}
            for name, branch in [("split_by_count", split_branch), ("split_by_timing", split_branch)] + (
                [] if args.no_plain else [("no_split", plain_branch)]
            ):
                runs[name] = await one_flow(api, branch)
                runs[name]["load_after"] = os.getloadavg()
                if trace.exists():  # each pytest process: seconds, exit code, whether it only collected
                    runs[name]["pytest_processes"] = [
                        [round(float(b) - float(a), 2), int(rc), "--collect-only" in " ".join(rest)]
                        for a, b, rc, *rest in (line.split(" ", 3) for line in trace.read_text().splitlines())
                    ]
                    trace.unlink()
            for name, r in runs.items():
                r["wall_to_ideal"] = round(r["wall_s"] / ideal, 3)
                r["slowest_part_to_ideal"] = round(r["parts_test_s"][0] / ideal, 3)
                out[name] = r
            print(json.dumps(out, indent=2))
        finally:
            await api.close()
            for a in agents:
                a.stop()
            srv.stop()


if __name__ == "__main__":
    asyncio.run(main())
