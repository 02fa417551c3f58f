"""A database full of CI history for the web UI's benchmark and screenshots.

Rows are made the way the backbone makes them (models), test results go through the real
``test_results`` handler and the real analysis, logs are stored as the agent messages store
them (``log_chunk``).  One project "acme" with branch "main" and stages build -> unit-tests,
lint; ``flows`` CI flows, each with a build job (its log has ``log_lines`` lines in the last
flow) and two unit-test jobs (linux, windows) reporting ``tests`` results each; a few tests
are flaky, the last flow breaks some (regressions) and mends earlier failures (fixes).

    .venv/bin/python bench/ui_seed.py --data-dir /tmp/kraken-ui --tests 50000 --flows 2
    .venv/bin/kraken serve --data-dir /tmp/kraken-ui --no-local-agent
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUILD = """def stage(ctx):
    return {
        "parent": "root",
        "parameters": [{"name": "compiler", "type": "string", "default": "gcc-13"}],
        "jobs": [{
            "name": "build",
            "steps": [
                {"tool": "git", "checkout": "https://example.com/acme.git", "destination": "src"},
                {"tool": "shell", "cmd": "make -j8 CC=#{compiler}", "cwd": "src"},
            ],
            "environments": [{"system": "debian-12", "agents_group": "all", "executor": "local"}],
        }],
    }
"""

TESTS = """def stage(ctx):
    return {
        "parent": "build",
        "jobs": [{
            "name": "unit-tests",
            "steps": [
                {"tool": "git", "checkout": "https://example.com/acme.git", "destination": "src"},
                {"tool": "pytest", "params": "-n 8 tests", "cwd": "src"},
            ],
            "environments": [
                {"system": "debian-12", "agents_group": "all", "executor": "local"},
                {"system": "windows-2022", "agents_group": "all", "executor": "local"},
            ],
        }],
    }
"""

LINT = """def stage(ctx):
    return {
        "parent": "build",
        "jobs": [{
            "name": "lint",
            "steps": [{"tool": "shell", "cmd": "ruff check ."}],
            "environments": [{"system": "any", "agents_group": "all", "executor": "local"}],
        }],
    }
