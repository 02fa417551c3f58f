"""The `kraken` command: first-start secrets, settings from the environment, `db upgrade`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.procs import base_env, free_port, kraken

pytestmark = pytest.mark.e2e


def test_first_start_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    env = {k: v for k, v in base_env().items() if k not in ("KRAKEN_ADMIN_PASSWORD", "KRAKEN_AGENT_TOKEN")}
    port = free_port()
    data = tmp_path / "data"
    args = [sys.executable, "-m", "kraken", "serve", "--no-local-agent", "--data-dir", str(data)]
    env["KRAKEN_PORT"] = str(port)  # options also come from the environment

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start()
    out = _read_until(first, "listening on")
    token = (data / "agent-token").read_text().strip()
    password = (data / "admin-password").read_text().strip()
    assert f"generated agent token: {token}" in out
    assert f"generated password of user 'admin': {password}" in out
    assert f"127.0.0.1:{port}" in out
    r = httpx.post(f"http://127.0.0.1:{port}/api/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200
    first.terminate()
    first.wait(15)

    second = start()
    out = _read_until(second, "listening on")
    assert "generated" not in out  # printed once only
    assert (data / "agent-token").read_text().strip() == token
    r = httpx.post(f"http://127.0.0.1:{port}/api/auth/login", json={"username": "admin", "password": password})
    assert r.status_code == 200
    second.terminate()
    second.wait(15)


def _read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("process ended before '" + marker + "':\n" + "".join(seen))


async def test_db_upgrade_creates_the_schema(tmp_path: Path, database_url: str) -> None:
    proc = kraken(["db", "upgrade", "--database-url", database_url], tmp_path, "upgrade")
    proc.proc.wait(120)
    assert proc.proc.returncode == 0, proc.output
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        version = (await conn.execute(sa.text("select version_num from alembic_version"))).scalar_one()
    await engine.dispose()
    assert {"project", "branch", "stage", "flow", "run", "job", "step", "log_chunk", "agent"} <= tables
    assert version
    # a second upgrade is a no-op
    again = kraken(["db", "upgrade", "--database-url", database_url], tmp_path, "upgrade2")
    again.proc.wait(120)
    assert again.proc.returncode == 0


def test_scale_out_role_without_redis_says_what_is_missing(tmp_path: Path) -> None:
    proc = kraken(["controller", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/x.db"], tmp_path, "ctl")
    proc.proc.wait(60)
    assert proc.proc.returncode != 0
    assert "--redis-url (KRAKEN_REDIS_URL) is required" in proc.output


def test_agent_without_token_is_told(tmp_path: Path) -> None:
    env = {k: v for k, v in base_env().items() if k != "KRAKEN_AGENT_TOKEN"}
    r = subprocess.run(
        [sys.executable, "-m", "kraken", "agent", "--server", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "agent token is required" in (r.stdout + r.stderr)
