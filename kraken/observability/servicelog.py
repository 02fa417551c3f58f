"""Kraken's own logs (server, controller, worker, agents): plain text, or JSON lines that a log
shipper can take as they are (``KRAKEN_LOG_FORMAT=json``).

A JSON line carries the time, level, logger, message, the service (the process's role), host,
pid, the exception's traceback when there is one, and the ids of the flow, run and job being
handled. Those ids come from ``log_context`` (a context variable, so each asyncio task keeps its
own): the code that handles a job wraps its work in it, and every line logged underneath, in any
module, carries them without passing them around.

Agent-side code uses this module too: it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal, get_args

LogFormat = Literal["text", "json"]
FORMATS: tuple[str, ...] = get_args(LogFormat)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ID_KEYS = ("flow_id", "run_id", "job_id")

_EMPTY: MappingProxyType[str, int] = MappingProxyType({})
_ids: ContextVar[MappingProxyType[str, int]] = ContextVar("kraken_log_ids", default=_EMPTY)


@contextlib.contextmanager
def log_context(*, flow_id: int | None = None, run_id: int | None = None, job_id: int | None = None) -> Iterator[None]:
    """Lines logged inside (and in tasks created inside) carry these ids."""
    token = _ids.set(MappingProxyType({**_ids.get(), **_given(flow_id, run_id, job_id)}))
    try:
        yield
    finally:
        _ids.reset(token)


def add_to_context(*, flow_id: int | None = None, run_id: int | None = None, job_id: int | None = None) -> None:
    """Ids learnt inside a ``log_context`` (e.g. a job's run once its row is read); undone when
    that context ends."""
    _ids.set(MappingProxyType({**_ids.get(), **_given(flow_id, run_id, job_id)}))


def current_ids() -> dict[str, int]:
    return dict(_ids.get())


def _given(flow_id: int | None, run_id: int | None, job_id: int | None) -> dict[str, int]:
    values = {"flow_id": flow_id, "run_id": run_id, "job_id": job_id}
    return {k: int(v) for k, v in values.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped by JSON)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "host": self.host,
            "pid": record.process,
        }
        # formatted in the logging call's own task, so the context is that of the code that logged
        data.update(_ids.get())
        for key in ID_KEYS:  # logging.info(..., extra={"job_id": 7}) wins over the context
            value = record.__dict__.get(key)
            if isinstance(value, int):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def check_format(value: str) -> LogFormat:
    """The format named by ``value``; ValueError naming the setting and the choices otherwise."""
    if value not in FORMATS:
        raise ValueError(f"KRAKEN_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}")
    return value  # type: ignore[return-value]


def configure(service: str, level: str, fmt: str) -> None:
    """The root logger of this process writes to stderr in ``fmt``; replaces what was there, so
    that calling it again (a command configuring after an import did) leaves one handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if check_format(fmt) == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python's warnings as records too: no other format on stderr
