from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.procs import Server


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """``kraken serve`` (no local agent) on SQLite and on PostgreSQL."""
    srv = Server(tmp_path, database_url=database_url)
    yield srv
    srv.stop()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    client = Api(server.url)
    await client.login()
    yield client
    await client.close()
