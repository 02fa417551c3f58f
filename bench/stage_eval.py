"""Latency of ``evaluate_stage`` with a warm sandbox pool (the overview's example stage).

Run: ``.venv/bin/python bench/stage_eval.py`` — prints JSON with the median and p90 in ms
of 200 sequential calls, the share spent in the sandbox round trip, and the wall time of
200 calls issued concurrently.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kraken.stage import StageContext, evaluate_stage, shutdown_sandbox
from kraken.stage.evaluate import run_stage_code

CALLS = 200

CODE = """
def stage(ctx):
    return {
        "parent": "Unit Tests",
        "triggers": {"parent": True, "cron": "1 * * * *", "interval": "10m", "repository": True, "webhook": True},
        "parameters": [],
        "configs": [{"name": "c1", "p1": "1", "p2": "3"}, {"name": "c2", "n3": "33", "t2": "asdf"}],
        "jobs": [{
            "name": "make dist",
            "steps": [
                {"tool": "git", "checkout": "https://github.com/frankhjung/python-helloworld.git", "branch": "master"},
                {"tool": "pytest", "params": "tests/testhelloworld.py", "cwd": "python-helloworld"},
            ],
            "environments": [{"system": "ubuntu-18.04", "executor_group": "all", "config": "c1"}],
        }],
        "notification": {"changes": {"slack": {"channel": "kk-results"}, "email": "godfryd@gmail.com"}},
    }
"""


Evaluate = Callable[[str, StageContext], Awaitable[dict[str, Any]]]


async def _timed_ms(calls: int, func: Evaluate) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await func(CODE, StageContext())
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def main() -> None:
    start = time.perf_counter()
    await evaluate_stage(CODE, StageContext())
    cold_ms = (time.perf_counter() - start) * 1000
    await _timed_ms(20, evaluate_stage)  # warm up
    full = await _timed_ms(CALLS, evaluate_stage)
    sandbox = await _timed_ms(CALLS, run_stage_code)
    start = time.perf_counter()
    await asyncio.gather(*(evaluate_stage(CODE, StageContext()) for _ in range(CALLS)))
    concurrent_s = time.perf_counter() - start
    await shutdown_sandbox()
    quantiles = statistics.quantiles(full, n=10)
    print(
        json.dumps(
            {
                "calls": CALLS,
                "evaluate_stage_median_ms": round(statistics.median(full), 3),
                "evaluate_stage_p90_ms": round(quantiles[-1], 3),
                "sandbox_roundtrip_median_ms": round(statistics.median(sandbox), 3),
                "first_call_cold_ms": round(cold_ms, 1),
                "concurrent_calls_total_s": round(concurrent_s, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
