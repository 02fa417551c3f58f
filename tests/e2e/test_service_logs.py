"""Kraken's own logs as JSON lines (``KRAKEN_LOG_FORMAT=json``): a real ``kraken serve`` with its
local agent runs a job; every line on its stderr is a JSON object with the fields a log shipper
needs, and the job's lines name the job."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kraken.observability.servicelog import JsonFormatter, add_to_context, log_context
from tests.support.api import Api
from tests.support.procs import base_env, free_port

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "echo hello"}],
                      "environments": [{"system": "any"}]}]}
"""
FIELDS = {"time", "level", "logger", "message", "service", "host", "pid"}


def _start_serve(tmp_path: Path, database_url: str, stderr_path: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    args = [sys.executable, "-m", "kraken", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    args += ["--database-url", database_url]
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(
            args, env=base_env(**env), stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{port}"


def _wait_listening(proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Reads stdout (the start banner) until the server listens, then keeps draining it."""
    listening = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "listening on" in line:
                listening.set()

    threading.Thread(target=read, daemon=True).start()
    if not listening.wait(timeout):
        proc.kill()
        raise TimeoutError("kraken serve did not listen")


async def test_serve_writes_json_lines_naming_the_job(tmp_path: Path, database_url: str) -> None:
    stderr_path = tmp_path / "stderr.log"
    proc, url = _start_serve(tmp_path, database_url, stderr_path, KRAKEN_LOG_FORMAT="json")
    api = Api(url)
    try:
        _wait_listening(proc)
        await api.login()
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)
        flow = await api.flow(branch_id)
        done = await api.wait_flow(flow["id"])
        jobs = await api.jobs(done["runs"][0]["id"])
        job_id = jobs[0]["id"]
        assert "hello" in await api.log(job_id)
    finally:
        await api.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)  # every line: one JSON object
        assert isinstance(record, dict)
        assert record.keys() >= FIELDS, record
        records.append(record)
    assert {"serve", "agent"} <= {r["service"] for r in records}
    job_lines = [r for r in records if r.get("job_id") == job_id]
    assert any(r["service"] == "agent" and f"running job {job_id}" in r["message"] for r in job_lines), records
    assert any(r["logger"].startswith("uvicorn") for r in records)  # the HTTP server's lines too


def test_an_unknown_log_format_is_refused_at_the_start(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "kraken", "serve", "--no-local-agent", "--data-dir", str(tmp_path / "d")]
    r = subprocess.run(args, env=base_env(KRAKEN_LOG_FORMAT="xml"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "log_format" in r.stderr and "'text' or 'json'" in r.stderr, r.stderr


def test_a_record_carries_the_context_ids_and_the_exception() -> None:
    formatter = JsonFormatter("worker")
    logger = logging.getLogger("kraken.test.servicelog")
    with log_context(job_id=7):
        add_to_context(run_id=3)
        try:
            raise ValueError("boom")
        except ValueError:
            record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
        inside = json.loads(formatter.format(record))
    outside = json.loads(formatter.format(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "x", (), None)))
    assert inside["job_id"] == 7 and inside["run_id"] == 3 and inside["message"] == "failed here"
    assert inside["service"] == "worker" and inside["level"] == "error"
    assert "ValueError: boom" in inside["exception"]
    assert "job_id" not in outside and "run_id" not in outside and "exception" not in outside
