"""Screenshots of the web UI's main pages into docs/screenshots (run by scripts/screenshots.sh).

A seeded history (bench/ui_seed.py: a project with 24 CI flows, results analysed by the real
code) plus the sample project, served by a real ``kraken serve`` with its local agent and a
second agent process, photographed in Debian's Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ui_seed import seed  # noqa: E402
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

ARGS = [*CHROMIUM_ARGS, "--hide-scrollbars"]
PASSWORD = "screenshots-pw"
TOKEN = "screenshots-agent-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str], until: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if until in line:
            break
    else:
        raise RuntimeError(f"{argv[2:4]} did not start")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc


def shoot(url: str, ids: dict[str, Any], out: Path) -> list[Path]:
    from playwright.sync_api import Page, sync_playwright

    last = ids[f"flow_{ids['flows']}"]
    shots: list[tuple[str, str, str, Any]] = [
        ("projects", "/", "light", None),
        ("branch", f"/branches/{ids['branch_id']}", "light", None),
        ("flow", f"/flows/{last['flow_id']}?run={last['runs']['unit-tests']}", "light", None),
        ("flow-dark", f"/flows/{last['flow_id']}?run={last['runs']['unit-tests']}", "dark", None),
        ("job-log", f"/jobs/{ids['log_job_id']}#L1180", "dark", "error"),
        ("job-log-light", f"/jobs/{ids['log_job_id']}", "light", None),
        ("results", f"/runs/{ids['results_run_id']}/results", "light", None),
        ("results-regressions", f"/runs/{ids['results_run_id']}/results?change=regression", "light", "select"),
        ("results-dark", f"/runs/{ids['results_run_id']}/results", "dark", None),
        ("test-history", f"/test-cases/{ids['flaky_test_case_id']}?branch={ids['branch_id']}", "light", None),
        ("agents", "/agents", "light", None),
        ("stage-editor", f"/stages/{ids['stage_id']}", "light", None),
        ("settings", "/settings", "dark", None),
    ]
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for theme in ("light", "dark"):
            ctx = browser.new_context(base_url=url, viewport={"width": 1440, "height": 900}, color_scheme=theme)
            ctx.set_default_timeout(30_000)
            page: Page = ctx.new_page()
            page.goto("/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/login" not in u)
            for name, path, want, action in shots:
                if want != theme:
                    continue
                page.goto(path)
                page.wait_for_load_state("networkidle")
                if action == "error":
                    page.get_by_test_id("log-search").fill("error:")
                    page.get_by_test_id("log-search").press("Enter")
                elif action == "select":
                    page.get_by_test_id("result-row").first.click()
                    page.get_by_test_id("result-detail").wait_for()
                if name.startswith("test-history"):
                    page.locator(".chart canvas").wait_for()
                page.wait_for_timeout(600)
                target = out / f"{name}.png"
                page.screenshot(path=str(target))
                written.append(target)
            ctx.close()
        browser.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="kraken-shots-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        ids = asyncio.run(seed(data, tests=1500, flows=24, log_lines=3000, quiet=True))
        ids["flows"] = 24
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKEN_")}
        env.update(KRAKEN_ADMIN_PASSWORD=PASSWORD, KRAKEN_AGENT_TOKEN=TOKEN, KRAKEN_LOG_LEVEL="warning")
        kraken = [sys.executable, "-m", "kraken"]
        serve = [*kraken, "serve", "--data-dir", str(data), "--port", str(port), "--sample-project"]
        procs.append(start(serve, env, "listening on"))
        agent = [*kraken, "agent", "--server", url, "--token", TOKEN, "--name", "build-linux-2"]
        agent += ["--group", "linux", "--label", "gpu", "--data-dir", str(data / "agent2")]
        procs.append(start(agent, {**env, "KRAKEN_LOG_LEVEL": "info"}, "connected to"))
        with httpx.Client(base_url=url + "/api", timeout=30) as http:
            token = http.post("/auth/login", json={"username": "admin", "password": PASSWORD}).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            stages = http.get(f"/branches/{ids['branch_id']}/stages").json()
            ids["stage_id"] = next(s["id"] for s in stages if s["name"] == "unit-tests")
            demo = next(p for p in http.get("/projects").json() if p["name"] == "demo")
            flow = http.post(f"/branches/{demo['branches'][0]['id']}/flows", json={"kind": "ci"}).json()
            deadline = time.monotonic() + 60
            while http.get(f"/flows/{flow['id']}").json()["state"] != "completed" and time.monotonic() < deadline:
                time.sleep(0.3)
        args.out.mkdir(parents=True, exist_ok=True)
        for path in shoot(url, ids, args.out):
            print(f"screenshots: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(20)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
