"""What this process saw lately, for the administrators' diagnostics page: background tasks that
failed (with their error), the scheduler's last passes and the last errors logged.  Small rings
in memory, one per process; ``publisher.py`` shares them between the processes of a scale-out
installation through Redis."""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from datetime import UTC, datetime
from typing import Any

RING = 50
PASSES = 20


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    def __init__(self) -> None:
        self.role = "kraken"
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = _now()
        self.task_failures: deque[dict[str, Any]] = deque(maxlen=RING)
        self.errors: deque[dict[str, Any]] = deque(maxlen=RING)
        self.scheduler_passes: deque[dict[str, Any]] = deque(maxlen=PASSES)
        self.task_counts: dict[str, dict[str, int]] = {}

    def task_done(self, task: str, outcome: str, seconds: float, error: BaseException | None) -> None:
        counts = self.task_counts.setdefault(task, {})
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "failed":
            self.task_failures.append(
                {"at": _now(), "task": task, "seconds": round(seconds, 3), "error": _describe(error)}
            )

    def scheduler_pass(self, seconds: float, assigned: int, failed: bool) -> None:
        self.scheduler_passes.append(
            {"at": _now(), "seconds": round(seconds, 4), "assigned": assigned, "failed": failed}
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "service": self.role,
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "at": _now(),
            "tasks": {t: dict(c) for t, c in sorted(self.task_counts.items())},
            "task_failures": list(reversed(self.task_failures)),
            "scheduler_passes": list(reversed(self.scheduler_passes)),
            "errors": list(reversed(self.errors)),
        }


def _describe(error: BaseException | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 2000 else text[:2000] + " …"


class ErrorRing(logging.Handler):
    """Keeps the process's last ERROR (and worse) log records."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(logging.ERROR)
        self.journal = journal

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({_describe(record.exc_info[1])})"
            self.journal.errors.append(
                {
                    "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "message": message[:4000],
                }
            )
        except Exception:  # a log handler must never raise
            self.handleError(record)


JOURNAL = Journal()
_handler: ErrorRing | None = None


def start(role: str) -> None:
    """Name this process's role and start keeping its errors (idempotent)."""
    global _handler
    JOURNAL.role = role
    if _handler is None:
        _handler = ErrorRing(JOURNAL)
        logging.getLogger().addHandler(_handler)
