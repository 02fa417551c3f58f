"""The service log buffer and flusher against real databases (SQLite's search file, PostgreSQL):
a storm of records stays within the buffer's bound and logging never waits for the store; a
store that fails keeps the records (bounded) and its own failure never enters the buffer;
records are masked before they are stored; the agent's shipper masks its token and credential
and gives back what it could not send."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kraken.agent.logship import LogShipper
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.logs.active import log_store
from kraken.logs.query import LogQuery
from kraken.logs.servicelogs import ServiceLogFlusher
from kraken.observability.servicelog import ServiceLogBuffer, stop_buffer
from kraken.protocol import MAX_SERVICE_RECORDS, ServiceLogs

log = logging.getLogger("kraken.test.servicelogs")
AGENT_TOKEN = "agent-token-Zq81kLm0"


@pytest.fixture(autouse=True)
def no_buffer_left() -> Iterator[None]:
    log.setLevel(logging.INFO)  # whatever the root logger's level in the test run
    yield
    stop_buffer()


def flusher(db: Database, buffer: int = 1000) -> ServiceLogFlusher:
    settings = Settings(service_logs_store=True, service_logs_buffer=buffer, agent_token=AGENT_TOKEN)
    return ServiceLogFlusher(settings, db, "worker", retention=False)


async def search(db: Database, *terms: str, **kw: Any) -> list[Any]:
    async with db.session() as session:
        page = await log_store().search_service_records(session, LogQuery(terms=terms, service="all", **kw))
    return [h.record for h in page.hits]


async def test_a_storm_stays_within_the_bound_and_logging_never_waits(db: Database) -> None:
    f = flusher(db, buffer=1000)
    started = time.perf_counter()
    for i in range(20_000):
        log.warning("storm record %d", i)
    spent = time.perf_counter() - started
    assert len(f.buffer) == 1000 and f.buffer.dropped == 19_000  # the oldest went
    assert spent < 10, spent  # appending only: no store, no await (20 000 records)
    assert await f.flush() == 1000
    assert len(f.buffer) == 0  # the flusher's own "dropped" warning is not stored
    assert f.dropped == 19_000
    found = await search(db, "storm record 19999")
    assert [r.text for r in found] == ["storm record 19999"]
    assert found[0].service == "worker" and found[0].level == logging.WARNING
    assert await search(db, "storm record 18999") == []  # dropped
    assert len(await search(db, "storm record", limit=200)) == 200
    # each record's size is bounded too: a huge message is cut
    log.error("huge %s", "x" * 1_000_000)
    [kept] = f.buffer.records
    assert len(str(kept["message"])) == 16_000


async def test_a_failing_store_keeps_the_records_and_never_feeds_itself(tmp_path: Any) -> None:
    down = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")  # nothing listens there
    f = flusher(down, buffer=100)
    try:
        for i in range(30):
            log.error("kept %d", i)
        for _ in range(3):
            assert await f.flush() == 0
            assert len(f.buffer) == 30  # put back; the flusher's warnings never entered it
        for i in range(200):
            log.error("more %d", i)
        assert await f.flush() == 0
        assert len(f.buffer) == 100  # still bounded
    finally:
        await down.dispose()


async def test_records_are_masked_and_kept_for_the_retention(db: Database) -> None:
    f = flusher(db)
    log.error("enrolling with %s", AGENT_TOKEN)
    log.error("cannot reach postgresql://kraken:db-pass-77@db:5432/k (password=hunter2222)")
    assert await f.flush() == 2
    texts = [r.text for r in await search(db, "enrolling")] + [r.text for r in await search(db, "cannot reach")]
    assert texts == ["enrolling with ******", "cannot reach postgresql://kraken:***@db:5432/k (password=***)"]
    assert await search(db, AGENT_TOKEN) == [] and await search(db, "hunter2222") == []
    # retention: older than the cutoff goes
    removed = await log_store().purge_service_records(db, datetime.now(UTC) + timedelta(seconds=1))
    assert removed == 2 and await search(db, "enrolling") == []


async def test_the_agent_shipper_masks_and_gives_back_what_it_could_not_send() -> None:
    buffer = ServiceLogBuffer(5000, "info")
    logging.getLogger().addHandler(buffer)
    shipper = LogShipper(buffer, lambda: [AGENT_TOKEN, "agent-credential-77aa"])
    try:
        log.info("enrolled with %s, then agent-credential-77aa (password=hunter2222)", AGENT_TOKEN)
        for i in range(MAX_SERVICE_RECORDS + 10):
            log.info("line %d", i)
        frames: list[ServiceLogs] = []
        sent = asyncio.Event()

        async def send(frame: ServiceLogs) -> None:
            frames.append(frame)
            if sum(len(f.records) for f in frames) == MAX_SERVICE_RECORDS + 11:
                sent.set()

        task = asyncio.create_task(shipper.run(send))
        await asyncio.wait_for(sent.wait(), 10)
        task.cancel()
        assert [len(f.records) for f in frames] == [MAX_SERVICE_RECORDS, 11]
        assert frames[0].records[0].message == "enrolled with ******, then ****** (password=***)"
        assert len(buffer) == 0  # the shipper's own lines never entered it

        async def broken(frame: ServiceLogs) -> None:
            raise ConnectionError("link down")

        log.warning("not sent yet")
        with pytest.raises(ConnectionError):
            await shipper.run(broken)
        assert [r["message"] for r in buffer.records] == ["not sent yet"]  # back for the next connection
    finally:
        logging.getLogger().removeHandler(buffer)
