"""`kraken db backup` / `kraken db restore`: a backup taken mid-flow restores, and a server starts from it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Proc, Server, kraken, start_agent, wait_agent_connected

pytestmark = pytest.mark.e2e

STAGE = """
def stage(ctx):
    return {"jobs": [{"name": "j", "steps": [
        {"tool": "shell", "cmd": "for i in 1 2 3; do echo before-backup-$i; done; sleep 300"}],
        "environments": [{"system": "any"}]}]}
"""


def db_command(tmp_path: Path, name: str, *args: str) -> Proc:
    proc = kraken(["db", *args], tmp_path, name)
    proc.proc.wait(120)
    return proc


async def test_backup_taken_mid_flow_restores_and_the_server_starts_from_it(tmp_path: Path) -> None:
    server = Server(tmp_path)  # SQLite in tmp_path/server
    api = Api(server.url)
    agent = start_agent(tmp_path, server.url, "a1")
    try:
        await api.login()
        wait_agent_connected(agent)
        _, branch_id = await api.project_with_branch()
        await api.stage(branch_id, "s", STAGE)
        flow = await api.flow(branch_id)
        [run] = flow["runs"]

        async def lines_stored() -> bool:
            [job] = await api.jobs(run["id"])
            return bool(job["log_lines"] >= 3)

        await api.wait_until(lines_stored, 30, "the step's first lines stored")
        backup_file = tmp_path / "kraken.backup"
        taken = db_command(tmp_path, "backup", "backup", str(backup_file), "--data-dir", str(tmp_path / "server"))
        assert taken.proc.returncode == 0, taken.output
        assert backup_file.stat().st_mode & 0o777 == 0o600
        # the server went on writing while the backup was taken
        flow_after = await api.flow(branch_id)
    finally:
        await api.close()
        agent.stop()
        server.stop()

    # restore into a new data dir (the secrets key travels apart from the backup)
    fresh = tmp_path / "restored"
    fresh.mkdir(mode=0o700)
    key = tmp_path / "server" / "secrets.key"  # written when the first secret is stored
    if key.exists():
        shutil.copy2(key, fresh / "secrets.key")
    done = db_command(tmp_path, "restore", "restore", str(backup_file), "--data-dir", str(fresh))
    assert done.proc.returncode == 0, done.output

    restored = Server(tmp_path, name="restored")
    api = Api(restored.url)
    try:
        await api.login()
        again = await api.get(f"/flows/{flow['id']}")
        assert again["id"] == flow["id"]
        [job] = await api.jobs(run["id"])
        log = await api.log(job["id"])
        assert [ln for ln in log.splitlines() if ln.startswith("before-backup-")] == [
            f"before-backup-{i}" for i in (1, 2, 3)
        ]
        # the flow triggered after the backup is not in it
        r = await api.http.get(f"/flows/{flow_after['id']}")
        assert r.status_code == 404
        # and the restored server works: the running job of the backup ends, new flows are accepted
        new = await api.flow(branch_id)
        assert new["id"] == flow_after["id"]  # sequence counters came back with the rows
    finally:
        await api.close()
        restored.stop()


def test_restore_refuses_while_serve_runs_and_keeps_the_database(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        backup_file = tmp_path / "b.db"
        taken = db_command(tmp_path, "backup", "backup", str(backup_file), "--data-dir", str(tmp_path / "server"))
        assert taken.proc.returncode == 0, taken.output
        refused = db_command(tmp_path, "restore", "restore", str(backup_file), "--data-dir", str(tmp_path / "server"))
        assert refused.proc.returncode == 2
        assert "another kraken serve runs on" in refused.output
        # a second server on the same data dir is refused the same way
        second = kraken(["serve", "--no-local-agent", "--data-dir", str(tmp_path / "server")], tmp_path, "second")
        second.proc.wait(60)
        assert second.proc.returncode == 2 and "another kraken serve runs on" in second.output
    finally:
        server.stop()


def test_restore_of_a_file_that_is_not_a_kraken_database_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    upgraded = db_command(tmp_path, "upgrade", "upgrade", "--data-dir", str(data))
    assert upgraded.proc.returncode == 0, upgraded.output
    before = (data / "kraken.db").read_bytes()

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    refused = db_command(tmp_path, "junk", "restore", str(junk), "--data-dir", str(data))
    assert refused.proc.returncode == 2
    assert "is not a Kraken database" in refused.output

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    refused = db_command(tmp_path, "other", "restore", str(other), "--data-dir", str(data))
    assert refused.proc.returncode == 2
    assert "is not a Kraken database" in refused.output
    assert (data / "kraken.db").read_bytes() == before


def test_backup_says_what_it_cannot_do(tmp_path: Path) -> None:
    pg = db_command(tmp_path, "pg", "backup", str(tmp_path / "x"), "--database-url", "postgresql+asyncpg://u@h/db")
    assert pg.proc.returncode == 2 and "pg_dump" in pg.output
    missing = db_command(tmp_path, "missing", "backup", str(tmp_path / "x"), "--data-dir", str(tmp_path / "nothing"))
    assert missing.proc.returncode == 2 and "no database at" in missing.output
    data = tmp_path / "data"
    assert db_command(tmp_path, "upgrade", "upgrade", "--data-dir", str(data)).proc.returncode == 0
    target = tmp_path / "exists"
    target.write_text("keep me")
    refused = db_command(tmp_path, "exists", "backup", str(target), "--data-dir", str(data))
    assert refused.proc.returncode == 2 and "--force" in refused.output
    assert target.read_text() == "keep me"
    forced = db_command(tmp_path, "forced", "backup", str(target), "--data-dir", str(data), "--force")
    assert forced.proc.returncode == 0, forced.output
    assert sqlite3.connect(target).execute("select count(*) from alembic_version").fetchone() == (1,)
