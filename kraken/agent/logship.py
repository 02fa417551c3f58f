"""The agent's own log records to the server (``KRAKEN_SERVICE_LOGS_STORE=true``), which stores
them in the log store as the ``agent`` service's.

Logging a record only appends it to a bounded buffer (``servicelog.ServiceLogBuffer``; past its
size the oldest records are dropped and counted). While the agent is connected, a task of its
own sends what waits every ``SHIP_INTERVAL`` seconds in ``service_logs`` frames of at most
``MAX_SERVICE_RECORDS`` records: the job runner and the protocol never wait for it. While the
agent is not connected, records wait in the buffer (bounded). What the shipper itself logs never
enters the buffer (``servicelog.storing``).

Masked before they leave: the agent's token and credential and the secrets of the job it runs
(the job logs' ``Masker``), then whatever looks secret (``servicelog.redact_text``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from kraken.observability.servicelog import ServiceLogBuffer, redact_text, storing
from kraken.protocol import MAX_SERVICE_RECORDS, ServiceLogRecord, ServiceLogs
from kraken.secrets.refs import Masker, secret_values

log = logging.getLogger(__name__)

SHIP_INTERVAL = 1.0
MAX_TEXT = 16_000


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class LogShipper:
    def __init__(self, buffer: ServiceLogBuffer, secrets: Callable[[], list[str]]) -> None:
        self.buffer = buffer
        self.secrets = secrets  # the values to mask now (token, credential, the running job's secrets)
        self.sent = 0
        self._masker_of: tuple[tuple[str, ...], Masker] | None = None

    def _masker(self) -> Masker:
        values = tuple(self.secrets())
        if self._masker_of is None or self._masker_of[0] != values:
            self._masker_of = (values, Masker(values))
        return self._masker_of[1]

    def frame(self, taken: list[dict[str, Any]], dropped: int) -> ServiceLogs:
        masker = self._masker()

        def clean(text: object) -> str:
            return redact_text(masker.text(str(text)))[:MAX_TEXT]

        records = [
            ServiceLogRecord(
                time=datetime.fromisoformat(str(d["time"])),
                level=d["level"],
                logger=str(d.get("logger", ""))[:200],
                message=clean(d.get("message", "")),
                exception=clean(d["exception"]) if d.get("exception") else None,
                pid=int(d.get("pid") or 0),
                flow_id=_id(d.get("flow_id")),
                run_id=_id(d.get("run_id")),
                job_id=_id(d.get("job_id")),
            )
            for d in taken
        ]
        return ServiceLogs(records=records, dropped=dropped)

    async def run(self, send: Callable[[ServiceLogs], Awaitable[None]]) -> None:
        """Ship until cancelled (the connection ends); a frame that could not be sent goes back
        to the buffer, as far as it has room."""
        with storing():
            while True:
                await asyncio.sleep(SHIP_INTERVAL)
                while True:
                    taken, dropped = self.buffer.take(MAX_SERVICE_RECORDS)
                    if not taken and not dropped:
                        break
                    try:
                        frame = self.frame(taken, dropped)
                    except ValueError as exc:  # a record the protocol refuses: never sent again
                        log.warning("service logs: %d records not shipped: %s", len(taken), exc)
                        continue
                    try:
                        await send(frame)
                    except BaseException:
                        self.buffer.put_back(taken)
                        self.buffer.count_dropped(dropped)
                        raise
                    self.sent += len(taken)
                    if len(taken) < MAX_SERVICE_RECORDS:
                        break


def job_secret_values(job: dict[str, Any]) -> list[str]:
    """The values of the secrets a job was given (its ``secrets``: name -> secret)."""
    secrets = job.get("secrets") or {}
    return [v for s in secrets.values() if isinstance(s, dict) for v in secret_values(s) if v]
