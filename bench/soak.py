"""Soak run (not in CI): steady load on ``kraken serve`` with its local agent (SQLite) for a
bounded time, sampling the resident memory (RSS), open file descriptors and sockets of every
Kraken process (the server and its local agent) every ``--every`` seconds.

Load: ``--concurrency`` flows in flight at all times (default 2), each one job that prints
``--lines`` log lines and a JUnit report of 20 tests (so log storage, the live event stream and
the result analysis all run); as soon as a flow completes its log is read back and another is
triggered. Nothing is asserted: it prints one JSON document with, per process and figure, the
first, last and largest sample and the least-squares slope per hour (over the whole run and over
its second half, after warm-up), plus the flows done, failed and any log that did not hold every
line once. The figures and the command are in docs/benchmarks.md ("Soak").

    PYTHONPATH=$PWD .venv/bin/python bench/soak.py [--minutes 30] [--every 10] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from tests.support.api import Api
from tests.support.procs import Server

TESTS = 20


def stage_code(lines: int) -> str:
    failure = "<failure message='x'/>"
    cases = "".join(
        f"<testcase classname='soak' name='t{i}'>{failure if i % 7 == 0 else ''}</testcase>" for i in range(TESTS)
    )
    report = f"<testsuite name='soak' tests='{TESTS}'>{cases}</testsuite>"
    return f"""
def stage(ctx):
    return {{"jobs": [{{"name": "soak", "steps": [
        {{"tool": "shell", "cmd": "for i in $(seq 1 {lines}); do echo soak-line-$i; done"}},
        {{"tool": "shell", "cmd": {json.dumps(f"echo {json.dumps(report)} > report.xml")}}},
        {{"tool": "junit_collect", "file_glob": "report.xml"}}],
        "environments": [{{"system": "any"}}]}}]}}
"""


def kraken_processes(server_pid: int) -> dict[str, psutil.Process]:
    """The server and its Kraken children (the local agent), by role; job processes are not Kraken's."""
    found = {"serve": psutil.Process(server_pid)}
    for child in found["serve"].children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "-m kraken" in cmd or "kraken.agent" in cmd:
            found["local_agent" if "local-agent" in cmd or "agent" in cmd else f"kraken_{child.pid}"] = child
    return found


def sample(procs: dict[str, psutil.Process]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for role, proc in procs.items():
        try:
            with proc.oneshot():
                fds = os.listdir(f"/proc/{proc.pid}/fd")
                sockets = sum(1 for fd in fds if _link(proc.pid, fd).startswith("socket:"))
                out[role] = {
                    "rss_mb": round(proc.memory_info().rss / 2**20, 2),
                    "fds": len(fds),
                    "sockets": sockets,
                    "threads": proc.num_threads(),
                }
        except (psutil.Error, FileNotFoundError):
            continue
    return out


def _link(pid: int, fd: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    if den == 0:
        return None
    return round(sum((t - mx) * (v - my) for t, v in points) / den * 3600, 3)


def summarise(samples: list[tuple[float, dict[str, dict[str, float]]]]) -> dict[str, Any]:
    roles = sorted({role for _, s in samples for role in s})
    out: dict[str, Any] = {}
    for role in roles:
        out[role] = {}
        for key in ("rss_mb", "fds", "sockets", "threads"):
            pts = [(t, s[role][key]) for t, s in samples if role in s]
            if not pts:
                continue
            half = [p for p in pts if p[0] >= pts[-1][0] / 2]
            out[role][key] = {
                "start": pts[0][1],
                "end": pts[-1][1],
                "max": max(v for _, v in pts),
                "min": min(v for _, v in pts),
                "slope_per_hour": slope_per_hour(pts),
                "slope_per_hour_second_half": slope_per_hour(half),
            }
    return out


async def soak(opts: argparse.Namespace) -> dict[str, Any]:
    stats: dict[str, Any] = {"flows_completed": 0, "flows_failed": 0, "bad_logs": [], "errors": []}
    samples: list[tuple[float, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="kraken-soak-") as tmp:
        server = Server(Path(tmp), name="server", local_agent=True)
        try:
            server.proc.wait_line(lambda line: "kraken.agent.client: connected to" in line, timeout=120)
            api = Api(server.url)
            await api.login()
            _, branch_id = await api.project_with_branch("soak")
            await api.stage(branch_id, "soak", stage_code(opts.lines))
            procs = kraken_processes(server.proc.proc.pid)
            t0 = time.monotonic()
            end = t0 + opts.minutes * 60
            samples.append((0.0, sample(procs)))

            async def sampler() -> None:
                while time.monotonic() < end:
                    await asyncio.sleep(opts.every)
                    samples.append((time.monotonic() - t0, sample(procs)))

            async def runner() -> None:
                while time.monotonic() < end:
                    try:
                        flow = await api.flow(branch_id)
                        done = await api.wait_flow(flow["id"], timeout=300)
                        [run] = done["runs"]
                        if run["state"] != "completed" or done.get("status") == "error":
                            stats["flows_failed"] += 1
                        for job in await api.jobs(run["id"]):
                            log = await api.log(job["id"])
                            got = [ln for ln in log.splitlines() if "soak-line-" in ln and "echo" not in ln]
                            if sorted(got) != sorted(f"soak-line-{i}" for i in range(1, opts.lines + 1)):
                                stats["bad_logs"].append(job["id"])
                        stats["flows_completed"] += 1
                    except Exception as exc:  # reported, the run goes on
                        stats["errors"].append(repr(exc)[:300])
                        await asyncio.sleep(1)

            await asyncio.gather(sampler(), *(runner() for _ in range(opts.concurrency)))
            stats["elapsed_s"] = round(time.monotonic() - t0, 1)
            await api.close()
        finally:
            server.stop()
    stats["flows_per_minute"] = round(stats["flows_completed"] / (stats["elapsed_s"] / 60), 2)
    stats["samples"] = len(samples)
    stats["processes"] = summarise(samples)
    stats["series_rss_mb"] = {
        role: [round(s[role]["rss_mb"], 1) for _, s in samples if role in s][:: max(1, len(samples) // 30)]
        for role in stats["processes"]
    }
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--concurrency", type=int, default=2, help="flows in flight (default 2)")
    parser.add_argument("--lines", type=int, default=200, help="log lines per job (default 200)")
    opts = parser.parse_args()
    if opts.minutes <= 0 or opts.every <= 0 or opts.concurrency < 1 or opts.lines < 1:
        parser.error("--minutes and --every must be > 0, --concurrency and --lines >= 1")
    load_start = os.getloadavg()
    result = asyncio.run(soak(opts))
    out = {
        "python": platform.python_version(),
        "setup": "kraken serve (SQLite) with its local agent",
        "minutes": opts.minutes,
        "every_s": opts.every,
        "concurrency": opts.concurrency,
        "lines_per_job": opts.lines,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        **result,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
