"""Kraken's own log records in the log store (``KRAKEN_SERVICE_LOGS_STORE=true``).

Each role's process (``serve``, ``server``, ``controller``, ``worker``) keeps its records in a
bounded in-memory buffer (``servicelog.ServiceLogBuffer``: logging a record only appends to it)
and a background flusher stores them in batches through the process's log store, so the request
path never waits for the store. Agents ship theirs over their websocket (``ServiceLogs`` frames,
``kraken.agent.logship``); the server replica holding the socket puts them in its own buffer.

- Bounded: past ``KRAKEN_SERVICE_LOGS_BUFFER`` records waiting, the oldest are dropped and the
  number dropped is said on stderr.
- Never recursive: what the flusher logs (a failure to store) goes to stderr only
  (``servicelog.storing``).
- Masked: the values of the process's own secrets (tokens, keys, passwords of its URLs) and, for
  a record naming a job, the secrets that job was given (the job logs' ``Masker``), then
  whatever looks secret (``servicelog.redact_text``).
- The flow, run and job ids: a record naming a job gets its run and flow from the database.
- Retention: records older than ``KRAKEN_SERVICE_LOGS_RETENTION_DAYS`` are deleted hourly by the
  process that runs the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from kraken.core.config import Settings
from kraken.core.db import Database
from kraken.logs.active import log_store
from kraken.logs.store import ServiceRecord
from kraken.observability.servicelog import (
    LEVELS,
    ServiceLogBuffer,
    redact_text,
    start_buffer,
    stop_buffer,
    storing,
)
from kraken.protocol import ServiceLogs
from kraken.secrets.refs import Masker

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5  # seconds between two flushes
BATCH = 1000  # records stored in one write
RETENTION_EVERY = 3600.0
MAX_TEXT = 16_000  # characters of a record kept (message and traceback)
MAX_FIELD = 200
LEVEL_NUMBERS = {name: logging.getLevelName(name.upper()) for name in LEVELS}
SERVICES = ("serve", "server", "controller", "worker", "agent")

RUNS = """
SELECT j.id, j.run_id, r.flow_id FROM job j JOIN run r ON r.id = j.run_id WHERE j.id IN :ids
"""


def settings_secrets(settings: Settings) -> list[str]:
    """The secret values a process's settings hold: masked in every record it stores."""
    values: list[str | None] = [
        settings.agent_token,
        settings.secret_key,
        settings.admin_password,
        settings.secrets_key,
        settings.s3_secret_key,
        settings.smtp_password,
    ]
    for secret in (settings.ldap_bind_password, settings.oidc_client_secret):
        if secret is not None:
            values.append(secret.get_secret_value())
    for url in (settings.database_url, settings.redis_url, settings.opensearch_url):
        if url:
            with contextlib.suppress(ValueError):
                values.append(urlsplit(url).password)
    return [v for v in values if v]


def _text(data: dict[str, Any]) -> str:
    text = str(data.get("message", ""))
    if data.get("exception"):
        text += "\n" + str(data["exception"])
    return text[:MAX_TEXT]


def _aware(when: datetime) -> datetime:
    """An agent's time without an offset is UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class ServiceLogFlusher:
    """The buffer of this process and the task that stores it."""

    def __init__(self, settings: Settings, db: Database, service: str, *, retention: bool) -> None:
        self.settings, self.db, self.service = settings, db, service
        self.retention = retention
        self.host = socket.gethostname()
        self.buffer: ServiceLogBuffer = start_buffer(settings.service_logs_buffer, settings.service_logs_level)
        self.masker = Masker(settings_secrets(settings))
        self.stored = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._next_retention = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kraken-service-logs")

    async def stop(self) -> None:
        """Store what waits, then stop keeping records."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
        stop_buffer()

    async def _run(self) -> None:
        with storing():
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                await self.flush()
                if self.retention and time.monotonic() >= self._next_retention:
                    self._next_retention = time.monotonic() + RETENTION_EVERY
                    await self.purge()

    def accept_agent(self, agent_name: str, frame: ServiceLogs) -> None:
        """An agent's records (``ServiceLogs``): into this process's buffer, named as that agent's
        (its name as the server knows it, not the host it claims)."""
        if frame.dropped:
            self.buffer.count_dropped(frame.dropped)
        self.buffer.add(
            [
                {
                    "time": r.time.isoformat(),
                    "level": r.level,
                    "logger": r.logger,
                    "message": r.message,
                    "exception": r.exception,
                    "service": "agent",
                    "host": agent_name,
                    "pid": r.pid,
                    "flow_id": r.flow_id,
                    "run_id": r.run_id,
                    "job_id": r.job_id,
                }
                for r in frame.records
            ]
        )

    async def flush(self) -> int:
        """Store what waits in the buffer, in batches; the number of records stored. On a failure
        the batch goes back to the buffer (as far as it has room) for the next flush."""
        with storing():  # what is logged here (a failure) never enters the buffer
            return await self._flush()

    async def _flush(self) -> int:
        done = 0
        while True:
            taken, dropped = self.buffer.take(BATCH)
            if dropped:
                self.dropped += dropped
                log.warning("service logs: %d records dropped (the buffer was full)", dropped)
            if not taken:
                return done
            try:
                records = await self._records(taken)
                await log_store().store_service_records(self.db, records)
            except Exception as exc:
                self.buffer.put_back(taken)
                log.warning("service logs: %d records not stored, kept for the next try: %s", len(taken), exc)
                return done
            done += len(records)
            self.stored += len(records)
            if len(taken) < BATCH:
                return done

    async def purge(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.service_logs_retention_days)
        try:
            removed = await log_store().purge_service_records(self.db, cutoff)
        except Exception as exc:
            log.warning("service logs: retention failed (tried again in an hour): %s", exc)
            return
        if removed:
            log.info("service logs: %d records older than %s deleted", removed, cutoff.isoformat())

    async def _records(self, taken: list[dict[str, Any]]) -> list[ServiceRecord]:
        """Masked records with their run and flow (from the job they name)."""
        jobs = sorted({j for d in taken if (j := _int(d.get("job_id"))) is not None})
        runs: dict[int, tuple[int, int]] = {}
        maskers: dict[int, Masker] = {}
        if jobs:
            from kraken.secrets.store import job_masker

            async with self.db.session() as session:
                stmt = sa.text(RUNS).bindparams(sa.bindparam("ids", expanding=True))
                runs = {int(r[0]): (int(r[1]), int(r[2])) for r in await session.execute(stmt, {"ids": jobs})}
                for known in runs:
                    maskers[known] = await job_masker(session, known)
        out = []
        for d in taken:
            job_id = _int(d.get("job_id"))
            run_id, flow_id = _int(d.get("run_id")), _int(d.get("flow_id"))
            if job_id in runs:
                run_id, flow_id = runs[job_id]
            text = self.masker.text(_text(d))
            if job_id in maskers:
                text = maskers[job_id].text(text)
            level = str(d.get("level", "info"))
            out.append(
                ServiceRecord(
                    time=_aware(datetime.fromisoformat(str(d["time"]))),
                    service=str(d.get("service") or self.service)[:MAX_FIELD],
                    host=str(d.get("host") or self.host)[:MAX_FIELD],
                    pid=int(d.get("pid") or 0),
                    level=LEVEL_NUMBERS.get(level, logging.INFO),
                    logger=str(d.get("logger", ""))[:MAX_FIELD],
                    text=redact_text(text),
                    flow_id=flow_id,
                    run_id=run_id,
                    job_id=job_id,
                )
            )
        return out
