"""``upgrade_in_child``: the long-lived roles migrate in a child process (issue #13), with the same
outcome as in-process, and a failure that says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kraken.core.migrate import MigrationError, script_location, upgrade_in_child


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(script_location())).get_current_head()
    assert head is not None
    return head


async def test_the_child_brings_the_database_to_head(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the URL reaches the child on its stdin; Kraken's settings stay out of its environment
    monkeypatch.setenv("KRAKEN_DATABASE_URL", "sqlite+aiosqlite:////nonexistent/kraken.db")
    await upgrade_in_child(database_url)
    await upgrade_in_child(database_url)  # again: nothing to do
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    assert version == head_revision()
    assert {"project", "flow", "run", "job"} <= tables


async def test_a_failed_migration_raises_with_the_childs_error_on_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    not_a_database = tmp_path / "kraken.db"
    not_a_database.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(MigrationError, match=r"the database migrations failed \(exit code 1\)"):
        await upgrade_in_child(f"sqlite+aiosqlite:///{not_a_database}")
    assert "file is not a database" in capfd.readouterr().err
    assert not_a_database.read_bytes() == b"this is not an SQLite file" * 100  # nothing stored is lost
