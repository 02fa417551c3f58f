"""The agent's own log records to the server (``KRAKEN_SERVICE_LOGS_STORE=true``), which stores
them in the log store as the ``agent`` service's.

Logging a record only appends it to a bounded buffer (``servicelog.ServiceLogBuffer``; past its
size the oldest records are dropped and counted). While the agent is connected, a task of its
own sends what waits every ``SHIP_INTERVAL`` seconds in ``service_logs`` frames of at most
``MAX_SERVICE_RECORDS`` records: the job runner and the protocol never wait for it. While the
agent is not connected, records wait in the buffer (bounded). What the shipper itself logs never
enters the buffer (``servicelog.storing``).

Masked before they leave: the agent's token and credential (``******``), then whatever looks
secret (``servicelog.redact_text``). The secrets of a job a record names are masked by the server
as it stores the record, with that job's ``Masker`` (as its log lines are): the agent never imports
the server's secrets package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from kraken.observability.servicelog import MAX_RECORD_TEXT, ServiceLogBuffer, redact_text, storing
from kraken.protocol import MAX_SERVICE_RECORDS, ServiceLogRecord, ServiceLogs

log = logging.getLogger(__name__)

SHIP_INTERVAL = 1.0
MASK = "******"  # as kraken.secrets.refs.MASK


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class LogShipper:
    def __init__(self, buffer: ServiceLogBuffer, secrets: Callable[[], list[str]]) -> None:
        self.buffer = buffer
        self.secrets = secrets  # the values to mask now (the agent's token and credential)
        self.sent = 0

    def frame(self, taken: list[dict[str, Any]], dropped: int) -> ServiceLogs:
        values = sorted((v for v in self.secrets() if len(v) >= 8), key=len, reverse=True)

        def clean(text: object) -> str:
            masked = str(text)
            for value in values:
                masked = masked.replace(value, MASK)
            return redact_text(masked)[:MAX_RECORD_TEXT]

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
