"""The fault suite's longer versions (not in CI): runs the fault tests of tests/faults/ ``--repeat``
times each, with the product's timings where the CI tests shorten them, and collects the recovery
times they print.

* ``--lease`` (default 15, the product's ``task_lease``): the lease of the workers in the
  worker-stopped-mid-analysis tests (CI uses 4 s to stay short);
* every case's outcome assertions are the CI test's own (every line once, every job once, every
  flow ends, analysis done): a repeat that fails is counted, with its first error line.

Prints one JSON document: per test, its passes and failures, and per figure printed by the test
(lines "[figure] <what> N s") the values, min,
median and max, with the load average before and after.

    PYTHONPATH=$PWD .venv/bin/python bench/faults.py [--repeat 3] [--lease 15] [-k EXPR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    "tests/faults/test_kill_worker.py",
    "tests/faults/test_kill_serve.py",
    "tests/faults/test_kill_roles.py",
    "tests/faults/test_half_open_long.py",
    "tests/faults/test_agent_sigterm.py",
    "tests/faults/test_redis_restart_mid_flow.py",
    "tests/faults/test_pg_connections_cut.py",
]
FIGURE = re.compile(r"\[figure\] (?P<what>.*?)(?P<value>\d+\.\d+) s\b")  # what the tests print
RESULT = re.compile(r"^(?P<outcome>PASSED|FAILED|ERROR) (?P<test>tests/faults/\S+::\S+)")  # -rA summary


def run_once(case: str, lease: float, expr: str | None) -> tuple[dict[str, str], list[tuple[str, float]], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KRAKEN_FAULTS_LEASE": str(lease)}
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA", "-q", case]
    if expr:
        argv += ["-k", expr]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    outcomes: dict[str, str] = {}
    figures: list[tuple[str, float]] = []
    for line in proc.stdout.splitlines():
        if m := RESULT.match(line):
            outcomes[m["test"]] = m["outcome"]
        elif m := FIGURE.search(line):
            figures.append((m["what"].strip(" :(,"), float(m["value"])))
    errors = [ln for ln in proc.stdout.splitlines() if ln.startswith("E ")][:1]
    return outcomes, figures, errors[0] if errors else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--lease", type=float, default=15.0, help="the workers' task_lease in s (default 15)")
    parser.add_argument("-k", dest="expr", help="pytest -k expression to pick cases")
    opts = parser.parse_args()
    if opts.repeat < 1 or not 2 <= opts.lease <= 300:
        parser.error("--repeat must be >= 1 and --lease within 2..300 (task_lease's range)")
    load_before = os.getloadavg()
    tests: dict[str, dict[str, object]] = {}
    figures: dict[str, list[float]] = {}
    for case in CASES:
        for _ in range(opts.repeat):
            outcomes, found, error = run_once(case, opts.lease, opts.expr)
            for test, outcome in outcomes.items():
                entry = tests.setdefault(test, {"passed": 0, "failed": 0, "first_error": ""})
                key = "passed" if outcome == "PASSED" else "failed"
                entry[key] = int(entry[key]) + 1  # type: ignore[call-overload]
                if key == "failed" and not entry["first_error"]:
                    entry["first_error"] = error
            for what, value in found:
                figures.setdefault(what, []).append(value)
    out = {
        "repeat": opts.repeat,
        "lease_s": opts.lease,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "tests": tests,
        "figures_s": {
            what: {"values": v, "min": min(v), "median": statistics.median(v), "max": max(v)}
            for what, v in figures.items()
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
