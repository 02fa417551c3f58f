"""Executor overhead: start an environment, run one `echo hi`, stop it.

For each executor (direct, docker, lxd) and each of N rounds (default 20) this
measures, from the call to ``start()``:

* ``first_line_ms``: until the line "hi" reached on_line,
* ``total_ms``: until ``stop()`` returned (environment removed),

and the exec alone (``exec_ms``: exec call to its return, the per-step cost
once the environment exists).  Prints one JSON document with the medians (and
min / max).  Engines that are not available are reported as such.

    .venv/bin/python bench/executors_overhead.py [--rounds 20] [--executors direct,docker,lxd]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kraken.agent.executors import executor_class
from kraken.agent.executors.base import JobEnvironment

IMAGES = {"direct": "host", "docker": "kraken-test/busybox:latest", "lxd": "kraken-test/busybox"}


async def one_round(name: str, job_id: int, data_dir: str) -> dict[str, float]:
    env = JobEnvironment(job_id=job_id, agent_name="kraken-bench", system=IMAGES[name], data_dir=data_dir)
    ex = executor_class(name)(env)
    first: list[float] = []

    async def on_line(line: str) -> None:
        if line == "hi" and not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    await ex.start()
    t_exec = time.perf_counter()
    try:
        res = await ex.exec(["echo", "hi"], on_line=on_line)
        t_exec_done = time.perf_counter()
    finally:
        await ex.stop()
    t_end = time.perf_counter()
    if res.exit_code != 0 or not first:
        raise RuntimeError(f"{name}: echo hi failed: {res}")
    return {
        "start_ms": (t_exec - t0) * 1000,
        "first_line_ms": (first[0] - t0) * 1000,
        "exec_ms": (t_exec_done - t_exec) * 1000,
        "total_ms": (t_end - t0) * 1000,
    }


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(samples)}
    for key in ("start_ms", "first_line_ms", "exec_ms", "total_ms"):
        values = [s[key] for s in samples]
        out[key] = {
            "median": round(statistics.median(values), 1),
            "min": round(min(values), 1),
            "max": round(max(values), 1),
        }
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--executors", default="direct,docker,lxd")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kraken-bench-") as data_dir:
        for name in args.executors.split(","):
            cls = executor_class(name)
            cap = await cls.probe()
            if cap is None:
                results[name] = {"available": False}
                continue
            await one_round(name, 0, data_dir)  # warm-up (image cache, connections)
            samples = [await one_round(name, i, data_dir) for i in range(1, args.rounds + 1)]
            results[name] = {"available": True, "engine_version": cap.version, **summary(samples)}
    print(
        json.dumps(
            {
                "benchmark": "executor start + `echo hi` + stop",
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
