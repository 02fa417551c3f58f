"""Fuzzing: schemathesis sends generated requests, valid and invalid (boundary and out-of-range
integers, any Unicode including NUL, wrong types), to every operation of ``/openapi.json`` of a
real ``kraken serve`` on PostgreSQL (the stricter database: 32-bit ids, no NUL in text), logged
in; no answer may be a 5xx. Bounded in examples and time (about a minute)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_pg_database, drop_pg_database, missing_service
from tests.support.api import Api
from tests.support.procs import Server

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [{"tool": "shell", "cmd": "true"}], "environments": [{"system": "any"}]}]}
"""
# Server-sent event streams never end by themselves: a request to them is not a request/answer.
STREAMS = r"/api/events$|/log/stream$"
MAX_TIME = 60


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = asyncio.run(create_pg_database())
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


async def test_no_request_gets_a_server_error(tmp_path: Path, pg_url: str) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if exe is None:  # skipped, but a failure in CI
        missing_service("schemathesis", FileNotFoundError("not installed: bash scripts/setup.sh dev"))
        return
    server = Server(tmp_path, database_url=pg_url)
    api = Api(server.url)
    try:
        await api.login()
        _, branch_id = await api.project_with_branch()  # something for the ids to find
        await api.stage(branch_id, "s", STAGE)
        await api.flow(branch_id)
        # a personal access token: the fuzzer's POST /api/auth/logout or renaming of the user would end a login session
        scopes = ["read", "trigger", "write", "admin"]
        token = (await api.post("/users/me/tokens", {"name": "fuzz", "scopes": scopes}, 201))["token"]
        argv = [
            exe, "run", f"{server.url}/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error",
            "--phases", "examples,coverage,fuzzing",  # coverage: boundary values, min/max and beyond
            "--mode", "all",  # valid and invalid data
            "--max-examples", "12",
            "--max-time", str(MAX_TIME),
            "--generation-codec", "utf-8",
            "--generation-allow-x00", "true",
            "--generation-database", "none",
            "--exclude-path-regex", STREAMS,
            "--request-timeout", "20",
            "--workers", "1",  # CPython 3.11 < 3.11.8 breaks parsing ASTs in threads (gh-106905)
            "--seed", "11",
            "--no-color",
        ]  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=MAX_TIME + 120, cwd=tmp_path
        )
    finally:
        await api.close()
        server.stop()
    out = done.stdout
    start = out.find("FAILURES")
    report = (out[start : start + 15000] if start >= 0 else out[-15000:]) + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "generated" in out and "Tested: " in out, report
