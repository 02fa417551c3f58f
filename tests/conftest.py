"""Shared fixtures: real databases (SQLite file and a fresh PostgreSQL database), real services.

Under CI=true a missing PostgreSQL or Redis makes the tests that need it fail, never skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

PG_ADMIN_DSN = os.environ.get("KRAKEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KRAKEN_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(what: str, exc: BaseException) -> None:
    msg = f"{what} is not available: {exc}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: a needed service must run)")
    pytest.skip(msg)


async def create_pg_database() -> str:
    import asyncpg

    name = f"kraken_t_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service("PostgreSQL", exc)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind (sync fixture: usable by sync and async tests)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/kraken.db"
        return
    url = asyncio.run(create_pg_database())
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service("Redis", exc)
    # A private logical database per test process keeps parallel runs apart: per pytest-xdist
    # worker (gw0, gw1, ...), else per process id.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    db = 1 + (int(worker[2:]) if worker[2:].isdigit() else os.getpid()) % 14
    client = redis.Redis.from_url(REDIS_URL.rsplit("/", 1)[0] + f"/{db}")
    client.flushdb()
    yield REDIS_URL.rsplit("/", 1)[0] + f"/{db}"
    client.flushdb()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[object]:
    """A migrated database (through the real Alembic migrations)."""
    from kraken.core.db import Database
    from kraken.core.migrate import upgrade

    await upgrade(database_url)
    database = Database(database_url)
    yield database
    await database.dispose()
