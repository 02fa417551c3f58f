"""Benchmark: what storing Kraken's own logs (KRAKEN_SERVICE_LOGS_STORE) costs a log call, and
that a storm stays within the buffer's bound.

N records logged through a JSON stderr handler (KRAKEN_LOG_FORMAT=json, written to memory), then
the same with the service log buffer too (bound --buffer): microseconds per record for each, the
records kept (never more than the bound) and dropped, and the flush of what waits into a real
database (SQLite by default, or --database-url). Prints JSON.

    .venv/bin/python bench/service_logs.py [--records 100000] [--buffer 10000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.core.migrate import upgrade
from kraken.logs.servicelogs import ServiceLogFlusher
from kraken.observability.servicelog import JsonFormatter

log = logging.getLogger("kraken.bench.servicelogs")


def per_record_us(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        log.info("request %d handled in %d ms", i, 12)
    return (time.perf_counter() - started) / n * 1e6


async def bench(records: int, buffer: int, database_url: str) -> dict[str, Any]:
    await upgrade(database_url)
    db = Database(database_url)
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    stderr = logging.StreamHandler(io.StringIO())
    stderr.setFormatter(JsonFormatter("server"))
    root.addHandler(stderr)
    json_only = per_record_us(records)
    flusher = ServiceLogFlusher(
        Settings(service_logs_store=True, service_logs_buffer=buffer), db, "server", retention=False
    )
    both = per_record_us(records)
    kept, dropped = len(flusher.buffer), flusher.buffer.dropped
    started = time.perf_counter()
    stored = await flusher.flush()
    flush_s = time.perf_counter() - started
    await flusher.stop()
    await db.dispose()
    return {
        "records": records,
        "json_handler_us_per_record": round(json_only, 2),
        "json_handler_and_buffer_us_per_record": round(both, 2),
        "kept_in_buffer": kept,
        "dropped": dropped,
        "stored": stored,
        "flush_s": round(flush_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--buffer", type=int, default=10_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/kraken.db"
        print(json.dumps(asyncio.run(bench(args.records, args.buffer, url)), indent=2))


if __name__ == "__main__":
    main()
