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
import re
import socket
import sys
import threading
from collections import deque
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
        data = record_fields(record, self)
        data["service"], data["host"], data["pid"] = self.service, self.host, record.process
        return json.dumps(data, ensure_ascii=False, default=str)


def record_fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, object]:
    """time, level, logger, message, the context's ids, exception and stack of a record: what a
    JSON line and a stored service log record have in common."""
    data: dict[str, object] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    # formatted in the logging call's own task, so the context is that of the code that logged
    data.update(_ids.get())
    for key in ID_KEYS:  # logging.info(..., extra={"job_id": 7}) wins over the context
        value = record.__dict__.get(key)
        if isinstance(value, int):
            data[key] = value
    if record.exc_info:
        data["exception"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        data["exception"] = record.exc_text
    if record.stack_info:
        data["stack"] = formatter.formatStack(record.stack_info)
    return data


# ---------------------------------------------------------------- records kept for the log store

LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_RECORD_TEXT = 16_000  # characters of a message (and of a traceback) kept
# one line per HTTP request, two per background task: below WARNING not stored (the metrics count them)
QUIET_BELOW_WARNING = ("uvicorn.access", "arq.worker")
_storing: ContextVar[bool] = ContextVar("kraken_storing_service_logs", default=False)


@contextlib.contextmanager
def storing() -> Iterator[None]:
    """Around the code that stores or ships service log records: what it logs (a failure to store
    them) goes to stderr only, never into the buffer, so that it cannot feed itself."""
    token = _storing.set(True)
    try:
        yield
    finally:
        _storing.reset(token)


def level_name(levelno: int) -> str:
    """The standard level at or below ``levelno`` (custom levels fall to the one beneath)."""
    for name in reversed(LEVELS):
        if levelno >= logging.getLevelName(name.upper()):
            return name
    return "debug"


class ServiceLogBuffer(logging.Handler):
    """Keeps this process's log records (as dicts) for the log store, in a bounded queue: when
    the flusher (server side) or the shipper (agents) falls behind, the oldest records are
    dropped and counted, so a storm of records never grows the memory. ``emit`` only appends:
    it never waits for the store."""

    def __init__(self, capacity: int, level: str = "info") -> None:
        super().__init__(logging.getLevelName(level.upper()))
        self.records: deque[dict[str, object]] = deque(maxlen=capacity)
        self.dropped = 0
        self._fmt = logging.Formatter()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if _storing.get() or (record.levelno < logging.WARNING and record.name.startswith(QUIET_BELOW_WARNING)):
            return
        try:
            data = record_fields(record, self._fmt)
            data["level"] = level_name(record.levelno)
            data["pid"] = record.process
            for key in ("message", "exception", "stack"):  # each record's size is bounded too
                value = data.get(key)
                if isinstance(value, str) and len(value) > MAX_RECORD_TEXT:
                    data[key] = value[:MAX_RECORD_TEXT]
            self.add([data])
        except Exception:  # a log handler must never raise
            self.handleError(record)

    def add(self, records: list[dict[str, object]]) -> None:
        """Records made elsewhere (an agent's, on the server): the oldest go past the bound."""
        with self._guard:
            maxlen = self.records.maxlen or 0
            self.dropped += max(0, len(self.records) + len(records) - maxlen)
            self.records.extend(records)

    def count_dropped(self, n: int) -> None:
        with self._guard:
            self.dropped += n

    def take(self, n: int) -> tuple[list[dict[str, object]], int]:
        """Up to ``n`` of the oldest records, and how many were dropped since the last call."""
        with self._guard:
            out = [self.records.popleft() for _ in range(min(n, len(self.records)))]
            dropped, self.dropped = self.dropped, 0
        return out, dropped

    def put_back(self, records: list[dict[str, object]]) -> None:
        """Records taken but not stored (the store failed): first again, as far as room remains."""
        with self._guard:
            room = (self.records.maxlen or 0) - len(self.records)
            keep = records[-room:] if room > 0 else []
            self.dropped += len(records) - len(keep)
            self.records.extendleft(reversed(keep))

    def __len__(self) -> int:
        return len(self.records)


_buffer: ServiceLogBuffer | None = None


def start_buffer(capacity: int, level: str) -> ServiceLogBuffer:
    """Keep this process's records from now on (on the root logger; idempotent)."""
    global _buffer
    if _buffer is None:
        _buffer = ServiceLogBuffer(capacity, level)
        logging.getLogger().addHandler(_buffer)
    return _buffer


def stop_buffer() -> None:
    global _buffer
    if _buffer is not None:
        logging.getLogger().removeHandler(_buffer)
        _buffer = None


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
        if old is not _buffer:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.captureWarnings(True)  # Python's warnings as records too: no other format on stderr


# ---------------------------------------------------------------- redaction (before a record is stored or shipped)

REDACTED = "***"
# key=value / key: value where the key names a secret, and the password of a URL (scheme://user:password@)
_SECRET_PAIR = re.compile(
    r"(?i)((?:password|passwd|secret|token|credential|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
    r"([^\s\"',;&)\]}]+)"
)
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)(@)")
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})")


def redact_text(text: str) -> str:
    """``text`` with what looks secret blanked (``***``): values after password=, token: ...,
    a URL's password, a bearer token. The known secret values themselves are masked by the
    caller (``kraken.secrets.refs.Masker``), as in job logs."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)
