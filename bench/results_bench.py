"""Benchmark of test-result collection, ingestion, analysis and the results API.

For each database (PostgreSQL, SQLite) and each size (100 000 and 1 000 000 results):
flow 1 is one CI job with N JUnit results, flow 2 the same tests with 1 % of them flipped
(passed <-> failed).  The agent side (the real ``junit_collect`` tool through the direct
executor, streaming the XML file) runs in its own process and writes the exact messages
it would send; the server side applies them through the real ``test_results`` handler,
then runs the analysis task as the backbone does when the job ends.  Last, the results
API is timed on the flow-2 run of the largest size (>= 2 000 000 results in history).

    .venv/bin/python bench/results_bench.py                       # both databases, 100k and 1M
    .venv/bin/python bench/results_bench.py --db sqlite --sizes 100000
    .venv/bin/python bench/results_bench.py --db postgresql --sizes 1000000 --keep-db   # keep it, print its URL
    .venv/bin/python bench/results_bench.py --api-only URL RUN_ID     # the API figures only, on a kept database

The API figures include the triage filters (age, instability, agents group) and the
``quarantined`` flag of each result, with QUARANTINED of the run's tests quarantined on the
branch (half of them regressed ones).

Prints one JSON document.  PostgreSQL: KRAKEN_BENCH_PG (default
postgresql://postgres@127.0.0.1:5432/postgres) must allow CREATE DATABASE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("KRAKEN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's RSS while a phase runs (ru_maxrss only knows the lifetime peak)."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)


# ------------------------------------------------------------------------------ report files


def write_junit(path: Path, n: int, flipped: set[int], base_failures: set[int]) -> None:
    with path.open("w", buffering=1 << 20) as fh:
        fh.write(f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n<testsuite name="bench" tests="{n}">\n')
        for i in range(n):
            fails = (i in base_failures) != (i in flipped)
            name = f'<testcase classname="pkg{i // 10000}.mod{i // 100}" name="test_case_{i}" time="0.{i % 997:03d}"'
            if fails:
                fh.write(
                    f'{name}><failure message="assert {i} == {i + 1}">Traceback (most recent call last):\n'
                    f'  File "pkg/mod.py", line {i % 500}, in test_case_{i}\nAssertionError</failure></testcase>\n'
                )
            else:
                fh.write(name + "/>\n")
        fh.write("</testsuite>\n</testsuites>\n")


# ------------------------------------------------------------------------------ agent process


async def agent_main(xml: str, out: str) -> None:
    """Run the real junit_collect tool; each message it sends is written as one JSON line."""
    from kraken.agent.executors.base import JobEnvironment
    from kraken.agent.executors.direct import DirectExecutor
    from kraken.agent.tools.base import ToolContext
    from kraken.agent.tools.junit import JUnitCollectTool

    started = time.perf_counter()
    with open(out, "wb") as fh, tempfile.TemporaryDirectory() as tmp:  # noqa: ASYNC230 (a benchmark's sink)
        executor = DirectExecutor(JobEnvironment(job_id=1, agent_name="bench", system="any", data_dir=tmp))
        await executor.start()
        sent = 0

        async def send(msg: Any) -> None:  # a kraken.protocol message
            nonlocal sent
            fh.write(msg.model_dump_json(exclude={"job_id", "seq"}).encode() + b"\n")
            sent += 1

        async def log(line: str) -> None:
            return None

        ctx = ToolContext(executor=executor, job_id=1, step_index=0, log=log, send=send)
        with RssSampler() as rss:  # (ru_maxrss would include the parent's size at fork)
            outcome = await JUnitCollectTool().run(
                ctx, {"file_glob": os.path.basename(xml), "cwd": os.path.dirname(xml)}
            )
        await executor.stop()
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - started, 3),
                "messages": sent,
                "outcome": outcome.result,
                "peak_rss_mb": round(rss.peak, 1),
            }
        )
    )


# ------------------------------------------------------------------------------ server side


async def make_db(kind: str) -> tuple[str, Any]:
    if kind == "sqlite":
        d = tempfile.mkdtemp(prefix="kraken-bench-")
        return f"sqlite+aiosqlite:///{d}/bench.db", None
    import asyncpg

    name = f"kraken_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


async def drop_db(name: str | None) -> None:
    if name is None:
        return
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


QUARANTINED = 1000  # tests of the measured run quarantined on its branch


async def quarantine_some(db: Any, run_id: int) -> int:
    """Quarantine QUARANTINED of the run's tests on its branch (half regressed ones), as the
    triage would; returns how many are quarantined."""
    import sqlalchemy as sa

    async with db.transaction() as s:
        branch_id = (
            await s.execute(sa.text("SELECT branch_id FROM results_job WHERE run_id = :r LIMIT 1"), {"r": run_id})
        ).scalar()
        ids: list[int] = []
        for where in ("change = 3", "change = 0"):  # regressions, then unchanged tests, the first pages' first
            rows = await s.execute(
                sa.text(
                    f"SELECT test_case_id FROM test_result WHERE run_id = :r AND {where} "
                    "ORDER BY relevancy DESC, id DESC LIMIT :n"
                ),
                {"r": run_id, "n": QUARANTINED // 2},
            )
            ids += [int(i) for i in rows.scalars()]
        await s.execute(
            sa.text(
                "INSERT INTO test_quarantine (branch_id, test_case_id, reason, created_by, created, passes) "
                "VALUES (:b, :t, 'bench', 'bench', CURRENT_TIMESTAMP, 0)"
            ),
            [{"b": branch_id, "t": t} for t in sorted(set(ids))],
        )
    return len(set(ids))


async def server_main(kind: str, sizes: list[int], flip: float, api_reps: int, keep_db: bool = False) -> dict[str, Any]:
    import orjson
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    import kraken.models.results  # noqa: F401
    from kraken.control.effects import Effects
    from kraken.core.db import Database
    from kraken.models import Branch, Flow, Job, Project, Run
    from kraken.protocol import TestResults
    from kraken.results.analysis import advance_branch, analyze_job
    from kraken.results.ingest import on_test_results

    url, pg_name = await make_db(kind)
    db = Database(url)
    out: dict[str, Any] = {"database": kind, "sizes": {}}
    tmp = Path(tempfile.mkdtemp(prefix="kraken-bench-files-"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        last_run = 0
        for n in sizes:
            async with db.transaction() as s:
                p = Project(name=f"bench-{n}")
                s.add(p)
                await s.flush()
                b = Branch(project_id=p.id, name="main", branch_name="main")  # type: ignore[arg-type]
                s.add(b)
                await s.flush()
                branch_id = b.id
            rnd = random.Random(n)
            base_failures = set(rnd.sample(range(n), n // 1000))
            flipped = set(rnd.sample(range(n), int(n * flip)))
            figures = []
            for seq, flips in ((1, set()), (2, flipped)):
                xml = tmp / f"junit-{n}-{seq}.xml"
                write_junit(xml, n, flips, base_failures)
                msgs = tmp / f"msgs-{n}-{seq}.jsonl"
                agent = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, __file__, "--agent", str(xml), str(msgs)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                agent_fig = json.loads(agent.stdout.strip().splitlines()[-1])
                xml_mb = xml.stat().st_size / 2**20
                xml.unlink()
                async with db.transaction() as s:
                    f = Flow(branch_id=branch_id, kind="ci", seq=seq, state="running")  # type: ignore[arg-type]
                    s.add(f)
                    await s.flush()
                    r = Run(flow_id=f.id, stage_name="tests", state="running")  # type: ignore[arg-type]
                    s.add(r)
                    await s.flush()
                    j = Job(run_id=r.id, name="unit", system="linux", state="running")  # type: ignore[arg-type]
                    s.add(j)
                    await s.flush()
                    assert f.id is not None and r.id is not None and j.id is not None and branch_id is not None
                    flow_id, run_id, job_id = f.id, r.id, j.id
                with RssSampler() as rss:
                    t0 = time.perf_counter()
                    with msgs.open("rb") as fh:
                        for line in fh:
                            msg = TestResults.model_validate({**orjson.loads(line), "job_id": job_id, "seq": 1})
                            async with db.transaction() as s:
                                job = await s.get(Job, job_id)
                                await on_test_results(s, job, msg, Effects())  # type: ignore[arg-type]
                    ingest = time.perf_counter() - t0
                    async with db.transaction() as s:
                        await s.execute(sa.text("UPDATE job SET state = 'completed' WHERE id = :j"), {"j": job_id})
                    t1 = time.perf_counter()
                    await analyze_job(db, job_id)  # what the backbone enqueues when the job ends
                    analysis = time.perf_counter() - t1
                    async with db.transaction() as s:
                        await s.execute(sa.text("UPDATE run SET state = 'completed' WHERE id = :r"), {"r": run_id})
                        await s.execute(sa.text("UPDATE flow SET state = 'completed' WHERE id = :f"), {"f": flow_id})
                    await advance_branch(db, branch_id)  # flow completed: seal it
                msgs.unlink()
                async with db.session() as s:
                    summary = (
                        await s.execute(sa.text("SELECT summary FROM results_job WHERE job_id = :j"), {"j": job_id})
                    ).scalar()
                if isinstance(summary, str):
                    summary = json.loads(summary)
                assert isinstance(summary, dict)
                assert summary["total"] == n, summary
                if seq == 2:
                    flipped_base = len(flipped & base_failures)
                    assert summary["regressions"] == len(flipped) - flipped_base, summary
                    assert summary["fixes"] == flipped_base, summary
                figures.append(
                    {
                        "flow": seq,
                        "results": n,
                        "xml_mb": round(xml_mb, 1),
                        "agent_parse_and_send_s": agent_fig["seconds"],
                        "agent_peak_rss_mb": agent_fig["peak_rss_mb"],
                        "messages": agent_fig["messages"],
                        "server_ingest_s": round(ingest, 3),
                        "job_end_to_analysis_done_s": round(analysis, 3),
                        "server_ingest_plus_analysis_s": round(ingest + analysis, 3),
                        "server_peak_rss_mb": round(rss.peak, 1),
                        "regressions": summary["regressions"],
                        "fixes": summary["fixes"],
                        "failed": summary["failed"],
                    }
                )
                last_run = run_id
            out["sizes"][str(n)] = figures
        async with db.session() as s:
            out["results_in_history"] = (await s.execute(sa.text("SELECT count(*) FROM test_result"))).scalar()
        out["quarantined"] = await quarantine_some(db, last_run)
        out["api"] = await bench_api(db, last_run, api_reps)
        out["server_peak_rss_mb_lifetime"] = round(peak_rss_mb(), 1)
        if keep_db:
            out["kept"] = {"url": url, "run_id": last_run}
    finally:
        await db.dispose()
        if not keep_db:
            await drop_db(pg_name)
    return out


async def bench_api(db: Any, run_id: int, reps: int) -> dict[str, Any]:
    from types import SimpleNamespace

    import httpx
    import sqlalchemy as sa
    from fastapi import FastAPI

    from kraken.api.deps import SCOPES, Principal, current_principal
    from kraken.api.routes.results import router
    from kraken.models import User
    from kraken.results.queries import encode_cursor as _encode

    app = FastAPI()
    app.include_router(router, prefix="/api")
    app.state.db = db
    app.state.kraken = SimpleNamespace(runtime=SimpleNamespace(db=db))
    # the caller is an administrator (the routes check roles since #13: an administrator needs no read)
    app.dependency_overrides[current_principal] = lambda: Principal(
        User(id=1, username="bench", password_hash="", is_admin=True), frozenset(SCOPES)
    )
    async with db.session() as s:
        total = (await s.execute(sa.text("SELECT count(*) FROM test_result WHERE run_id = :r"), {"r": run_id})).scalar()
        deep = (
            await s.execute(
                sa.text(
                    "SELECT relevancy, id FROM test_result WHERE run_id = :r ORDER BY relevancy DESC, id DESC "
                    "LIMIT 1 OFFSET :o"
                ),
                {"r": run_id, "o": int(total * 0.9)},
            )
        ).one()
        group = (
            await s.execute(
                sa.text(
                    "SELECT e.agents_group FROM test_env e JOIN results_job j ON j.env_id = e.id WHERE j.run_id = :r"
                ),
                {"r": run_id},
            )
        ).scalar()
    deep_cursor = _encode(deep[0], deep[1])
    results = f"/api/runs/{run_id}/results?limit=50"
    queries = {
        "first_page": f"/api/runs/{run_id}/results?limit=50",
        "regressions": f"/api/runs/{run_id}/results?change=regression&limit=50",
        "failed_regressions": f"/api/runs/{run_id}/results?status=failed&change=regression&limit=50",
        "deep_page_90pct": f"/api/runs/{run_id}/results?limit=50&cursor={deep_cursor}",
        "summary": f"/api/runs/{run_id}/summary",
        # the triage filters (issue #15): counted with SQL, not from the summaries' matrix
        "age_min_1": f"{results}&age_min=1",
        "age_0": f"{results}&age_min=0&age_max=0",
        "age_min_1_failed": f"{results}&age_min=1&status=failed",
        "instability_min_1": f"{results}&instability_min=1",
        "instability_0_regressions": f"{results}&instability_max=0&change=regression",
        "agents_group": f"{results}&agents_group={group}",
        "agents_group_none": f"{results}&agents_group=nobody",
        "agents_group_regressions": f"{results}&agents_group={group}&change=regression",
        "sort_duration": f"{results}&sort=-duration",  # no filter: what the sort alone costs
        "age_instability_group_sort_duration": f"{results}&age_min=1&instability_max=0&agents_group={group}"
        "&sort=-duration",
    }
    out: dict[str, Any] = {"run_results": total}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        r = await client.get(queries["regressions"])
        r.raise_for_status()
        body = r.json()
        cursor = body["next_cursor"]
        if cursor:
            queries["regressions_page_2"] = f"/api/runs/{run_id}/results?change=regression&limit=50&cursor={cursor}"
        for name, url in queries.items():
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                r = await client.get(url)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            times.sort()
            body = r.json()
            out[name] = {
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
                "items": len(body["items"]) if "items" in body else None,
                "total": body.get("total"),
                "quarantined_items": sum(1 for i in body["items"] if i["quarantined"]) if "items" in body else None,
            }
    return out


async def api_only(url: str, run_id: int, reps: int) -> dict[str, Any]:
    """The API figures on a kept database; tables added since it was built are created, and each
    job's summary (with its histogram) is written again, timed against the summary's former query."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    import kraken.models.results  # noqa: F401
    from kraken.core.db import Database
    from kraken.results.analysis import job_summary

    db = Database(url)
    out: dict[str, Any] = {"summaries": []}
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        async with db.session() as s:
            jobs = (await s.execute(sa.text("SELECT run_id, job_id FROM results_job ORDER BY job_id"))).all()
        for run, job in jobs:
            async with db.transaction() as s:
                t = time.perf_counter()
                await s.execute(
                    sa.text(
                        "SELECT status, change, flaky, perf_change, count(*) FROM test_result "
                        "WHERE run_id = :r AND job_id = :j GROUP BY status, change, flaky, perf_change"
                    ),
                    {"r": run, "j": job},
                )
                former = time.perf_counter() - t
                t = time.perf_counter()
                await job_summary(s, run, job)
                now = time.perf_counter() - t
                hist = (
                    await s.execute(sa.text("SELECT count(*) FROM results_hist WHERE job_id = :j"), {"j": job})
                ).scalar()
            out["summaries"].append(
                {
                    "job": job,
                    "former_summary_query_s": round(former, 3),
                    "summary_and_hist_s": round(now, 3),
                    "hist_rows": hist,
                }
            )
        out |= await bench_api(db, run_id, reps)
        return out
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--flip", type=float, default=0.01)
    ap.add_argument("--api-reps", type=int, default=40)
    ap.add_argument("--keep-db", action="store_true", help="keep the database; its URL and run id are printed")
    ap.add_argument("--api-only", nargs=2, metavar=("URL", "RUN_ID"), help="only the API figures, on a kept database")
    ap.add_argument("--agent", nargs=2, metavar=("XML", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--server", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.agent:
        asyncio.run(agent_main(*args.agent))
        return
    if args.api_only:
        url, run = args.api_only
        print(json.dumps(asyncio.run(api_only(url, int(run), args.api_reps)), indent=2))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.server:
        print(json.dumps(asyncio.run(server_main(args.server, sizes, args.flip, args.api_reps, args.keep_db))))
        return
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "runs": []}
    for kind in kinds:  # one process per database: clean memory figures
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--server",
                kind,
                "--sizes",
                args.sizes,
                "--flip",
                str(args.flip),
                "--api-reps",
                str(args.api_reps),
                *(["--keep-db"] if args.keep_db else []),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"{kind} benchmark failed")
        report["runs"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