"""

MODULES = ["core", "api", "storage", "scheduler", "net", "parser", "cache", "auth", "ui", "cli"]


def test_names(n: int) -> list[str]:
    out = []
    for i in range(n):
        mod = MODULES[i % len(MODULES)]
        out.append(f"tests/{mod}/test_{mod}_{i // 200:03d}.py::Test{mod.title()}{(i // 20) % 10}::test_case_{i}")
    return out


def log_text(n: int, first: int, failing: bool) -> str:
    """A build log: compiler lines, warnings, a test summary, with ANSI colours."""
    lines = []
    for i in range(first, first + n):
        r = i % 97
        if i == 0:
            lines.append("\x1b[1m$ make -j8 CC=gcc-13\x1b[0m")
        elif r == 13:
            warning = f"unused variable 'tmp_{i}' [-Wunused-variable]"
            lines.append(f"src/module_{i % 300}.c:{i % 900}:12: \x1b[35mwarning:\x1b[0m {warning}")
        elif r == 42:
            lines.append(f"\x1b[32m[ OK ]\x1b[0m step {i}: linked libacme_{i % 50}.so ({i % 7 + 1}.{i % 10} MB)")
        elif r == 71 and failing:
            lines.append(f"\x1b[31;1merror:\x1b[0m test_case_{i} failed: expected 200, got 500")
        else:
            lines.append(f"  CC       src/module_{i % 300}/file_{i}.o  \x1b[2m({(i * 37) % 1000} ms)\x1b[0m")
    return "\n".join(lines)


async def seed(
    data_dir: Path, *, tests: int, flows: int, log_lines: int, regressions: int = 12, quiet: bool = False
) -> dict[str, Any]:
    """Create the database in ``data_dir`` (SQLite, as ``kraken serve`` uses it) and fill it."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    import kraken.models.results  # registers the results tables
    from kraken.control.effects import Effects
    from kraken.core.config import Settings
    from kraken.core.db import Database
    from kraken.core.migrate import upgrade
    from kraken.models import Branch, Flow, Job, LogChunk, Project, Run, Stage, Step
    from kraken.results.analysis import advance_branch, analyze_job
    from kraken.results.ingest import on_test_results
    from kraken.stage import StageContext, check_stage_code

    assert kraken.models.results
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir)
    url = settings.effective_database_url
    await upgrade(url)
    db = Database(url)
    async with db.engine.begin() as conn:  # tables without a migration yet (results, while in progress)
        await conn.run_sync(SQLModel.metadata.create_all)

    started = time.perf_counter()
    rnd = random.Random(7)
    names = test_names(tests)
    flaky = set(rnd.sample(range(tests), max(1, tests // 2000)))
    broken = set(rnd.sample(range(tests), min(regressions, tests)))
    chronic = set(rnd.sample(range(tests), max(1, tests // 5000)))  # failed all along, fixed in the last flow
    slow = {i: 1.5 + rnd.random() * 3 for i in rnd.sample(range(tests), max(1, tests // 500))}
    showcase = min(flaky)  # flaky and slow, with values: a lively history page
    slow[showcase] = 2.5
    out: dict[str, Any] = {}

    async with db.transaction() as s:
        project = Project(name="acme", description="A C library with a big test suite (seeded demo data)")
        s.add(project)
        await s.flush()
        assert project.id is not None
        branch = Branch(project_id=project.id, name="main", branch_name="main", repo_url="https://example.com/acme.git")
        s.add(branch)
        await s.flush()
        assert branch.id is not None
        branch_id = branch.id
        stage_ids: dict[str, int] = {}
        for name, code in (("build", BUILD), ("unit-tests", TESTS), ("lint", LINT)):
            schema = await check_stage_code(
                code, StageContext(branch_name="main", project_name="acme", stage_name=name)
            )
            st = Stage(branch_id=branch_id, name=name, schema_code=code, schema_=schema, parent=schema["parent"])
            s.add(st)
            await s.flush()
            assert st.id is not None
            stage_ids[name] = st.id
        branch.ci_flow_seq = flows
        out["project_id"], out["branch_id"] = project.id, branch_id

    async def send(job_id: int, results: list[list[Any]]) -> None:
        async with db.transaction() as s:
            job = await s.get(Job, job_id)
            assert job is not None
            await on_test_results(s, job, {"type": "test_results", "step_index": 1, "results": results}, Effects())

    t0 = datetime.now(UTC) - timedelta(hours=2 * flows + 1)
    for seq in range(1, flows + 1):
        last = seq == flows
        begin = t0 + timedelta(hours=2 * seq)
        async with db.transaction() as s:
            flow = Flow(
                branch_id=branch_id,
                kind="ci",
                seq=seq,
                state="completed",
                result="passed",
                trigger={"reason": "push", "user": "alice" if seq % 3 else "bob"},
                args={"compiler": "gcc-13"},
                created=begin,
                started=begin,
                finished=begin + timedelta(minutes=14, seconds=seq * 7 % 60),
            )
            s.add(flow)
            await s.flush()
            assert flow.id is not None
            runs: dict[str, Run] = {}
            offsets = {"build": (0, 4), "unit-tests": (4, 14), "lint": (4, 5)}
            for i, name in enumerate(("build", "unit-tests", "lint")):
                a, b = offsets[name]
                run = Run(
                    flow_id=flow.id,
                    stage_id=stage_ids[name],
                    stage_name=name,
                    seq=i + 1,
                    state="completed",
                    result="passed",
                    args={"compiler": "gcc-13"},
                    jobs_total=2 if name == "unit-tests" else 1,
                    created=begin + timedelta(minutes=a),
                    started=begin + timedelta(minutes=a),
                    finished=begin + timedelta(minutes=b, seconds=seq % 50),
                )
                s.add(run)
                runs[name] = run
            await s.flush()
            jobs: list[Job] = []
            for name, system, config in (
                ("build", "debian-12", None),
                ("unit-tests", "debian-12", None),
                ("unit-tests", "windows-2022", None),
                ("lint", "any", None),
            ):
                run = runs[name]
                assert run.id is not None and run.started is not None
                job = Job(
                    run_id=run.id,
                    name=name,
                    state="completed",
                    result="passed",
                    agent_name=f"agent-{len(jobs) + 1}",
                    system=system,
                    config_name=config,
                    executor="direct",
                    created=run.started,
                    assigned=run.started,
                    started=run.started,
                    finished=run.finished,
                )
                s.add(job)
                jobs.append(job)
            await s.flush()
            for job in jobs:
                assert job.id is not None
                tools = [("git", {"checkout": "https://example.com/acme.git"})]
                if job.name == "build":
                    tools.append(("shell", {"cmd": "make -j8 CC=gcc-13"}))
                elif job.name == "lint":
                    tools = [("shell", {"cmd": "ruff check ."})]
                else:
                    tools.append(("pytest", {"params": "-n 8 tests"}))
                for idx, (tool, fields) in enumerate(tools):
                    s.add(
                        Step(
                            job_id=job.id,
                            index=idx,
                            tool=tool,
                            fields=fields,
                            state="completed",
                            result="passed",
                            exit_code=0,
                            started=job.started,
                            finished=job.finished,
                        )
                    )
            build = jobs[0]
            assert build.id is not None
            n_log = log_lines if last else 400
            chunk = 1000
            for k, first in enumerate(range(0, n_log, chunk)):
                count = min(chunk, n_log - first)
                s.add(
                    LogChunk(
                        job_id=build.id,
                        seq=k + 1,
                        step_index=1,
                        first_line=first,
                        line_count=count,
                        text=log_text(count, first, last),
                    )
                )
            build.log_lines = n_log
            ids = [j.id for j in jobs if j.id is not None]
            flow_id = flow.id
            run_ids = {name: r.id for name, r in runs.items()}
        # results of the two unit-test jobs
        any_failed = False
        for job_id in ids[1:3]:
            batch: list[list[Any]] = []
            for i, name in enumerate(names):
                fails = i in chronic and flows - 6 <= seq < flows  # broke 6 flows ago, fixed in the last
                if last and i in broken:
                    fails = True
                if i in flaky and rnd.random() < 0.2:
                    fails = True
                status = "failed" if fails else ("skipped" if i % 97 == 0 else "passed")
                any_failed |= fails
                duration = slow.get(i, 0.002 + (i % 13) * 0.004) * (0.9 + rnd.random() * 0.2)
                message = f"AssertionError: expected 200, got 500\n  at test_case_{i}" if fails else None
                values = {"throughput": round(1000 + (i % 7) * 10 + rnd.random() * 40, 1)} if i in slow else None
                batch.append([name, status, round(duration, 4), message, values])
                if len(batch) == 5000:
                    await send(job_id, batch)
                    batch = []
            if batch:
                await send(job_id, batch)
        for job_id in ids[1:3]:  # as when the jobs end: every result arrived before
            await analyze_job(db, job_id)
        if any_failed:
            async with db.transaction() as s:
                await s.execute(sa.update(Run).where(Run.id == run_ids["unit-tests"]).values(result="failed"))  # type: ignore[arg-type]
                await s.execute(sa.update(Flow).where(Flow.id == flow_id).values(result="failed"))  # type: ignore[arg-type]
        await advance_branch(db, branch_id)
        out[f"flow_{seq}"] = {"flow_id": flow_id, "runs": run_ids, "jobs": ids}
        if not quiet:
            print(f"seed: flow {seq}/{flows} done ({time.perf_counter() - started:.1f}s)", flush=True)
    last_flow = out[f"flow_{flows}"]
    out["results_run_id"] = last_flow["runs"]["unit-tests"]
    out["log_job_id"] = last_flow["jobs"][0]
    out["results"] = tests * 2
    async with db.session() as s:
        tc = (
            await s.execute(
                sa.text("SELECT test_case_id FROM test_result WHERE run_id = :r AND change = 3 LIMIT 1"),
                {"r": out["results_run_id"]},
            )
        ).scalar()
        out["regression_test_case_id"] = tc
        out["flaky_test_case_id"] = (
            await s.execute(sa.text("SELECT id FROM test_case WHERE name = :n"), {"n": names[showcase]})
        ).scalar()
    await db.dispose()
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--tests", type=int, default=2000, help="tests per unit-test job (two jobs per flow)")
    ap.add_argument("--flows", type=int, default=20)
    ap.add_argument("--log-lines", type=int, default=5000, help="lines of the last build job's log")
    args = ap.parse_args()
    import json

    print(json.dumps(asyncio.run(seed(args.data_dir, tests=args.tests, flows=args.flows, log_lines=args.log_lines))))


if __name__ == "__main__":
    main()
