"""Benchmark: trigger -> completed latency of a one-step `echo` flow, and throughput of 200 jobs on 2 agents.

Starts a real `kraken serve` (SQLite by default, or --database-url) and real agent processes,
waits on the live event stream (no polling), prints JSON.

    .venv/bin/python bench/flow_latency.py [--flows 30] [--jobs 200] [--database-url URL]
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
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.procs import ADMIN_PASSWORD, Server, start_agent, wait_agent_connected

ECHO = """
def stage(ctx):
    return {"jobs": [{"name": "echo", "steps": [{"tool": "shell", "cmd": "echo hello"}],
                      "environments": [{"system": "any"}]}]}
"""


class Watcher:
    """Follows /api/events and resolves a future per flow when it completes."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.done_early: dict[int, float] = {}
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            headers = {"Authorization": f"Bearer {self.token}"}
            async with client.stream("GET", self.base + "/api/events", headers=headers) as resp:
                event = ""
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        if event == "hello":
                            self.ready.set()
                        elif event == "flow":
                            data = orjson.loads(line[6:])
                            if data.get("state") == "completed":
                                now = time.perf_counter()
                                fut = self.waiting.pop(data["id"], None)
                                if fut is not None:
                                    fut.set_result(now)
                                else:
                                    self.done_early[data["id"]] = now

    def wait(self, flow_id: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if flow_id in self.done_early:
            fut.set_result(self.done_early.pop(flow_id))
        else:
            self.waiting[flow_id] = fut
        return fut


FAN_OUT = """
def stage(ctx):
    return {"jobs": [{"name": "echo-%d" % i, "steps": [{"tool": "shell", "cmd": "echo hello"}],
                      "environments": [{"system": "any"}]} for i in range(N)]}
"""


async def setup(base: str, code: str = ECHO, project: str = "bench") -> tuple[httpx.AsyncClient, int, str]:
    http = httpx.AsyncClient(base_url=base + "/api", timeout=60)
    r = await http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    token = r.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    p = (await http.post("/projects", json={"name": project})).json()
    b = (await http.post(f"/projects/{p['id']}/branches", json={"name": "main", "branch_name": "main"})).json()
    r = await http.post(f"/branches/{b['id']}/stages", json={"name": "echo", "schema_code": code})
    assert r.status_code == 201, r.text
    return http, b["id"], token


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def latency(base: str, flows: int) -> dict[str, Any]:
    http, branch_id, token = await setup(base)
    watcher = Watcher(base, token)
    await watcher.ready.wait()
    samples = []
    for i in range(flows + 3):
        t0 = time.perf_counter()
        r = await http.post(f"/branches/{branch_id}/flows", json={"kind": "ci"})
        flow = r.json()
        t1 = await watcher.wait(flow["id"])
        if i >= 3:  # warm-up
            samples.append((t1 - t0) * 1000)
    check = (await http.get(f"/flows/{flow['id']}")).json()
    assert check["result"] == "passed", check
    watcher.task.cancel()
    await http.aclose()
    return {
        "flows": len(samples),
        "median_ms": round(statistics.median(samples), 1),
        "p90_ms": round(pct(samples, 0.9), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
    }


async def fan_out(base: str, jobs: int) -> dict[str, Any]:
    """One flow whose stage has `jobs` one-step echo jobs."""
    http, branch_id, token = await setup(base, FAN_OUT.replace("N", str(jobs)), "fanout")
    watcher = Watcher(base, token)
    await watcher.ready.wait()
    t0 = time.perf_counter()
    flow = (await http.post(f"/branches/{branch_id}/flows", json={"kind": "ci"})).json()
    end = await watcher.wait(flow["id"])
    elapsed = end - t0
    flow = (await http.get(f"/flows/{flow['id']}")).json()
    assert flow["result"] == "passed", flow
    per_agent: dict[str, int] = {}
    for j in (await http.get(f"/runs/{flow['runs'][0]['id']}/jobs")).json():
        per_agent[j["agent_name"]] = per_agent.get(j["agent_name"], 0) + 1
    assert sum(per_agent.values()) == jobs
    watcher.task.cancel()
    await http.aclose()
    return {"jobs": jobs, "seconds": round(elapsed, 2), "jobs_per_s": round(jobs / elapsed, 1), "per_agent": per_agent}


async def throughput(base: str, jobs: int) -> dict[str, Any]:
    """`jobs` flows of one echo job each, all triggered at once."""
    http, branch_id, token = await setup(base)
    watcher = Watcher(base, token)
    await watcher.ready.wait()
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(8)

    async def trigger() -> int:
        async with sem:
            return int((await http.post(f"/branches/{branch_id}/flows", json={"kind": "ci"})).json()["id"])

    ids = await asyncio.gather(*(trigger() for _ in range(jobs)))
    futures = [watcher.wait(i) for i in ids]
    ends = await asyncio.gather(*futures)
    elapsed = max(ends) - t0
    results = {(await http.get(f"/flows/{i}")).json()["result"] for i in ids[-5:]}
    assert results == {"passed"}, results
    per_agent: dict[str, int] = {}
    for i in ids:
        f = (await http.get(f"/flows/{i}")).json()
        for j in (await http.get(f"/runs/{f['runs'][0]['id']}/jobs")).json():
            per_agent[j["agent_name"]] = per_agent.get(j["agent_name"], 0) + 1
    watcher.task.cancel()
    await http.aclose()
    return {"jobs": jobs, "seconds": round(elapsed, 2), "jobs_per_s": round(jobs / elapsed, 1), "per_agent": per_agent}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--parts", default="latency,throughput", help="comma-separated: latency, throughput")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {"database": "postgresql" if args.database_url else "sqlite"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.chmod(tmp, 0o755)  # as root, the local agent's job user must reach its dir beside the data dir
        env = {"KRAKEN_LOG_LEVEL": "warning", "KRAKEN_HEARTBEAT_INTERVAL": "5", "KRAKEN_AGENT_TIMEOUT": "20"}
        if "latency" in parts:
            srv = Server(work, database_url=args.database_url, local_agent=True, name="lat", **env)
            try:
                out["latency_one_echo_flow"] = await latency(srv.url, args.flows)
            finally:
                srv.stop()
        if "throughput" not in parts:
            print(json.dumps(out, indent=2))
            return
        if args.database_url:  # a fresh database for the second part
            from tests.conftest import create_pg_database

            db2 = await create_pg_database()
        else:
            db2 = None
        srv = Server(work, database_url=db2, name="thr", **env)
        agents = [start_agent(work, srv.url, f"bench{i}", "--executor", "direct") for i in (1, 2)]
        try:
            for a in agents:
                wait_agent_connected(a)
            out["throughput_2_agents_one_flow"] = await fan_out(srv.url, args.jobs)
            out["throughput_2_agents_separate_flows"] = await throughput(srv.url, args.jobs)
        finally:
            for a in agents:
                a.stop()
            srv.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
