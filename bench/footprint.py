"""Memory footprint of idle Kraken processes: the resident set size (RSS) of

* ``kraken serve`` (SQLite, no local agent), idle after start-up,
* ``kraken serve`` with its local agent: the server process and the agent child,
* ``kraken agent`` connected (and approved) to that server, idle,

each read from /proc/<pid>/status after ``--settle`` seconds of idleness (default 5). Prints one
JSON document (MB = 2**20 bytes). The figures and the command are in docs/benchmarks.md.

    .venv/bin/python bench/footprint.py [--settle 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from tests.support.procs import Server, start_agent, wait_agent_connected


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def local_agent_pid(server_pid: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children(recursive=True):
            if "local-agent" in " ".join(child.cmdline()):
                return child.pid
        time.sleep(0.2)
    raise TimeoutError("the local agent did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of idleness before reading RSS")
    opts = parser.parse_args()
    out: dict[str, object] = {"python": platform.python_version(), "settle_s": opts.settle, "unit": "MB (RSS)"}
    with tempfile.TemporaryDirectory(prefix="kraken-footprint-") as tmp:
        work = Path(tmp)
        server = Server(work, name="server")
        try:
            agent = start_agent(work, server.url, "idle-agent")
            try:
                wait_agent_connected(agent, timeout=60)
                time.sleep(opts.settle)
                out["serve"] = rss_mb(server.proc.proc.pid)
                out["agent"] = rss_mb(agent.proc.pid)
            finally:
                agent.stop()
        finally:
            server.stop()
        with_local = Server(work, name="server-local", local_agent=True)
        try:
            child = local_agent_pid(with_local.proc.proc.pid)
            with_local.proc.wait_line(lambda line: "kraken.agent.client: connected to" in line, timeout=60)
            time.sleep(opts.settle)
            out["serve_with_local_agent"] = {
                "server": rss_mb(with_local.proc.proc.pid),
                "local_agent": rss_mb(child),
            }
        finally:
            with_local.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
