"""What every parser produces, and the bounds on names and messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

NAME_MAX_CHARS = 1000
NAME_MAX_BYTES = 2000  # keeps (project_id, name) inside a PostgreSQL b-tree entry
MESSAGE_MAX_BYTES = 16 * 1024


class ParsedResult(NamedTuple):
    name: str
    status: str  # one of statuses.STATUS_NAMES
    duration: float | None
    message: str | None
    values: dict[str, float] | None

    def wire(self) -> list[Any]:
        """The compact form sent to the server: ``[name, status, duration, message, values]``."""
        return [self.name, self.status, self.duration, self.message, self.values]


@dataclass
class ReportError:
    """A report that could not be read to its end (results before the error are kept)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


def _cut_utf8(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", "ignore")


def bound_name(name: str) -> str:
    """Test names longer than NAME_MAX_CHARS (or NAME_MAX_BYTES) end with a truncation marker."""
    name = name.strip()
    encoded_len = len(name.encode("utf-8", "replace")) if len(name) * 4 > NAME_MAX_BYTES else len(name)
    if len(name) <= NAME_MAX_CHARS and encoded_len <= NAME_MAX_BYTES:
        return name
    dropped = max(len(name) - NAME_MAX_CHARS, 0)
    marker = f"…[truncated {dropped} chars]"
    keep = name[: NAME_MAX_CHARS - len(marker) - 8]
    data = keep.encode("utf-8", "replace")
    if len(data) > NAME_MAX_BYTES - 64:
        keep = _cut_utf8(data, NAME_MAX_BYTES - 64)
        marker = f"…[truncated {len(name) - len(keep)} chars]"
    return keep + marker


def bound_message(text: str | None, extra_bytes: int = 0) -> str | None:
    """Messages are kept to MESSAGE_MAX_BYTES of UTF-8, ending with "…[truncated N bytes]"."""
    if text is None:
        return None
    data = text.encode("utf-8", "replace")
    if len(data) <= MESSAGE_MAX_BYTES and not extra_bytes:
        return text
    keep = MESSAGE_MAX_BYTES - 40
    dropped = max(len(data) - keep, 0) + extra_bytes
    return _cut_utf8(data, keep) + f"…[truncated {dropped} bytes]"


class BoundedText:
    """Collects text pieces up to MESSAGE_MAX_BYTES, counting (not keeping) the rest."""

    __slots__ = ("dropped", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        if self.size >= MESSAGE_MAX_BYTES:
            self.dropped += len(text.encode("utf-8", "replace"))
            return
        n = len(text.encode("utf-8", "replace")) if not text.isascii() else len(text)
        self.parts.append(text)
        self.size += n

    def text(self) -> str | None:
        if not self.parts and not self.dropped:
            return None
        return bound_message("".join(self.parts), self.dropped)
