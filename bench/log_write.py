"""Benchmark: a job that prints 200 000 lines, end to end (agent -> server -> database).

Starts a real `kraken serve` (SQLite by default, or --database-url) with its local agent, runs a
one-step `seq 1 N` job several times and an `echo` job as the baseline, and reports per run the
job's own time (started -> finished, the server's timestamps) and trigger -> flow completed (the
live event stream), minus nothing: compare the two columns with the `echo` baseline.  With the
search indexer of the log store running, this shows whether it slows the write path.

    .venv/bin/python bench/log_write.py [--lines 200000] [--runs 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.flow_latency import Watcher, setup
from tests.support.procs import Server

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "print", "steps": [{"tool": "shell", "cmd": "CMD"}],
                      "environments": [{"system": "any"}]}]}
"""


async def runs_of(base: str, cmd: str, runs: int, project: str, lines: int) -> dict[str, Any]:
    http, branch_id, token = await setup(base, STAGE.replace("CMD", cmd), project)
    watcher = Watcher(base, token)
    await watcher.ready.wait()
    job_s, flow_s = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        flow = (await http.post(f"/branches/{branch_id}/flows", json={"kind": "ci"})).json()
        t1 = await watcher.wait(flow["id"])
        flow = (await http.get(f"/flows/{flow['id']}")).json()
        [job] = (await http.get(f"/runs/{flow['runs'][0]['id']}/jobs")).json()
        assert job["result"] == "passed" and job["log_lines"] == lines, job
        if i == 0:
            continue  # warm-up
        started, finished = (datetime.fromisoformat(job[k]) for k in ("started", "finished"))
        job_s.append((finished - started).total_seconds())
        flow_s.append(t1 - t0)
    watcher.task.cancel()
    await http.aclose()
    return {
        "runs": runs,
        "job_median_s": round(statistics.median(job_s), 3),
        "job_min_s": round(min(job_s), 3),
        "trigger_to_completed_median_s": round(statistics.median(flow_s), 3),
        "trigger_to_completed_min_s": round(min(flow_s), 3),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {"database": "postgresql" if args.database_url else "sqlite", "lines": args.lines}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # as root, the local agent's job user must reach its dir beside the data dir
        env = {"KRAKEN_LOG_LEVEL": "warning", "KRAKEN_HEARTBEAT_INTERVAL": "5", "KRAKEN_AGENT_TIMEOUT": "20"}
        srv = Server(Path(tmp), database_url=args.database_url, local_agent=True, name="logw", **env)
        try:
            out["baseline_echo"] = await runs_of(srv.url, "echo hello", args.runs, "echo", 1)
            out["seq_lines"] = await runs_of(srv.url, f"seq 1 {args.lines}", args.runs, "seq", args.lines)
        finally:
            srv.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
